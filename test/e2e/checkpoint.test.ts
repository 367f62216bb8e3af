/**
 * Checkpoints and exactly-once output across restarts, for every engine (DESIGN.md,
 * "Checkpoints and exactly-once output"): what happens to the inputs and to the output while
 * logmerge is stopped (rotation, inode reuse, a replaced or truncated output, a bad state file),
 * SIGHUP after logrotate rotates the output, SIGTERM draining into a slow output, and a partial
 * line held across a SIGKILL.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import {
  appendFileSync,
  existsSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  truncateSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { afterEach, describe, expect } from 'vitest'
import {
  type Child,
  completeLines,
  ENGINES,
  expectMerged,
  Journal,
  logrotateFor,
  pinnedEnv,
  spawnLogmerge,
  stop,
  test,
  uniqueLines,
  waitFor,
  waitForAll,
} from './helpers.js'

/** Short intervals keep the suite fast; --threads 2 matches the 2-core CI machines. */
const FAST = ['--checkpoint-interval', '50', '--poll-interval', '100', '--threads', '2']

/** The default state path for an output (DESIGN.md: `.<name>.logmerge-state.json` beside it). */
const stateOf = (out: string): string => join(dirname(out), `.${basename(out)}.logmerge-state.json`)

/** Files in `dir` whose names start with `prefix` (the moved-aside `.bad-*` state files). */
const startingWith = (dir: string, prefix: string): string[] =>
  readdirSync(dir).filter((name) => name.startsWith(prefix))

interface Run {
  readonly lm: Child
  readonly out: string
}

/** Starts logmerge on `inputs` (from their start), into `<tmp>/out.log` unless `extra` has `-o`. */
function start(engine: string, tmp: string, inputs: readonly string[], extra: string[] = []): Run {
  const out = extra.includes('-o')
    ? (extra[extra.indexOf('-o') + 1] as string)
    : join(tmp, 'out.log')
  const output = extra.includes('-o') ? [] : ['-o', out]
  const lm = spawnLogmerge(
    ['--engine', engine, '--from', 'start', ...FAST, ...extra, ...output, ...inputs],
    { cwd: tmp },
  )
  return { lm, out }
}

/** Starts logmerge, waits until every line in `journal` is in the output, stops it (exit 0). */
async function runUntilAll(
  engine: string,
  tmp: string,
  inputs: readonly string[],
  journal: Journal,
  extra: string[] = [],
): Promise<Run> {
  const run = start(engine, tmp, inputs, extra)
  await waitForAll(run.out, journal.all, { proc: run.lm })
  await stop(run.lm)
  return run
}

/** A run that had nothing to report: no warning, no error. */
function expectQuiet(lm: Child): void {
  expect(lm.stderr(), 'logmerge stderr').toBe('')
}

/** Other processes this file starts (the slow FIFO reader); killed after each test. */
const helpers = new Set<ChildProcess>()
afterEach(async () => {
  const all = [...helpers]
  helpers.clear()
  await Promise.all(
    all.map(async (p) => {
      if (p.exitCode !== null || p.signalCode !== null) return
      const gone = new Promise((resolve) => p.once('close', resolve))
      p.kill('SIGKILL')
      await gone
    }),
  )
})

/**
 * A slow consumer: opens `fifo` for reading, copies it to `dest` 4 KiB at a time with a 2 ms
 * pause after each read (about 2 MB/s), and exits at end of file (every writer closed it).
 */
function slowReader(fifo: string, dest: string): { proc: ChildProcess; done: Promise<number> } {
  const script = `
    const fs = require('node:fs')
    const [fifo, dest] = process.argv.slice(1)
    const input = fs.openSync(fifo, 'r')
    const output = fs.openSync(dest, 'w')
    const buf = Buffer.alloc(4096)
    const pause = new Int32Array(new SharedArrayBuffer(4))
    for (;;) {
      const n = fs.readSync(input, buf, 0, buf.length, null)
      if (n === 0) break
      fs.writeSync(output, buf, 0, n)
      Atomics.wait(pause, 0, 0, 2)
    }
  `
  const proc = spawn(process.execPath, ['-e', script, fifo, dest], {
    env: pinnedEnv(),
    stdio: ['ignore', 'ignore', 'inherit'],
  })
  helpers.add(proc)
  const done = new Promise<number>((resolve, reject) => {
    proc.once('error', reject)
    proc.once('close', (code) => resolve(code ?? -1))
  })
  return { proc, done }
}

