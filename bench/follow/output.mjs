// @ts-check
/**
 * Watching the follower's output from the bench: an OutputTail reads what is appended as soon
 * as inotify says so (fs.watch) with a short poll as a safety net, and hands over each whole
 * line with the time it was seen (performance.now() of this process, the clock the appends
 * are timed with). checkWriterLines parses a finished output of the writer processes
 * (./writer.mjs): every line of every writer exactly once, in the order written, whole.
 */

import { closeSync, createReadStream, fstatSync, openSync, readSync, watch } from 'node:fs'
import { MiB } from '../lib.mjs'

export class OutputTail {
  #path
  #onLine
  #fd = -1
  #pos = 0
  #rest = ''
  #buf = Buffer.allocUnsafe(1 << 20)
  /** @type {import('node:fs').FSWatcher | null} */
  #watcher = null
  /** @type {NodeJS.Timeout | null} */
  #timer = null
  /** Bytes read so far. */
  get bytes() {
    return this.#pos
  }

  /**
   * @param {string} path  must exist
   * @param {(line: string, seenAt: number) => void} onLine
   */
  constructor(path, onLine) {
    this.#path = path
    this.#onLine = onLine
  }

  /** @param {number} pollMs the safety-net poll (the watch does the work) */
  start(pollMs = 2) {
    this.#fd = openSync(this.#path, 'r')
    this.#watcher = watch(this.#path, () => this.drain())
    this.setPoll(pollMs)
    this.drain()
    return this
  }

  /** @param {number | null} ms  a new poll interval, or null for none (the watch only) */
  setPoll(ms) {
    if (this.#timer) clearInterval(this.#timer)
    this.#timer = ms === null ? null : setInterval(() => this.drain(), ms)
  }

  /** Reads whatever is new. */
  drain() {
    if (this.#fd < 0) return
    while (true) {
      const n = readSync(this.#fd, this.#buf, 0, this.#buf.length, this.#pos)
      if (n === 0) break
      const now = performance.now()
      this.#pos += n
      const text = this.#rest + this.#buf.toString('latin1', 0, n)
      const lines = text.split('\n')
      this.#rest = lines.pop() ?? ''
      for (const line of lines) this.#onLine(line, now)
    }
  }

  /** Reads what is left and stops watching; idempotent. */
  stop() {
    this.drain()
    this.#watcher?.close()
    this.#watcher = null
    this.setPoll(null)
    if (this.#fd >= 0) closeSync(this.#fd)
    this.#fd = -1
  }
}

/** @param {string} path @returns {number} the size of a file, 0 when missing */
export function sizeOf(path) {
  try {
    const fd = openSync(path, 'r')
    try {
      return fstatSync(fd).size
    } finally {
      closeSync(fd)
    }
  } catch {
    return 0
  }
}

/**
 * @typedef {object} WriterCheck
 * @property {number} writerLines  well-formed writer lines (duplicates included)
 * @property {number} probes       probe lines (written before the writers started)
 * @property {number} lost
 * @property {number} duplicated
 * @property {number} outOfOrder   lines below an earlier line of the same writer
 * @property {number} malformed    neither a whole writer line nor a probe
 * @property {string[]} examples   the first few problems
 */

/**
 * Every writer's lines 0..n-1 exactly once, in order, each `lineBytes` long with its newline.
 * Writer lines are `w<index>-<10-digit seq> <padding>`; probe lines start with `probe=`.
 * @param {string} path @param {number[]} linesPerWriter @param {number} lineBytes
 * @returns {Promise<WriterCheck>}
 */
export async function checkWriterLines(path, linesPerWriter, lineBytes) {
  const seen = linesPerWriter.map((n) => new Uint8Array(n))
  const last = linesPerWriter.map(() => -1)
  /** @type {WriterCheck} */
  const c = {
    writerLines: 0,
    probes: 0,
    lost: 0,
    duplicated: 0,
    outOfOrder: 0,
    malformed: 0,
    examples: [],
  }
  const note = (/** @type {string} */ what) => {
    if (c.examples.length < 5) c.examples.push(what)
  }
  const WRITER = /^w(\d+)-(\d{10}) /
  /** @param {string} line */
  const one = (line) => {
    const m = WRITER.exec(line)
    if (m && line.length + 1 === lineBytes) {
      const w = Number(m[1])
      const seq = Number(m[2])
      const marks = seen[w]
      if (marks && seq < marks.length) {
        c.writerLines++
        if ((marks[seq] ?? 0) < 255) marks[seq] = (marks[seq] ?? 0) + 1
        if (seq < (last[w] ?? -1)) {
          c.outOfOrder++
          note(`w${w}-${seq} after w${w}-${last[w]}`)
        }
        last[w] = seq
        return
      }
    } else if (line.startsWith('probe=')) {
      c.probes++
      return
    }
    c.malformed++
    note(`malformed line of ${line.length + 1} bytes: ${JSON.stringify(line.slice(0, 40))}`)
  }
  let rest = ''
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * MiB })) {
    const text = rest + /** @type {Buffer} */ (chunk).toString('latin1')
    const lines = text.split('\n')
    rest = lines.pop() ?? ''
    for (const line of lines) one(line)
  }
  if (rest !== '') {
    c.malformed++
    note(`${rest.length} bytes after the last newline`)
  }
  seen.forEach((marks, w) => {
    for (let s = 0; s < marks.length; s++) {
      const n = marks[s] ?? 0
      if (n === 0) {
        if (c.lost === 0) note(`first lost line: w${w}-${s}`)
        c.lost++
      } else if (n > 1) c.duplicated += n - 1
    }
  })
  return c
}
