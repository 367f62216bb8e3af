/**
 * SIGTERM/SIGINT in the middle of `--once --order time`, on the spawned bin/logmerge: it stops
 * merging, writes what it released, takes its final checkpoint and exits 0; a rerun with the
 * same state writes the rest, so the two outputs together are the whole merge, no line lost or
 * doubled. Both readers (the reader thread is stopped while it reads ahead) and the partition
 * threads (stopped between the blocks of a partition), a file output and
 * stdout, the async engine and (once) top-down.
 *
 * Oracle: a real `LC_ALL=C sort -m -s -k1,1` of the same files (sorted, fixed-width ISO times,
 * so text order is time order; many equal times across files, which sort -s keeps in file
 * order, as the merge does).
 *
 * Mid-run for sure: the process runs a few milliseconds at a time, stopped (SIGSTOP) in between,
 * until some output is out; the signal is sent while it is stopped, so it comes in the middle
 * of the merge however fast the machine is. That it stopped early is checked (the output is
 * shorter than the merge), not assumed.
 */
import { readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect } from 'vitest'
import { type Child, pause, resume, runLogmerge, spawnLogmerge, test, waitFor } from './helpers.js'
import { sortedIsoFiles, sortMerge } from './sorted-iso.js'

/** The reader thread, the main-thread reader, and the partition threads (batch/partitioned.ts). */
const READERS = [
  ['thread', { LOGMERGE_READER_THREAD: 'on', LOGMERGE_PARTITIONS: 'off' }],
  ['main thread', { LOGMERGE_READER_THREAD: 'off', LOGMERGE_PARTITIONS: 'off' }],
  ['partition threads', { LOGMERGE_PARTITIONS: '2', LOGMERGE_PART_BYTES: '262144' }],
] as const

/** Four files of this many lines: ~40 MB, far more than the merge does between two signals. */
const LINES = 100_000

describe.each(READERS)('--once --order time stopped by a signal, reader %s', (reader, env) => {
  test('SIGTERM with -o FILE --state S: exit 0, exact marks; the rerun completes the merge', {
    timeout: 120_000,
  }, async ({ tmp }) => {
    const files = sortedIsoFiles(tmp, 4, LINES, 11)
    const expected = sortMerge(files)
    const out = join(tmp, 'out.log')
    const state = join(tmp, 'state.json')
    const args = ['--once', '--order', 'time', '--state', state, '--log-level', 'debug']
    const first = spawnLogmerge([...args, '-o', out, ...files], { cwd: tmp, env })
    await signalMidRun(
      first,
      'SIGTERM',
      () => (statSync(out, { throwIfNoEntry: false })?.size ?? 0) > 0,
    )
    const exit = await first.exited
    expect(exit, first.stderr()).toEqual({ code: 0, signal: null })
    expect(first.stderr()).toMatch(/SIGTERM: draining and stopping/)
    expect(first.stderr()).toMatch(/stopped before the end of the merge; run again with --state/)
    // Stopped in the middle of its work, the reader thread ends by itself, not terminated.
    if (reader === 'thread') expect(first.stderr()).toMatch(/the reader thread ended by itself/)

    const partial = readFileSync(out)
    expect(partial.length).toBeGreaterThan(0)
    expect(partial.length).toBeLessThan(expected.length) // it stopped in the middle
    expect(partial.equals(expected.subarray(0, partial.length))).toBe(true)
    expect(partial[partial.length - 1]).toBe(0x0a)
    expectStateCovers(state, files, partial)

    const second = await runLogmerge([...args, '-o', out, ...files], { cwd: tmp, env })
    expect(second.code, second.stderr).toBe(0)
    const whole = readFileSync(out)
    expect(whole.length).toBe(expected.length)
    expect(whole.equals(expected)).toBe(true)
  })

  test('SIGINT to stdout with --state: the two runs write the whole merge between them', {
    timeout: 120_000,
  }, async ({ tmp }) => {
    const files = sortedIsoFiles(tmp, 4, LINES, 12)
    const expected = sortMerge(files)
    const state = join(tmp, 'state.json')
    const args = ['--once', '--order', 'time', '--state', state, ...files]
    const first = spawnLogmerge(args, { cwd: tmp, env })
    await signalMidRun(first, 'SIGINT', () => first.stdout().length > 0)
    const exit = await first.exited
    expect(exit, first.stderr()).toEqual({ code: 0, signal: null })
    const partial = first.stdout()
    expect(partial.length).toBeLessThan(expected.length)
    expect(partial.equals(expected.subarray(0, partial.length))).toBe(true)
    expectStateCovers(state, files, partial)

    const second = await runLogmerge(args, { cwd: tmp, env })
    expect(second.code, second.stderr).toBe(0)
    const whole = Buffer.concat([partial, second.stdout])
    expect(whole.length).toBe(expected.length)
    expect(whole.equals(expected)).toBe(true)
  })

  test('SIGTERM to stdout without state: exit 0, the merge up to a line end, and a warning', {
    timeout: 120_000,
  }, async ({ tmp }) => {
    const files = sortedIsoFiles(tmp, 4, LINES, 13)
    const expected = sortMerge(files)
    const first = spawnLogmerge(['--once', '--order', 'time', ...files], { cwd: tmp, env })
    await signalMidRun(first, 'SIGTERM', () => first.stdout().length > 0)
    const exit = await first.exited
    expect(exit, first.stderr()).toEqual({ code: 0, signal: null })
    expect(first.stderr()).toMatch(/stopped before the end of the merge: the output holds only/)
    const partial = first.stdout()
    expect(partial.length).toBeLessThan(expected.length)
    expect(partial.equals(expected.subarray(0, partial.length))).toBe(true)
    expect(partial[partial.length - 1]).toBe(0x0a)
  })
})

