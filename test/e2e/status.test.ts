/** `logmerge status` reports what the state file and the disk say, as a table or as JSON. */
import { appendFileSync, statSync, truncateSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect } from 'vitest'
import {
  completeLines,
  ENGINES,
  follow,
  runLogmerge,
  spawnLogmerge,
  stop,
  test,
  waitFor,
  waitForAll,
} from './helpers.js'

test('status shows each source offset, its size now and the lag, and the output', async ({
  tmp,
}) => {
  const log = join(tmp, 'a.log')
  writeFileSync(log, '')
  const { lm, out } = await follow({
    cwd: tmp,
    engine: 'async',
    inputs: ['a.log'],
    probe: [log],
    args: ['--max-line-bytes', '1024'],
  })
  appendFileSync(log, `${'L'.repeat(3000)}\n`) // one line split for length
  await waitFor(() => completeLines(out).some((l) => l.startsWith('LLL')) || null, { proc: lm })
  truncateSync(log, 0) // one truncation
  appendFileSync(log, 'after the truncation\n')
  await waitFor(() => completeLines(out).includes('after the truncation') || null, { proc: lm })
  appendFileSync(log, 'held') // a partial line: 4 bytes held
  await waitFor(() => statSync(log).size > 0 || null)
  await stop(lm)
  appendFileSync(log, 'written while stopped\n') // 22 bytes not yet in the output

  const ran = await runLogmerge(['status', '-o', 'out.log', '--json'], { cwd: tmp })
  expect(ran.code).toBe(0)
  const status = JSON.parse(ran.stdout.toString())
  expect(status.output).toMatchObject({ path: out, state: 'same', size: statSync(out).size })
  expect(status.output.recordedSize).toBe(statSync(out).size)
  const [source] = status.sources
  expect(source).toMatchObject({ path: log, state: 'following', size: statSync(log).size })
  expect(source.lagBytes).toBe(22 + 4) // the held partial line is not in the output either
  expect(source).toMatchObject({ linesSplit: 1, truncations: 1 })
  expect(source.linesWritten).toBe(completeLines(out).length) // one source: every output line
  expect(source.partialBytesHeld).toBeLessThanOrEqual(4)
  expect(Date.parse(source.lastActivity)).toBeGreaterThan(Date.now() - 60_000)
  expect(source.offset + 26).toBe(statSync(log).size)

  const table = await runLogmerge(['status', '-o', 'out.log'], { cwd: tmp })
  const written = completeLines(out).length
  expect(table.stdout.toString()).toMatch(
    new RegExp(`a\\.log\\tfollowing\\t\\d+\\t\\d+\\t26\\t[\\d.]+\\t${written}\\t1\\t1\\t`),
  )
})

describe.each(ENGINES)('engine %s', (engine) => {
  test('lines written are counted per source and go on counting after a restart', async ({
    tmp,
  }) => {
    const [a, b] = ['a.log', 'b.log'].map((n) => join(tmp, n)) as [string, string]
    writeFileSync(a, 'a1\na2\na3\n')
    writeFileSync(b, 'b1\n')
    const args = ['--engine', engine, '--from', 'start', '-o', 'out.log', 'a.log', 'b.log']
    const linesOf = async () => {
      const ran = await runLogmerge(['status', '-o', 'out.log', '--json'], { cwd: tmp })
      expect(ran.code).toBe(0)
      const { sources } = JSON.parse(ran.stdout.toString()) as {
        sources: { path: string; linesWritten: number }[]
      }
      return Object.fromEntries(sources.map((s) => [s.path, s.linesWritten]))
    }
    let lm = spawnLogmerge(args, { cwd: tmp })
    await waitForAll(join(tmp, 'out.log'), ['a1', 'a2', 'a3', 'b1'], { proc: lm })
    await stop(lm)
    expect(await linesOf()).toEqual({ [a]: 3, [b]: 1 })
    appendFileSync(a, 'a4\n')
    appendFileSync(b, 'b2\nb3\n')
    lm = spawnLogmerge(args, { cwd: tmp })
    await waitForAll(join(tmp, 'out.log'), ['a4', 'b2', 'b3'], { proc: lm })
    await stop(lm)
    expect(await linesOf()).toEqual({ [a]: 4, [b]: 3 })
  })
})

test('status without a state file says where it looked (exit 2)', async ({ tmp }) => {
  const ran = await runLogmerge(['status', '-o', 'nothing.log'], { cwd: tmp })
  expect(ran.code).toBe(2)
  expect(ran.stderr).toMatch(/no state file at .*\.nothing\.log\.logmerge-state\.json/)
})
