/**
 * A log writer for the mixed soak (test/e2e/soak.test.ts), run as its own process so that it
 * writes on while logmerge is killed and restarted. It rotates its file in one of four ways:
 *
 *   node soak-writer.mjs <path> <prefix> <mode> <linesPerSecond> <rotateMinMs> <rotateMaxMs> <out> <state>
 *
 * - `rename`: renames `path` to `path.K` (K = 1, 2, ...: a new name each time) and creates a new
 *   `path`, as an application with built-in rotation does;
 * - `copy`: copies `path` to a new `path.K`, then truncates `path` (copytruncate to a new copy);
 * - `copy-in-place`: copies `path` over `path.1` with fs.copyFileSync, which rewrites an existing
 *   `path.1` in place (the copy keeps the inode of the copy before it), then truncates `path`;
 * - `truncate`: empties `path` in place (`: > path`), with no copy.
 *
 * It writes `lineFor(prefix, 0, 1, ...)` through one descriptor held with O_APPEND, one write()
 * per line, paced to `linesPerSecond`, and rotates every rotateMinMs-rotateMaxMs (uniform). A
 * copy is always followed by its truncate with no line written in between, so no line is lost by
 * the rotation itself. Of the numbered generations (`rename`, `copy`) the newest KEEP stay on
 * disk; older ones are deleted, as logrotate's `rotate N` does.
 *
 * Three steps destroy lines that no tailer can read afterwards: a truncate destroys the lines of
 * the file, a copy written in place destroys the generation the old copy held, and a deletion
 * the generation deleted. A line
 * that logmerge had not yet made durable is then not recoverable by any reader, and after a
 * SIGKILL logmerge starts again from its last checkpoint, cutting its output back to the size
 * that checkpoint recorded. So before such a step this writer waits until every line it is about
 * to destroy is in the output's first N bytes, N the output size of the state file's last
 * checkpoint (those bytes survive any restart). It decides that from the output and the state
 * file alone, not from anything logmerge says about its sources: a line missing at the end is
 * then logmerge's loss. A `truncate` writer writes nothing while it waits (the lines to cover
 * must not grow); a `copy-in-place` writer writes on into `path` and copies once the old copy's
 * generation is covered.
 *
 * On SIGTERM it stops (finishing no rotation) and prints one JSON line to stdout: the number of
 * lines written, the first line number of each generation with how it began, how many
 * generations it deleted, and the longest and total waits. Exit status 0.
 */