/** The state letter in /proc/<pid>/stat (R, S, T, ...), or undefined once it is gone. */
function procState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1')
    return stat.slice(stat.lastIndexOf(')') + 2).charAt(0)
  } catch {
    return undefined
  }
}

/** The state file as JSON (its documented on-disk format), or null while it does not exist. */
function readState(path: string): {
  version: number
  output: { path: string; ino: number; size: number } | null
  sources: { path: string; offset: number }[]
} | null {
  try {
    return JSON.parse(readFileSync(path, 'utf8'))
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw err
  }
}

describe.each(ENGINES)('engine %s', (engine) => {
  describe('inputs changed while stopped', () => {
    // Timestamps are coarse (ext4 takes the clock tick, a few ms): an application that appends,
    // renames and creates in one go leaves the old and the new file with the same mtime. Both
    // cases are pinned with utimes so the run does not depend on where the tick falls.
    test.for([
      { when: '1 s later', gapMs: 1000 },
      { when: 'in the same mtime tick', gapMs: 0 },
    ])(
      `${engine}: a.log renamed to a.log.1, a new a.log written $when: the old rest first, each line once`,
      async ({ gapMs }, { tmp }) => {
        const a = join(tmp, 'a.log')
        const journal = new Journal()
        journal.append(a, uniqueLines('first-run', 20))
        await runUntilAll(engine, tmp, ['a.log'], journal)

        journal.append(a, uniqueLines('old-rest', 30)) // never read before the rotation
        renameSync(a, `${a}.1`)
        journal.append(a, uniqueLines('new-file', 30)) // same stream: must come after the old rest
        const oldTime = new Date(Math.floor(statSync(`${a}.1`).mtimeMs))
        utimesSync(`${a}.1`, oldTime, oldTime)
        utimesSync(a, oldTime, new Date(oldTime.getTime() + gapMs))

        const { lm, out } = await runUntilAll(engine, tmp, ['a.log'], journal)
        expectMerged(completeLines(out), journal)
        expectQuiet(lm)
      },
    )

    test.for([1, 2])(
      `${engine}: logrotate create, %i rotation(s) while stopped: every generation's rest in order, each line once`,
      async (rotations, { tmp }) => {
        const a = join(tmp, 'a.log')
        writeFileSync(a, '')
        const rotate = await logrotateFor(tmp, a, ['create', 'rotate 5', 'missingok'])
        const journal = new Journal()
        journal.append(a, uniqueLines('first-run', 20))
        await runUntilAll(engine, tmp, ['a.log'], journal)

        // While stopped: the followed file grows, is rotated (a.log -> a.log.1, a new a.log);
        // with 2 rotations the middle generation was born and rotated away unseen.
        for (let r = 0; r < rotations; r++) {
          journal.append(a, uniqueLines(`generation-${r}`, 25))
          await rotate()
        }
        expect(existsSync(`${a}.${rotations}`)).toBe(true)
        journal.append(a, uniqueLines('newest', 25))
        // Generations a second apart, oldest first, as rotations by cron are: one logrotate run
        // can take less than a timestamp tick, and equal mtimes are the test above.
        const base = Math.floor(Date.now() / 1000) - 10
        for (let g = rotations; g >= 0; g--) {
          const when = new Date((base + rotations - g) * 1000)
          utimesSync(g === 0 ? a : `${a}.${g}`, when, when)
        }

        const { lm, out } = await runUntilAll(engine, tmp, ['a.log'], journal)
        expectMerged(completeLines(out), journal)
        expectQuiet(lm)
      },
    )

    test(`${engine}: a.log deleted and created again at once (inode reused or not): new lines once, old ones not again`, async ({
      tmp,
      annotate,
    }) => {
      const a = join(tmp, 'a.log')
      const journal = new Journal()
      journal.append(a, uniqueLines('old-content', 10))
      await runUntilAll(engine, tmp, ['a.log'], journal)

      const oldIno = statSync(a).ino
      unlinkSync(a)
      // Longer than the old file, with other first bytes: resuming at the old offset (trusting
      // the inode alone) would cut the new file's first lines.
      const fresh = uniqueLines('new-content', 40)
      journal.record('a.log, the new file', fresh)
      // The file system hands out the lowest free inode, and the state file's replacements
      // freed some too: take new inodes (empty files beside it) until the old one comes back,
      // and make that one the new a.log (a rename keeps the inode). Bounded; the test holds
      // either way, and says which case it ran.
      let reused = false
      const fillers: string[] = []
      for (let i = 0; i < 500 && !reused; i++) {
        const filler = join(tmp, `filler-${i}`)
        writeFileSync(filler, '')
        if (statSync(filler).ino === oldIno) {
          appendFileSync(filler, fresh.map((l) => `${l}\n`).join(''))
          renameSync(filler, a)
          reused = true
        } else fillers.push(filler)
      }
      for (const filler of fillers) unlinkSync(filler)
      if (!reused) writeFileSync(a, fresh.map((l) => `${l}\n`).join(''))
      await annotate(reused ? 'inode reused' : 'inode not reused (new inode)')

      // Wait for the new file's last line only: if its start was skipped, the diff says how.
      const { lm, out } = start(engine, tmp, ['a.log'])
      await waitForAll(out, fresh.slice(-1), { proc: lm })
      await stop(lm)
      expectMerged(completeLines(out), journal)
      expectQuiet(lm)
    })
  })

  describe('a bad state file', () => {
    test(`${engine}: garbage: moved aside with a warning naming it, then a fresh start`, async ({
      tmp,
    }) => {
      const a = join(tmp, 'a.log')
      const journal = new Journal()
      journal.append(a, uniqueLines('first-run', 10))
      const { out } = await runUntilAll(engine, tmp, ['a.log'], journal)
      const state = stateOf(out)
      expect(readState(state)?.version).toBe(1)
      const before = completeLines(out)

      writeFileSync(state, '{"format": "logmerge-state", "vers\0\0\xff garbage')
      const more = uniqueLines('while-stopped', 10)
      journal.append(a, more)
      const { lm } = start(engine, tmp, ['a.log'])
      await waitFor(() => lm.stderr().includes('moved it to'), { proc: lm, what: 'the warning' })
      // A fresh start follows --from (start here): all of a.log again, after what was there.
      const expected = [...before, ...completeLines(a)]
      await waitFor(() => completeLines(out).length >= expected.length, { proc: lm })
      await stop(lm)

      const stderr = lm.stderr()
      expect(stderr).toMatch(/^logmerge: warn: /)
      expect(stderr).toContain(state)
      expect(completeLines(out)).toEqual(expected)
      const aside = startingWith(tmp, `${basename(state)}.bad-`)
      expect(aside).toHaveLength(1)
      expect(stderr).toContain(join(tmp, aside[0] as string))
      expect(readFileSync(join(tmp, aside[0] as string), 'latin1')).toContain('garbage')
      expect(readState(state)?.version).toBe(1) // a good one written again
    })

    test(`${engine}: "version": 99: moved aside, the warning says a newer logmerge wrote it`, async ({
      tmp,
    }) => {
      const a = join(tmp, 'a.log')
      const journal = new Journal()
      journal.append(a, uniqueLines('first-run', 10))
      const { out } = await runUntilAll(engine, tmp, ['a.log'], journal)
      const state = stateOf(out)
      const newer = { ...readState(state), version: 99 }
      writeFileSync(state, JSON.stringify(newer))

      journal.append(a, uniqueLines('while-stopped', 10))
      const { lm } = start(engine, tmp, ['a.log'])
      await waitForAll(out, journal.all, { proc: lm })
      await stop(lm)

      const stderr = lm.stderr()
      expect(stderr).toContain(state)
      expect(stderr).toContain('moved it to')
      expect(stderr).toMatch(/newer logmerge/)
      const aside = startingWith(tmp, `${basename(state)}.bad-`)
      expect(aside).toHaveLength(1)
      expect(readState(join(tmp, aside[0] as string))?.version).toBe(99) // kept as it was
      expect(readState(state)?.version).toBe(1)
    })

    test(`${engine}: a state file of another output (--state shared): moved aside, not used`, async ({
      tmp,
    }) => {
      const a = join(tmp, 'a.log')
      const state = join(tmp, 'shared-state.json')
      const journal = new Journal()
      journal.append(a, uniqueLines('first-run', 10))
      await runUntilAll(engine, tmp, ['a.log'], journal, ['--state', state])

      const other = join(tmp, 'other.log')
      const { lm } = start(engine, tmp, ['a.log'], ['--state', state, '-o', other])
      // Not resumed from out.log's offsets: a fresh start from the start of a.log.
      await waitForAll(other, journal.all, { proc: lm })
      await stop(lm)
      expectMerged(completeLines(other), journal)
      expect(lm.stderr()).toContain('moved it to')
      expect(lm.stderr()).toContain(join(tmp, 'out.log'))
      expect(startingWith(tmp, 'shared-state.json.bad-')).toHaveLength(1)
    })
  })

  describe('the output changed while stopped', () => {
    test(`${engine}: replaced (mv out.log out.old; echo x > out.log): "may appear twice", nothing truncated`, async ({
      tmp,
    }) => {
      const a = join(tmp, 'a.log')
      const first = new Journal()
      first.append(a, uniqueLines('first-run', 10))
      const { out } = await runUntilAll(engine, tmp, ['a.log'], first)

      renameSync(out, join(tmp, 'out.old'))
      writeFileSync(out, 'x\n')
      const second = new Journal()
      second.append(a, uniqueLines('while-stopped', 10))
      const { lm } = start(engine, tmp, ['a.log'])
      await waitForAll(out, second.all, { proc: lm })
      await stop(lm)
      expect(lm.stderr()).toMatch(/^logmerge: warn: .*may appear twice/m)
      const lines = completeLines(out)
      expect(lines[0]).toBe('x') // not truncated to the recorded size
      // The sources resume where the (clean) last run stopped: nothing of the old run again.
      expectMerged(lines.slice(1), second)
      expectMerged(completeLines(join(tmp, 'out.old')), first)

      // The state now describes the new out.log: the next start is exactly-once and quiet.
      const third = new Journal()
      third.append(a, uniqueLines('third-run', 10))
      const again = await runUntilAll(engine, tmp, ['a.log'], third)
      expectQuiet(again.lm)
      expect(completeLines(out)).toEqual([...lines, ...third.all])
    })

    test(`${engine}: truncated (shorter than recorded): warning, nothing cut further, goes on`, async ({
      tmp,
    }) => {
      const a = join(tmp, 'a.log')
      const first = new Journal()
      first.append(a, uniqueLines('first-run', 10))
      const { out } = await runUntilAll(engine, tmp, ['a.log'], first)

      const kept = completeLines(out).slice(0, 4)
      truncateSync(out, Buffer.byteLength(kept.map((l) => `${l}\n`).join(''), 'latin1'))
      const second = new Journal()
      second.append(a, uniqueLines('while-stopped', 10))
      const { lm } = start(engine, tmp, ['a.log'])
      await waitForAll(out, second.all, { proc: lm })
      await stop(lm)
      expect(lm.stderr()).toMatch(/^logmerge: warn: .*shorter than recorded.*may appear twice/m)
      const lines = completeLines(out)
      expect(lines.slice(0, kept.length)).toEqual(kept)
      expectMerged(lines.slice(kept.length), second)
    })
  })

  test(`${engine}: logrotate rotates the OUTPUT (create + postrotate SIGHUP) 4 times under load: each line once across out.log*`, async ({
    tmp,
  }) => {
    const a = join(tmp, 'a.log')
    writeFileSync(a, '')
    const journal = new Journal()
    journal.append(a, uniqueLines('before', 5))
    const { lm, out } = start(engine, tmp, ['a.log'])
    await waitForAll(out, journal.all, { proc: lm })
    const rotate = await logrotateFor(tmp, out, [
      'create',
      'rotate 10',
      'missingok',
      'postrotate',
      `  kill -HUP ${lm.pid}`,
      'endscript',
    ])

    // The test appends (a line every few ms) while logrotate rotates: a write never races a
    // rotation of the input, and the output's rotations happen under a steady stream.
    let writing = true
    const writer = (async () => {
      let i = 0
      while (writing) {
        journal.append(a, uniqueLines(`w${i++}`, 3))
        await new Promise((resolve) => setTimeout(resolve, 3))
      }
    })()
    const ROTATIONS = 4
    try {
      for (let r = 0; r < ROTATIONS; r++) {
        // Lines in the current out.log: logmerge reopened it after the last SIGHUP.
        await waitFor(() => completeLines(out).length >= 60, {
          proc: lm,
          what: `60 lines in out.log after rotation ${r}`,
        })
        await rotate()
        // SIGHUP reopens out.log and checkpoints at once: the state names the new file.
        const created = statSync(out).ino
        await waitFor(() => readState(stateOf(out))?.output?.ino === created, {
          proc: lm,
          what: `a checkpoint of the new out.log after rotation ${r + 1}`,
        })
      }
      await waitFor(() => completeLines(out).length >= 30, { proc: lm, what: 'the last reopen' })
    } finally {
      writing = false
      await writer
    }
    const generations = [...Array.from({ length: ROTATIONS }, (_, i) => `${out}.${ROTATIONS - i}`)]
    const merged = () => [...generations, out].flatMap((f) => completeLines(f))
    await waitFor(
      () => {
        const have = new Set(merged())
        return journal.all.every((l) => have.has(l))
      },
      { proc: lm, what: 'every line in out.log*' },
    )
    await stop(lm)
    for (const g of [...generations, out]) {
      const text = readFileSync(g, 'latin1')
      expect(text === '' || text.endsWith('\n'), `${basename(g)} ends with a whole line`).toBe(true)
    }
    for (const g of generations) expect(completeLines(g).length, basename(g)).toBeGreaterThan(0)
    expectMerged(merged(), journal)
    expect(lm.stderr()).not.toMatch(/error|warn/)

    // The last checkpoint describes the current out.log: a restart is exactly-once and quiet.
    const sizeBefore = statSync(out).size
    const after = new Journal()
    after.append(a, uniqueLines('after-restart', 5))
    const again = await runUntilAll(engine, tmp, ['a.log'], after)
    expectQuiet(again.lm)
    expect(readFileSync(out).subarray(sizeBefore).toString('latin1')).toBe(
      after.all.map((l) => `${l}\n`).join(''),
    )
  })

  test(`${engine}: SIGTERM right after a burst, output a FIFO read slowly: exit 0 only once every line is out`, async ({
    tmp,
  }) => {
    // The output is a FIFO whose reader takes 4 KiB every 2 ms, so the 64 KiB pipe buffer fills
    // at once and logmerge's writes block. Once the first bytes are through, the reader is even
    // frozen (SIGSTOP) while a second burst is appended and SIGTERM is sent: at the signal,
    // about a megabyte is unread or unwritten, with logmerge blocked on a full pipe. Draining
    // means reading both bursts to their end and pushing every byte through the slow pipe
    // before exiting 0; exiting early closes the FIFO, and the reader ends with lines missing.
    const a = join(tmp, 'a.log')
    const fifo = join(tmp, 'out.fifo')
    const dest = join(tmp, 'received.log')
    const mk = spawn('mkfifo', [fifo])
    expect(await new Promise((resolve) => mk.once('close', resolve))).toBe(0)
    const journal = new Journal()
    const b = join(tmp, 'b.log')
    journal.append(a, uniqueLines('burst-1', 30_000))
    journal.append(b, uniqueLines('quiet-file-first', 1))
    const reader = slowReader(fifo, dest)
    // A pipe has no size to truncate to or resume from: no state file.
    const { lm } = start(engine, tmp, ['a.log', 'b.log'], ['-o', fifo, '--no-state'])
    await waitFor(() => existsSync(dest) && statSync(dest).size > 0, {
      proc: lm,
      what: 'the first bytes through the FIFO',
    })
    reader.proc.kill('SIGSTOP')
    await waitFor(() => procState(reader.proc.pid as number) === 'T', { what: 'reader stopped' })
    journal.append(a, uniqueLines('burst-2', 30_000))
    // And a few lines to a quiet file in the same instant: whether an event or the drain's own
    // look at every file brings them in depends on timing; either way they must be out.
    journal.append(b, uniqueLines('quiet-file', 3))
    const receivedAtSignal = statSync(dest).size
    lm.kill('SIGTERM')
    reader.proc.kill('SIGCONT')
    const total = statSync(a).size + statSync(b).size
    // Not stop(): a second SIGTERM means "exit without draining".
    expect(await lm.exited, `logmerge stderr:\n${lm.stderr()}`).toEqual({ code: 0, signal: null })
    expect(await reader.done).toBe(0)
    expect(receivedAtSignal, 'the output was still behind at SIGTERM').toBeLessThan(total / 2)
    expectMerged(completeLines(dest), journal)
    expect(readFileSync(dest).length).toBe(total)
  })

  test(`${engine}: a partial line held through checkpoints and a SIGKILL appears whole, once`, async ({
    tmp,
  }) => {
    const a = join(tmp, 'a.log')
    const b = join(tmp, 'b.log')
    const journal = new Journal()
    journal.append(a, uniqueLines('a-before', 5))
    writeFileSync(b, '')
    const { lm, out } = start(engine, tmp, ['a.log', 'b.log'])
    await waitForAll(out, journal.all, { proc: lm })

    const [line] = uniqueLines('held-across-the-kill', 1) as [string]
    const cut = line.length >> 1
    // Whole lines and the first half of the next in one write, so one read returns both: the
    // whole lines go out, and the checkpoint must record the offset where the half line starts.
    const whole = uniqueLines('a-whole', 3)
    appendFileSync(a, `${whole.map((l) => `${l}\n`).join('')}${line.slice(0, cut)}`)
    journal.record(a, whole)
    // Checkpoints are taken only when something changed: lines in b.log make three of them
    // (each seen in the state file) while a.log's half line is held, unwritten.
    for (let i = 0; i < 3; i++) {
      journal.append(b, uniqueLines(`b-${i}`, 2))
      await waitForAll(out, journal.all, { proc: lm })
      const bSize = statSync(b).size
      await waitFor(
        () => readState(stateOf(out))?.sources.some((s) => s.path === b && s.offset === bSize),
        { proc: lm, what: `a checkpoint with b.log at ${bSize}` },
      )
    }
    expect(readFileSync(out, 'latin1')).not.toContain(line.slice(0, cut))
    lm.kill('SIGKILL')
    expect(await lm.exited).toEqual({ code: null, signal: 'SIGKILL' })

    appendFileSync(a, `${line.slice(cut)}\n`)
    journal.record(a, [line])
    const after = uniqueLines('a-after', 5)
    journal.append(a, after)
    // Wait for the lines after it in a.log, not for it: if it was cut, the diff says how.
    const again = start(engine, tmp, ['a.log', 'b.log'])
    await waitForAll(out, after, { proc: again.lm })
    await stop(again.lm)
    expectMerged(completeLines(out), journal)
    expectQuiet(again.lm)
  })
})
