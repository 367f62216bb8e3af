/**
 * Follow mode on the real bin/logmerge, the same scenarios for every engine (a conformance
 * suite: a difference in output between engines is a bug).
 */
import { spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import {
  appendFileSync,
  linkSync,
  mkdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs'
import { open } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect } from 'vitest'
import {
  BIN,
  completeLines,
  ENGINES,
  expectMerged,
  finished,
  follow,
  Journal,
  logrotateFor,
  pause,
  resume,
  rssBytes,
  runLogmerge,
  spawnWriter,
  stop,
  test,
  uniqueLines,
  waitFor,
  waitForAll,
} from './helpers.js'

const MiB = 1024 * 1024
/**
 * How much resident memory may grow over idle while a 100 MiB line goes through: less than the
 * line, so a reader that held it whole fails. Measured growth (idle -> peak) per Node version:
 * async, threads and bottom-up 35-39 MiB on Node 20 and 22, 72-82 MiB on Node 24 (90 MiB once
 * under a load average of 15), the same with a 400 MiB line; Node 24's V8 lets external memory
 * (the Buffers of the pieces) pile up further before it collects. Idle itself is higher on
 * Node 22 and 24 (52-79 MiB on 20, 63-100 MiB on 24), so the limit is on the growth.
 */
const RSS_GROWTH_LIMIT = 110 * MiB
/**
 * top-down runs two isolates and hands each block from the reader thread to the main thread in
 * a transferred ArrayBuffer; the main isolate frees those lazily (V8 collects external memory
 * in steps), so it grows more: 62-66 MiB on Node 20 and 22, 123-139 MiB on Node 24. Still
 * bounded: it does not grow with the line (140 MiB with a 400 MiB line on Node 24, 157 MiB
 * peak with a 400 MiB line on Node 20). A shared ring between the threads would remove the
 * churn (a follow-up).
 */
const rssGrowthLimitFor = (engine: string) => (engine === 'top-down' ? 160 * MiB : RSS_GROWTH_LIMIT)

/** Number of newlines in a file (0 if it does not exist). */
const lineCount = (file: string): number => completeLines(file).length

describe.each(ENGINES)('engine %s', (engine) => {
  describe('whole lines', () => {
    test('a line written in two parts appears only whole', async ({ tmp }) => {
      const a = join(tmp, 'a.log')
      const b = join(tmp, 'b.log')
      writeFileSync(a, '')
      writeFileSync(b, '')
      const { lm, out, journal } = await follow({
        cwd: tmp,
        engine,
        inputs: ['a.log', 'b.log'],
        probe: [a, b],
      })
      const [line] = uniqueLines('split-line', 1) as [string]
      const half = line.length >> 1
      appendFileSync(a, line.slice(0, half))
      await sleep(300) // the writer's pause between its two write() calls
      // Meanwhile another file's line goes out: logmerge is busy, and still holds the half line.
      journal.append(b, uniqueLines('b', 1))
      await waitForAll(out, journal.all, { proc: lm })
      expect(completeLines(out).some((l) => l.includes(line.slice(0, half)))).toBe(false)
      appendFileSync(a, `${line.slice(half)}\n`)
      journal.record(a, [line])
      await waitForAll(out, [line], { proc: lm })
      await stop(lm)
      expectMerged(completeLines(out), journal)
    })

    test('--once adds the missing newline to a last line', async ({ tmp }) => {
      writeFileSync(join(tmp, 'a.log'), 'a-1\na-2\na-last')
      writeFileSync(join(tmp, 'b.log'), 'b-last')
      const run = await runLogmerge(['--engine', engine, '--once', 'a.log', 'b.log'], { cwd: tmp })
      expect(run.stderr).toBe('')
      expect(run.code).toBe(0)
      const lines = run.stdout.toString('latin1')
      expect(lines.endsWith('\n')).toBe(true)
      const journal = new Journal()
      journal.record('a', ['a-1', 'a-2', 'a-last'])
      journal.record('b', ['b-last'])
      expectMerged(lines.slice(0, -1).split('\n'), journal)
    })
  })

  test('4 writer processes on 3 files: every line once, in order; SIGTERM drains', async ({
    tmp,
  }) => {
    const files = ['a.log', 'b.log', 'c.log'].map((f) => join(tmp, f))
    for (const f of files) writeFileSync(f, '')
    const [a, b, c] = files as [string, string, string]
    const { lm, out, journal } = await follow({ cwd: tmp, engine, inputs: files, probe: files })
    // Two writers share a.log: each writer's lines keep their order within it.
    const writers = [
      spawnWriter(a, 'w1', 2000),
      spawnWriter(a, 'w2', 2000),
      spawnWriter(b, 'w3', 2000),
      spawnWriter(c, 'w4', 2000),
    ]
    for (const w of writers) {
      await finished(w)
      journal.record(w.name, w.lines)
    }
    // No waiting for the output to catch up: SIGTERM must drain what was written before it.
    await stop(lm)
    expectMerged(completeLines(out), journal)
  })

  describe('rotation', () => {
    test.for([
      { how: 'by file name', input: 'logs/app.log' },
      { how: 'through its directory (rotated names match too)', input: 'logs/' },
    ])(
      'logrotate rename + create, followed $how, while a writer appends',
      async ({ input }, { tmp }) => {
        const logs = join(tmp, 'logs')
        mkdirSync(logs)
        const app = join(logs, 'app.log')
        writeFileSync(app, '')
        const rotate = await logrotateFor(tmp, app, ['create', 'rotate 5', 'missingok'])
        const { lm, out, journal } = await follow({
          cwd: tmp,
          engine,
          inputs: [input],
          probe: [app],
        })
        const writer = spawnWriter(app, 'app', 1200, 1)
        for (let i = 0; i < 4; i++) {
          // Or the writer is done: on a loaded machine four logrotate runs can outlast its
          // 1,200 lines, and the last rotations then move a shorter file (still rotations).
          await waitFor(() => lineCount(app) >= 200 || writer.hasExited, {
            what: 'the writer to fill app.log',
          })
          await rotate()
        }
        await finished(writer)
        journal.record(writer.name, writer.lines)
        expect(lineCount(join(logs, 'app.log.4'))).toBeGreaterThan(0)
        await waitForAll(out, journal.all, { proc: lm })
        await stop(lm)
        expectMerged(completeLines(out), journal)
      },
    )

    test('logrotate copytruncate (the writer paused while it runs)', async ({ tmp }) => {
      const app = join(tmp, 'app.log')
      writeFileSync(app, '')
      const rotate = await logrotateFor(tmp, app, ['copytruncate', 'rotate 5', 'missingok'])
      const { lm, out, journal } = await follow({ cwd: tmp, engine, inputs: [app], probe: [app] })
      const writer = spawnWriter(app, 'app', 900, 1)
      for (let i = 0; i < 3; i++) {
        await waitFor(() => lineCount(app) >= 200, { what: 'the writer to fill app.log' })
        // Lines written between logrotate's copy and its truncate are lost by logrotate itself,
        // and lines not yet read when the file is truncated are only in app.log.1 (not an
        // input): pause the writer and let logmerge catch up first.
        await pause(writer)
        const writtenSoFar = completeLines(app).filter((l) => l.startsWith('app-'))
        await waitForAll(out, writtenSoFar, { proc: lm })
        await rotate()
        resume(writer)
      }
      await finished(writer)
      journal.record(writer.name, writer.lines)
      await waitForAll(out, journal.all, { proc: lm })
      await stop(lm)
      expectMerged(completeLines(out), journal)
    })

    test('truncated to 0, then fewer bytes than before', async ({ tmp }) => {
      const a = join(tmp, 'a.log')
      writeFileSync(a, '')
      const { lm, out, journal } = await follow({ cwd: tmp, engine, inputs: [a], probe: [a] })
      journal.append(a, uniqueLines('before', 20))
      await waitForAll(out, journal.all, { proc: lm })
      truncateSync(a, 0)
      journal.append(a, uniqueLines('after', 2))
      await waitForAll(out, journal.all, { proc: lm })
      await stop(lm)
      expectMerged(completeLines(out), journal)
    })

    test('truncated to 0, then more bytes than before at once', async ({ tmp }) => {
      const a = join(tmp, 'a.log')
      writeFileSync(a, '')
      const { lm, out, journal } = await follow({ cwd: tmp, engine, inputs: [a], probe: [a] })
      journal.append(a, uniqueLines('before', 3))
      await waitForAll(out, journal.all, { proc: lm })
      // Truncate and refill in one go: logmerge may only ever see the file longer than its
      // offset; the changed first bytes must tell it the file was truncated.
      truncateSync(a, 0)
      journal.append(a, uniqueLines('after', 50))
      await waitForAll(out, journal.all, { proc: lm })
      await stop(lm)
      expectMerged(completeLines(out), journal)
    })
  })

  describe('files that come and go', () => {
    test('deleted (with a partial last line) and created again', async ({ tmp }) => {
      const a = join(tmp, 'a.log')
      writeFileSync(a, '')
      // A short poll interval: a deleted file is closed once quiet for twice the interval.
      const { lm, out, journal } = await follow({
        cwd: tmp,
        engine,
        inputs: [a],
        probe: [a],
        args: ['--poll-interval', '100'],
      })
      journal.append(a, uniqueLines('old', 10))
      const [partial] = uniqueLines('old-partial', 1) as [string]
      appendFileSync(a, partial)
      journal.record(a, [partial]) // flushed with a newline added once the file is gone
      await waitForAll(out, journal.all.slice(0, -1), { proc: lm })
      unlinkSync(a)
      journal.append(a, uniqueLines('new', 10), 'a.log again')
      await waitForAll(out, journal.all, { proc: lm })
      await stop(lm)
      expectMerged(completeLines(out), journal)
    })

    test('a file missing at start-up: one warning, then followed once it appears', async ({
      tmp,
    }) => {
      const here = join(tmp, 'here.log')
      const later = join(tmp, 'later.log')
      writeFileSync(here, '')
      const { lm, out, journal } = await follow({
        cwd: tmp,
        engine,
        inputs: ['here.log', 'later.log'],
        probe: [here],
        args: ['--poll-interval', '50'],
      })
      await sleep(300) // several safety sweeps look at the missing name meanwhile
      journal.append(later, uniqueLines('later', 10))
      await waitForAll(out, journal.all, { proc: lm })
      journal.append(later, uniqueLines('later-more', 5))
      await waitForAll(out, journal.all, { proc: lm })
      await stop(lm)
      expectMerged(completeLines(out), journal)
      const stderr = lm.stderr().split('\n').filter(Boolean)
      expect(stderr).toHaveLength(1)
      expect(stderr[0]).toMatch(/^logmerge: warn: .*later\.log/)
    })

    test("a glob ('logs/*.log') picks up a new matching file and ignores others", async ({
      tmp,
    }) => {
      const logs = join(tmp, 'logs')
      mkdirSync(join(logs, 'sub'), { recursive: true })
      const first = join(logs, 'first.log')
      writeFileSync(first, '')
      const { lm, out, journal } = await follow({
        cwd: tmp,
        engine,
        inputs: ['logs/*.log'],
        probe: [first],
      })
      writeFileSync(join(logs, 'notes.txt'), 'not-wanted-1\n')
      writeFileSync(join(logs, 'sub', 'deeper.log'), 'not-wanted-2\n')
      writeFileSync(join(logs, 'first.log.1'), 'not-wanted-3\n')
      const created = join(logs, 'created.log')
      journal.append(created, uniqueLines('created', 10))
      await waitForAll(out, journal.all, { proc: lm })
      // Drain reads every file logmerge follows: a wrongly followed one would show here.
      await stop(lm)
      expectMerged(completeLines(out), journal)
    })
  })

  describe('bytes', () => {
    test('invalid UTF-8, NUL bytes and CRLF pass through byte for byte', async ({ tmp }) => {
      const a = join(tmp, 'a.log')
      writeFileSync(a, '')
      const { lm, out } = await follow({ cwd: tmp, engine, inputs: [a], probe: [a] })
      const before = readFileSync(out) // the probe lines
      const raw = Buffer.concat([
        Buffer.from('crlf line\r\n\r\n'),
        Buffer.from([0xff, 0xfe, 0x80, 0xc3, 0x28, 0x0a]),
        Buffer.from('nul\0in\0the middle\0\n'),
        Buffer.from('lone\rcarriage return\n\n'),
        Buffer.from('caf\u00e9 \u{1f600}\n', 'utf8'),
        Buffer.from([0xe2, 0x82, 0x0a, 0x00, 0x0a]),
      ])
      appendFileSync(a, raw)
      const expected = Buffer.concat([before, raw])
      await waitFor(() => statSync(out).size >= expected.length, { proc: lm, what: 'raw bytes' })
      await stop(lm)
      expect(readFileSync(out).equals(expected)).toBe(true)
    })

    test('a catch-up of 4 files of 6 MiB from their start (lines of 1 byte to 3 KiB, so lines straddle the 1 MiB reads): every line once, each file in order', async ({
      tmp,
    }) => {
      // The event-loop reader reads each megabyte into a buffer it uses again once the writer
      // has written the block (tail/read-buffers.ts): a buffer back too early would be read
      // into while its block waits in the writer's queue, and lines would come out garbled.
      const names = ['a.log', 'b.log', 'c.log', 'd.log']
      const journal = new Journal()
      for (const name of names) {
        const lines: string[] = []
        let bytes = 0
        for (let i = 0; bytes < 6 * MiB; i++) {
          const line = `${name}-${i}-${'x'.repeat((i * 7919) % 3000)}`
          lines.push(line)
          bytes += line.length + 1
        }
        writeFileSync(join(tmp, name), `${lines.join('\n')}\n`)
        journal.record(name, lines)
      }
      const total = names.reduce((n, name) => n + statSync(join(tmp, name)).size, 0)
      const { lm, out } = await follow({
        cwd: tmp,
        engine,
        inputs: names,
        args: ['--from', 'start'],
      })
      const size = () => statSync(out, { throwIfNoEntry: false })?.size ?? 0
      await waitFor(() => size() >= total, { proc: lm, what: 'the catch-up' })
      await stop(lm)
      expect(statSync(out).size).toBe(total)
      expectMerged(completeLines(out), journal)
    })

    test('a catch-up of 2 x 16 MiB into a pipe whose reader waits a second first (-o -): every byte, in time', async ({
      tmp,
    }) => {
      // The writer falls behind its reader threads at once: each big block waits for room in
      // its queue. top-down counted such a block out of flight after its memory had gone back
      // to the thread (a detached buffer: length 0), so the thread waited for room for good,
      // 10-18 MiB in (3 runs in 3 without the fix; 1 in 4 of the catch-up benchmark's runs).
      let total = 0
      for (const name of ['a.log', 'b.log']) {
        const lines: string[] = []
        for (let bytes = 0; bytes < 16 * MiB; ) {
          const line = `${name}-${lines.length}-${'y'.repeat((lines.length * 7919) % 400)}`
          lines.push(line)
          bytes += line.length + 1
        }
        writeFileSync(join(tmp, name), `${lines.join('\n')}\n`)
        total += statSync(join(tmp, name)).size
      }
      const lm = spawn(
        process.execPath,
        [BIN, 'a.log', 'b.log', '-o', '-', '--engine', engine, '--from', 'start', '--no-state'],
        { cwd: tmp, stdio: ['ignore', 'pipe', 'pipe'] },
      )
      try {
        lm.stdout.pause()
        await sleep(1000)
        let got = 0
        lm.stdout.on('data', (d: Buffer) => {
          got += d.length
        })
        lm.stdout.resume()
        await waitFor(() => got >= total, { timeout: 30_000, what: `${total} bytes on stdout` })
        expect(got).toBe(total)
      } finally {
        lm.kill('SIGKILL')
      }
    })

    test('--max-line-bytes 1024 splits a 5000-byte line into pieces', async ({ tmp }) => {
      const a = join(tmp, 'a.log')
      writeFileSync(a, '')
      const { lm, out, journal } = await follow({
        cwd: tmp,
        engine,
        inputs: [a],
        probe: [a],
        args: ['--max-line-bytes', '1024'],
      })
      const skip = completeLines(out).length
      const long = randomLetters(5000)
      const fits = randomLetters(1023) // 1024 bytes with its newline: not split
      const [after] = uniqueLines('after', 1) as [string]
      appendFileSync(a, `${long}\n${fits}\n${after}\n`)
      await waitForAll(out, [after], { proc: lm })
      await stop(lm)
      const lines = completeLines(out).slice(skip)
      expect(lines.at(-1)).toBe(after)
      expect(lines.at(-2)).toBe(fits)
      const pieces = lines.slice(0, -2)
      expect(pieces.map((p) => p.length)).toEqual([1023, 1023, 1023, 1023, 908])
      expect(pieces.join('')).toBe(long)
      expect(journal.all).toHaveLength(skip)
    })

    test('a 100 MiB line without newline: memory stays bounded, 100 pieces of 1 MiB', async ({
      tmp,
    }) => {
      const a = join(tmp, 'a.log')
      writeFileSync(a, '')
      const { lm, out } = await follow({ cwd: tmp, engine, inputs: [a], probe: [a] })
      const start = statSync(out).size
      const idleRss = rssBytes(lm.pid) ?? 0
      let maxRss = idleRss
      const sample = () => {
        maxRss = Math.max(maxRss, rssBytes(lm.pid) ?? 0)
      }
      const sampler = setInterval(sample, 25)
      // The pieces, joined, must be the line's first 100 * (1 MiB - 1) bytes.
      const joinedBytes = 100 * (MiB - 1)
      const expected = createHash('sha256')
      const fh = await open(a, 'a')
      try {
        for (let i = 0; i < 100; i++) {
          const chunk = Buffer.alloc(MiB, 0x61 + (i % 26)) // 'a'..'z', no newline
          chunk.write(`chunk ${i} `, 0, 'latin1') // no newline byte anywhere
          await fh.write(chunk)
          expected.update(chunk.subarray(0, Math.max(0, joinedBytes - i * MiB)))
          sample()
        }
      } finally {
        await fh.close()
      }
      // Each piece is maxLineBytes (1 MiB) with its newline: 100 MiB makes 100 full pieces and
      // 100 bytes still held (not a complete line, so not written at SIGTERM).
      const pieceBytes = MiB
      await waitFor(() => statSync(out).size >= start + 100 * pieceBytes, {
        proc: lm,
        what: '100 pieces',
      })
      clearInterval(sampler)
      sample()
      await stop(lm)
      const mib = (n: number) => `${(n / MiB).toFixed(1)} MiB`
      expect(idleRss).toBeGreaterThan(0)
      expect(maxRss - idleRss, `peak RSS ${mib(maxRss)} (idle ${mib(idleRss)})`).toBeLessThan(
        rssGrowthLimitFor(engine),
      )
      const body = readFileSync(out).subarray(start)
      expect(body.length).toBe(100 * pieceBytes)
      const joined = createHash('sha256')
      for (let i = 0; i < 100; i++) {
        const piece = body.subarray(i * pieceBytes, (i + 1) * pieceBytes)
        expect(piece.indexOf(0x0a)).toBe(pieceBytes - 1)
        joined.update(piece.subarray(0, -1))
      }
      expect(joined.digest('hex')).toBe(expected.digest('hex'))
    })
  })

  describe('the output may not be an input', () => {
    const refused = async (tmp: string, args: string[], names: string[]) => {
      const a = join(tmp, 'a.log')
      const run = await runLogmerge(['--engine', engine, ...args], { cwd: tmp })
      expect(run.code).toBe(2)
      expect(run.stdout.length).toBe(0)
      const lines = run.stderr.split('\n').filter(Boolean)
      expect(lines.length, run.stderr).toBeLessThanOrEqual(2)
      expect(lines[0]).toMatch(/^logmerge: error: /)
      for (const name of names) expect(run.stderr).toContain(name)
      expect(readFileSync(a, 'latin1')).toBe('a-1\n') // untouched
    }

    test('the same path', async ({ tmp }) => {
      writeFileSync(join(tmp, 'a.log'), 'a-1\n')
      await refused(tmp, ['a.log', '-o', join(tmp, 'a.log')], ['a.log', join(tmp, 'a.log')])
    })

    test('a hard link to an input', async ({ tmp }) => {
      writeFileSync(join(tmp, 'a.log'), 'a-1\n')
      linkSync(join(tmp, 'a.log'), join(tmp, 'out.log'))
      await refused(tmp, ['a.log', '-o', 'out.log'], ['a.log', join(tmp, 'out.log')])
    })

    test('a symlink to an input', async ({ tmp }) => {
      writeFileSync(join(tmp, 'a.log'), 'a-1\n')
      symlinkSync('a.log', join(tmp, 'out.log'))
      await refused(tmp, ['a.log', '-o', 'out.log'], ['a.log', join(tmp, 'out.log')])
    })

    test('an input that is a symlink to the output', async ({ tmp }) => {
      writeFileSync(join(tmp, 'a.log'), 'a-1\n')
      writeFileSync(join(tmp, 'out.log'), '')
      symlinkSync('out.log', join(tmp, 'in.log'))
      await refused(tmp, ['a.log', 'in.log', '-o', 'out.log'], ['in.log', join(tmp, 'out.log')])
    })

    test('matched by an input glob', async ({ tmp }) => {
      writeFileSync(join(tmp, 'a.log'), 'a-1\n')
      await refused(tmp, ['*.log', '-o', 'merged.log'], ['*.log', join(tmp, 'merged.log')])
    })

    test('an output directory that does not exist', async ({ tmp }) => {
      writeFileSync(join(tmp, 'a.log'), 'a-1\n')
      await refused(tmp, ['a.log', '-o', 'no/such/dir/out.log'], [join(tmp, 'no/such/dir/out.log')])
    })
  })
})

function randomLetters(n: number): string {
  return Array.from(randomBytes(n), (b) => String.fromCharCode(0x61 + (b % 26))).join('')
}
