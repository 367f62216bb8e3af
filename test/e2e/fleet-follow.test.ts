/**
 * The fleet while following (issue 18): the only server goes away and comes back (the hosts'
 * readers wait, the lines stay in their files, nothing is lost or doubled), and under --order
 * time a host that falls silent holds the others back no longer than the reorder window.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { expect } from 'vitest'
import {
  completeLines,
  expectMerged,
  Journal,
  spawnLogmerge,
  stop,
  test,
  uniqueLines,
  waitFor,
  waitForAll,
} from './helpers.js'
import { needNats, startNats } from './nats.js'

const quick = ['--checkpoint-interval', '50', '--poll-interval', '100', '--from', 'start']

function hostFile(tmp: string, host: string): string {
  mkdirSync(join(tmp, host), { recursive: true })
  const file = join(tmp, host, 'app.log')
  writeFileSync(file, '')
  return file
}

test('the server goes away while following: the host waits and sends everything once after', {
  timeout: 90_000,
}, async ({ tmp, skip }) => {
  needNats(skip)
  const nats = await startNats(tmp)
  const url = `nats://${nats.address}/LOGS`
  const file = hostFile(tmp, 'h')
  const out = join(tmp, 'fleet.log')
  const journal = new Journal()
  const host = spawnLogmerge([
    file,
    '-o',
    url,
    '--host-id',
    'h',
    '--state',
    join(tmp, 'h.state'),
    ...quick,
  ])
  const centre = spawnLogmerge([url, '-o', out, ...quick])
  journal.append(file, uniqueLines('before', 200))
  await waitForAll(out, journal.all, { proc: centre, timeout: 30_000 })

  await nats.kill('SIGKILL')
  for (let i = 0; i < 10; i++) {
    journal.append(file, uniqueLines(`down${i}`, 300))
    await sleep(100)
  }
  await waitFor(() => /lost the connection to NATS/.test(host.stderr()), {
    proc: host,
    what: 'the host to say the connection is lost',
  })
  expect(completeLines(out).length).toBe(200) // nothing can have come through meanwhile
  await nats.start() // the same store: the stream and what it held are back
  journal.append(file, uniqueLines('after', 200))
  await waitForAll(out, journal.all, { proc: centre, timeout: 60_000 })
  await Promise.all([stop(host), stop(centre)])
  expectMerged(completeLines(out), journal)
  expect(host.stderr()).toMatch(/reconnected to NATS/)
})

test('--order time: a host that falls silent holds the others back for the window, no longer', {
  timeout: 90_000,
}, async ({ tmp, skip }) => {
  needNats(skip)
  const nats = await startNats(tmp)
  const url = `nats://${nats.address}/LOGS`
  const out = join(tmp, 'fleet.log')
  const hosts = ['web-1', 'web-2'].map((id) => {
    const file = hostFile(tmp, id)
    const proc = spawnLogmerge([file, '-o', url, '--host-id', id, ...quick])
    return { id, file, proc }
  })
  const [loud, silent] = hosts as [(typeof hosts)[0], (typeof hosts)[0]]
  const WINDOW_MS = 1500
  const centre = spawnLogmerge([
    url,
    '-o',
    out,
    '--order',
    'time',
    '--reorder-window',
    `${WINDOW_MS}ms`,
    ...quick,
  ])
  const line = (id: string, n: number) => `${new Date().toISOString()} ${id} ${n}`
  for (const h of hosts) writeFileSync(h.file, `${line(h.id, 0)}\n`, { flag: 'a' })
  await waitFor(() => completeLines(out).length === 2, { proc: centre, what: 'both first lines' })

  // web-2 falls silent for good (its logmerge killed: no end of its file is ever sent).
  silent.proc.kill('SIGKILL')
  await silent.proc.exited
  await sleep(300)
  const text = line(loud.id, 1)
  const written = Date.now()
  writeFileSync(loud.file, `${text}\n`, { flag: 'a' })
  await waitFor(() => completeLines(out).includes(text), {
    proc: centre,
    timeout: 30_000,
    what: "web-1's line after web-2 fell silent",
  })
  const waited = Date.now() - written
  // Held for the window (the silent host might still send an earlier line), then written.
  expect(waited).toBeGreaterThanOrEqual(WINDOW_MS - 100)
  expect(waited).toBeLessThan(WINDOW_MS + 5000)
  await Promise.all([stop(loud.proc), stop(centre)])
})

test("--order time: an ended generation's offset in the centre state is where its bytes end", {
  timeout: 60_000,
}, async ({ tmp, skip }) => {
  needNats(skip)
  const nats = await startNats(tmp)
  const url = `nats://${nats.address}/LOGS`
  const file = hostFile(tmp, 'h')
  const out = join(tmp, 'fleet.log')
  const state = join(tmp, 'centre.state')
  const host = spawnLogmerge([
    join(tmp, 'h', '*.log'),
    '-o',
    url,
    '--host-id',
    'h',
    '--state',
    join(tmp, 'h.state'),
    ...quick,
  ])
  const centre = spawnLogmerge([
    url,
    '-o',
    out,
    '--state',
    state,
    '--order',
    'time',
    '--reorder-window',
    '200ms',
    ...quick,
  ])
  const lines = Array.from({ length: 50 }, (_, i) => `${new Date().toISOString()} line ${i}`)
  const text = lines.map((l) => `${l}\n`).join('')
  writeFileSync(file, text)
  await waitFor(() => completeLines(out).length === 50, { proc: centre, what: 'the lines' })
  // The host lets the file go (deleted): its generation ends, the merge drains and forgets it.
  rmSync(file)
  type Saved = { generations: Record<string, { applied: number; ended: boolean }> }
  const gens = async () =>
    Object.values((JSON.parse(readFileSync(state, 'utf8')) as Saved).generations)
  await waitFor(async () => (await gens()).some((g) => g.ended), {
    proc: centre,
    what: 'the end of the generation in the centre state',
  })
  await sleep(300) // a few more checkpoints after the end
  expect(await gens()).toEqual([
    expect.objectContaining({ ended: true, applied: Buffer.byteLength(text) }),
  ])
  await Promise.all([stop(host), stop(centre)])
})