import {
  closeSync,
  constants,
  copyFileSync,
  ftruncateSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { lineFor } from './writer-child.mjs'

const MODES = ['rename', 'copy', 'copy-in-place', 'truncate']
/** Numbered generations (path.K) kept on disk; older ones are deleted once durable. */
const KEEP = 10

/** @param {string} path */
const create = (path) =>
  openSync(path, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT, 0o644)

/**
 * Which of one writer's lines are in the output up to the last checkpoint's recorded size. That
 * prefix never changes once recorded (a restart cuts the output back to it, never below), so it
 * is read once, from where the last look stopped.
 */
class Checkpointed {
  /** @param {string} out @param {string} state @param {string} prefix */
  constructor(out, state, prefix) {
    this.out = out
    this.state = state
    this.mark = `${prefix}-`
    /** Bytes of the output looked at so far (always at a line boundary). */
    this.scanned = 0
    /** Line numbers seen (a line seen twice is logmerge's bug: the test checks that). */
    this.seen = new Set()
    /** The state file last parsed (its inode and write time). */
    this.stateIno = -1
    this.stateMtime = -1
  }

  /** Reads what the last checkpoint added to the durable prefix. */
  update() {
    // The state file is replaced (renamed over) by each checkpoint: parse it only when it was.
    const st = statSync(this.state, { throwIfNoEntry: false })
    if (!st || (st.ino === this.stateIno && st.mtimeMs === this.stateMtime)) return
    let size
    try {
      size = JSON.parse(readFileSync(this.state, 'utf8')).output?.size ?? 0
    } catch {
      return // replaced between the stat and the read: the next look parses it
    }
    this.stateIno = st.ino
    this.stateMtime = st.mtimeMs
    if (size <= this.scanned) return
    const fd = openSync(this.out, 'r')
    let text
    try {
      const buf = Buffer.alloc(size - this.scanned)
      const n = readSync(fd, buf, 0, buf.length, this.scanned)
      text = buf.subarray(0, n).toString('latin1')
    } finally {
      closeSync(fd)
    }
    const end = text.lastIndexOf('\n')
    if (end < 0) return
    for (const line of text.slice(0, end).split('\n')) {
      if (!line.startsWith(this.mark)) continue
      this.seen.add(Number(line.slice(this.mark.length, line.indexOf('-', this.mark.length))))
    }
    this.scanned += end + 1
  }

  /**
   * Are lines from..to-1 all in the durable prefix?
   * @param {number} from
   * @param {number} to
   */
  covers(from, to) {
    this.update()
    for (let seq = from; seq < to; seq++) if (!this.seen.has(seq)) return false
    return true
  }
}

async function main() {
  const [path = '', prefix = '', mode = '', rateText, minText, maxText, out = '', state = ''] =
    process.argv.slice(2)
  const rate = Number(rateText)
  const min = Number(minText)
  const max = Number(maxText)
  const usable = path && prefix && out && state && MODES.includes(mode)
  if (!usable || !(rate > 0) || !(min > 0) || !(max >= min)) {
    process.stderr.write(
      `usage: soak-writer.mjs <path> <prefix> <${MODES.join('|')}> <linesPerSecond> <rotateMinMs> <rotateMaxMs> <out> <state>\n`,
    )
    process.exit(2)
  }
  let stopping = false
  process.on('SIGTERM', () => {
    stopping = true
  })
  const durable = new Checkpointed(out, state, prefix)
  let fd = create(path)
  let seq = 0
  let copies = 0
  /** Where each generation begins: line number, how, and ms since start. */
  /** @type {{ from: number, how: string, at: number }[]} */
  const generations = [{ from: 0, how: 'start', at: 0 }]
  /** @param {number} back @returns {number} where the generation `back` from the end begins */
  const genFrom = (back) => generations[generations.length - back]?.from ?? 0
  const waits = { count: 0, longestMs: 0, totalMs: 0 }
  const start = performance.now()
  const nextRotation = () => performance.now() + min + Math.random() * (max - min)
  let rotateAt = nextRotation()
  /** @type {number[]} The numbered generations on disk (K of path.K), oldest first. */
  const kept = []
  let deleted = 0
  /** When the writer began waiting for the checkpoint before a rotation (null: not waiting). */
  /** @type {number | null} */
  let waitingSince = null
  let due = 0
  let last = performance.now()

  const rotate = () => {
    const now = performance.now()
    if (mode === 'rename') {
      closeSync(fd)
      renameSync(path, `${path}.${++copies}`)
      fd = create(path)
    } else if (mode === 'copy') {
      copyFileSync(path, `${path}.${++copies}`)
      ftruncateSync(fd, 0)
    } else if (mode === 'copy-in-place') {
      copies++
      copyFileSync(path, `${path}.1`)
      ftruncateSync(fd, 0)
    } else {
      ftruncateSync(fd, 0)
    }
    if (waitingSince !== null) {
      const waited = now - waitingSince
      waits.count++
      waits.totalMs += waited
      waits.longestMs = Math.max(waits.longestMs, waited)
      waitingSince = null
    }
    generations.push({ from: seq, how: mode, at: Math.round(now - start) })
    if (mode === 'rename' || mode === 'copy') kept.push(copies)
    rotateAt = nextRotation()
  }

  /**
   * Deletes the oldest numbered generations beyond KEEP, as logrotate's `rotate N` does, once
   * their lines are durable (a deletion destroys them too). path.K holds generation K - 1.
   */
  const prune = () => {
    while (kept.length > KEEP) {
      const k = kept[0] ?? 0
      if (!durable.covers(generations[k - 1]?.from ?? 0, generations[k]?.from ?? 0)) return
      unlinkSync(`${path}.${k}`)
      kept.shift()
      deleted++
    }
  }

  /** May the rotation due now be done (see the header: what it would destroy is durable)? */
  const mayRotate = () => {
    if (mode === 'truncate') return durable.covers(genFrom(1), seq)
    if (mode === 'copy-in-place' && generations.length > 1) {
      // path.1 holds the generation before the current one.
      return durable.covers(genFrom(2), genFrom(1))
    }
    return true
  }

  while (!stopping) {
    const now = performance.now()
    if (now >= rotateAt) {
      if (waitingSince === null && (mode === 'truncate' || mode === 'copy-in-place'))
        waitingSince = now
      if (mayRotate()) rotate()
    }
    if (kept.length > KEEP) prune()
    // A truncate waiting for the checkpoint writes nothing: the lines to cover must not grow.
    const held = mode === 'truncate' && waitingSince !== null
    // A stalled timer (a loaded machine) catches up by at most half a second of lines.
    due = Math.min(due + ((now - last) * rate) / 1000, rate / 2)
    last = now
    if (held) due = 0
    for (; due >= 1; due--) {
      writeSync(fd, `${lineFor(prefix, seq)}\n`)
      seq++
    }
    await sleep(held ? 20 : 5)
  }
  closeSync(fd)
  process.stdout.write(
    `${JSON.stringify({ prefix, mode, lines: seq, rotations: generations.length - 1, deleted, generations, waits })}\n`,
  )
}

await main()
