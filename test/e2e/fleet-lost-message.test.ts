/**
 * A message the stream acknowledged and then lost (issue 18's 200-kill soak of 2026-12-06
 * 23:36 lost whole generations of a host without a word from the centre): a relay between the
 * host and the server swallows one of the host's publishes and acknowledges it itself
 * (pubDrop), so the host goes on as if it were stored. The centre must not skip the rest of
 * that host's run as early for ever: once a message 32 numbers past the missing one comes (the
 * host sends number n only once every number up to n - 32 is acknowledged), it stops with
 * exit 9 naming the missing number, and its checkpoint keeps it there for a restart.
 */
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { expect } from 'vitest'
import { spawnLogmerge, stop, test, uniqueLines, waitForAll } from './helpers.js'
import { needNats, pubDrop, startNats } from './nats.js'

const quick = ['--checkpoint-interval', '50', '--poll-interval', '100', '--from', 'start']

test('a message the stream acknowledged and lost stops the centre with exit 9 (not silence)', {
  timeout: 60_000,
}, async ({ tmp, skip }) => {
  needNats(skip)
  const nats = await startNats(tmp)
  // The host's 5th message to the stream (LOGS.<host>) never reaches the server.
  const relay = await pubDrop(nats, /^LOGS\./, 5)
  const dir = join(tmp, 'h')
  mkdirSync(dir)
  const file = join(dir, 'app.log')
  writeFileSync(file, '')
  const out = join(tmp, 'fleet.log')
  const host = spawnLogmerge([
    join(dir, '*.log'),
    '-o',
    `nats://${relay.address}/LOGS`,
    '--host-id',
    'h',
    '--state',
    join(tmp, 'h.state.json'),
    ...quick,
  ])
  const centreArgs = [
    `nats://${nats.address}/LOGS`,
    '-o',
    out,
    '--state',
    join(tmp, 'centre.state.json'),
    ...quick,
  ]
  const centre = spawnLogmerge(centreArgs)
  const first = uniqueLines('first', 3)
  for (const line of first) {
    appendFileSync(file, `${line}\n`)
    await sleep(30)
  }
  await waitForAll(out, first, { proc: centre, timeout: 30_000 })
  // One line a message (each appended after the last was read): 60 more messages, the 5th of
  // the run among them swallowed.
  for (const line of uniqueLines('later', 60)) {
    if (centre.hasExited) break
    appendFileSync(file, `${line}\n`)
    await sleep(30)
  }
  const exit = await Promise.race([centre.exited, sleep(20_000, null)])
  expect(relay.dropped(), 'the relay swallowed a publish').not.toBeNull()
  expect(exit, `centre stderr:\n${centre.stderr()}`).toEqual({ code: 9, signal: null })
  expect(centre.stderr()).toMatch(
    /h run \w+: its message number \d+ came, but number 4 never did.*the stream had number 4 and lost it/,
  )
  await stop(host)
  await relay.close()
  // Started again, the centre meets the same message and stops again: the loss is not
  // forgotten by a restart.
  const again = spawnLogmerge(centreArgs)
  expect(await again.exited).toEqual({ code: 9, signal: null })
  expect(again.stderr()).toMatch(/number 4 never did/)
})
