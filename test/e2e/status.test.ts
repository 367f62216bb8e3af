/** `logmerge status` reports what the state file and the disk say, as a table or as JSON. */
import { appendFileSync, statSync, truncateSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { expect } from 'vitest'
import { completeLines, follow, runLogmerge, stop, test, waitFor } from './helpers.js'

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
  expect(source.partialBytesHeld).toBeLessThanOrEqual(4)
  expect(Date.parse(source.lastActivity)).toBeGreaterThan(Date.now() - 60_000)
  expect(source.offset + 26).toBe(statSync(log).size)

  const table = await runLogmerge(['status', '-o', 'out.log'], { cwd: tmp })
  expect(table.stdout.toString()).toMatch(/a\.log\tfollowing\t\d+\t\d+\t26\t[\d.]+\t1\t1\t/)
})

test('status without a state file says where it looked (exit 2)', async ({ tmp }) => {
  const ran = await runLogmerge(['status', '-o', 'nothing.log'], { cwd: tmp })
  expect(ran.code).toBe(2)
  expect(ran.stderr).toMatch(/no state file at .*\.nothing\.log\.logmerge-state\.json/)
})
