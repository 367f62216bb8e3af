/**
 * The centre drops what its output holds from the stream without losing what it has not read
 * when the servers restart (issue 18; the 200-kill fleet soak of 2026-12-07 00:17). nats-server
 * before 2.9.18 (Debian 12's 2.9.10) replays a purge "up to sequence N" found in a restarted
 * server's log as a purge of every message the stream held when it was made: a centre that
 * purged behind its checkpoint while hosts kept publishing lost, at the servers' next restart,
 * messages it had not read (exit 9, "deleted before the centre merged them"). The centre now
 * deletes each message by itself. Here: a centre stopped with SIGKILL just after one of its
 * purges, the hosts publishing on, then all three servers SIGKILLed and started again.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { jetstreamManager } from '@nats-io/jetstream'
import { connect } from '@nats-io/transport-node'
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
import { needNats, startCluster } from './nats.js'

test('messages the centre has not read survive a restart of the servers after its purge', {
  timeout: 120_000,
}, async ({ tmp, skip }) => {
  needNats(skip)
  const cluster = await startCluster(tmp)
  const url = cluster.url('LOGS')
  mkdirSync(join(tmp, 'h'))
  const file = join(tmp, 'h', 'app.log')
  writeFileSync(file, '')
  const out = join(tmp, 'fleet.log')
  const journal = new Journal()
  const common = ['--nats-replicas', '3', '--poll-interval', '100']
  const host = spawnLogmerge([
    join(tmp, 'h', '*.log'),
    '-o',
    url,
    '--host-id',
    'h',
    '--state',
    join(tmp, 'h.state.json'),
    '--from',
    'start',
    '--checkpoint-interval',
    '50',
    ...common,
  ])
  // Checkpoints a second apart: the one whose purge is seen is the last one saved.
  const centreArgs = [url, '-o', out, '--checkpoint-interval', '1000', '--log-level', 'debug']
  let centre = spawnLogmerge([...centreArgs, ...common])
  let writing = true
  // A line a millisecond: messages keep coming while the centre saves a checkpoint and purges.
  const writer = (async () => {
    for (let i = 0; writing; i++) {
      const lines = uniqueLines(`w${i}`, 1)
      journal.append(file, lines)
      await sleep(1)
    }
  })()
  await waitForAll(out, journal.all.slice(0, 1), { proc: centre, timeout: 60_000 })
  const purges = () => centre.stderr().match(/purged/g)?.length ?? 0
  const before = purges()
  await waitFor(() => purges() > before, { proc: centre, what: 'a purge', timeout: 30_000 })
  centre.kill('SIGKILL')
  await centre.exited
  // More messages after the purge: the servers' logs then hold it as committed.
  await sleep(1000)
  writing = false
  await writer
  await sleep(500)
  await Promise.all(cluster.nodes.map((n) => n.kill('SIGKILL')))
  await Promise.all(cluster.nodes.map((n) => n.start()))
  centre = spawnLogmerge([...centreArgs, ...common])
  await waitForAll(out, journal.all, { proc: centre, timeout: 60_000 })
  await stop(host)
  await stop(centre)
  expectMerged(completeLines(out), journal)
  // And what the output holds is gone from the stream (all but what the last checkpoint left).
  const nc = await connect({ servers: cluster.nodes.map((n) => n.address) })
  try {
    const { state } = await (await jetstreamManager(nc)).streams.info('LOGS')
    expect(state.first_seq).toBeGreaterThan(100)
    expect(state.messages).toBeLessThan(state.last_seq / 2)
  } finally {
    await nc.close()
  }
})