test('the top-down engine stops the same way (SIGTERM, -o FILE --state S, then the rerun)', {
  timeout: 120_000,
}, async ({ tmp }) => {
  const files = sortedIsoFiles(tmp, 4, LINES, 14)
  const expected = sortMerge(files)
  const out = join(tmp, 'out.log')
  const state = join(tmp, 'state.json')
  const args = ['--once', '--order', 'time', '--engine', 'top-down', '--state', state, '-o', out]
  const first = spawnLogmerge([...args, ...files], { cwd: tmp })
  await signalMidRun(
    first,
    'SIGTERM',
    () => (statSync(out, { throwIfNoEntry: false })?.size ?? 0) > 0,
  )
  expect(await first.exited, first.stderr()).toEqual({ code: 0, signal: null })
  const partial = readFileSync(out)
  expect(partial.length).toBeLessThan(expected.length)
  expectStateCovers(state, files, partial)
  const second = await runLogmerge([...args, ...files], { cwd: tmp })
  expect(second.code, second.stderr).toBe(0)
  expect(readFileSync(out).equals(expected)).toBe(true)
})

/**
 * Lets `child` run a few milliseconds at a time until `started` (some output is out), then
 * sends `signal` while it is stopped and lets it go on: the signal lands mid-merge.
 */
async function signalMidRun(
  child: Child,
  signal: NodeJS.Signals,
  started: () => boolean,
): Promise<void> {
  await waitFor(
    async () => {
      resume(child)
      await sleep(5)
      await pause(child)
      return started()
    },
    { what: 'the merge to write output', proc: child, interval: 0 },
  )
  child.kill(signal)
  resume(child)
}

/**
 * The final checkpoint is exact: it records the output's size, and for each file the offset
 * just past its last line in the output (the bytes of its lines there, since each file's lines
 * come out in its own order), a line end.
 */
function expectStateCovers(state: string, files: readonly string[], output: Buffer): void {
  const recorded = JSON.parse(readFileSync(state, 'utf8')) as {
    output: { size: number } | null
    sources: { path: string; offset: number }[]
  }
  if (recorded.output !== null) expect(recorded.output.size).toBe(output.length)
  const bytesOf = files.map(() => 0)
  for (const line of output.toString('latin1').split(/(?<=\n)/)) {
    const file = Number(/ file(\d+) /.exec(line)?.[1])
    bytesOf[file] = (bytesOf[file] ?? 0) + line.length
  }
  expect(recorded.sources.map((s) => [s.path, s.offset])).toEqual(
    files.map((path, i) => [path, bytesOf[i]]),
  )
}
