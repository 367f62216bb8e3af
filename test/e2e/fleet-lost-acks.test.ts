/**
 * A host whose acknowledgements were lost (issue 18's 30-kill run of 2026-12-06 23:50): the
 * stream stored its messages and the centre wrote their lines, but the host never heard, so
 * its checkpoint stayed behind while its copytruncate file was copied and truncated again and
 * again; then it was SIGKILLed. The next run reads the copies again from the checkpoint and
 * must send those bytes under the generations the first run gave them, so the centre trims
 * them instead of writing them twice. The acknowledgements are withheld by a relay between
 * the host and the server (replyHold), so this happens on purpose, not by chance.
 */
import { copyFileSync, mkdirSync, truncateSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { expect } from 'vitest'
import {
  completeLines,
  expectMerged,
  Journal,
  pause,
  resume,
  spawnLogmerge,
  stop,
  test,
  uniqueLines,
  waitForAll,
} from './helpers.js'
import { needNats, replyHold, startNats } from './nats.js'

const quick = ['--checkpoint-interval', '50', '--poll-interval', '100', '--from', 'start']

for (const engine of ['async', 'threads']) {
  test(`${engine}: copies made while the acknowledgements were lost are not written twice after a SIGKILL`, {
    timeout: 90_000,
  }, async ({ tmp, skip }) => {
    needNats(skip)
    const nats = await startNats(tmp)
    const relay = await replyHold(nats)
    const dir = join(tmp, 'h')
    mkdirSync(dir)
    const file = join(dir, 'app.log')
    writeFileSync(file, '')
    const out = join(tmp, 'fleet.log')
    const journal = new Journal()
    let rotations = 0
    const append = (n: number, name: string) => {
      const lines = uniqueLines(name, n)
      journal.append(file, lines, `app#${rotations}`)
      return lines
    }
    const hostArgs = [
      join(dir, '*.log'),
      '-o',
      `nats://${relay.address}/LOGS`,
      '--host-id',
      'h',
      '--engine',
      engine,
      '--threads',
      '2',
      '--state',
      join(tmp, 'h.state.json'),
      '--log-level',
      'info',
      ...quick,
    ]
    let host = spawnLogmerge(hostArgs)
    const centre = spawnLogmerge([`nats://${nats.address}/LOGS`, '-o', out, ...quick])
    await waitForAll(out, append(40, 'acked'), { proc: centre, timeout: 30_000 })
    await sleep(300) // the host's checkpoint records them

    relay.hold()
    await waitForAll(out, append(40, 'unacked'), { proc: centre })
    // Copied while the host is stopped: it reads the lines it had not read from the copy
    // (the 23:50 run's app.log.16, in whose generation the first run's checkpoint stayed).
    await pause(host)
    append(5, 'tail')
    copyFileSync(file, `${file}.1`)
    truncateSync(file, 0)
    rotations++
    resume(host)
    await waitForAll(out, append(30, 'gen1'), { proc: centre })
    // Copied once read: these generations stay under app.log's key.
    for (let i = 2; i <= 7; i++) {
      copyFileSync(file, `${file}.${i}`)
      truncateSync(file, 0)
      rotations++
      await waitForAll(out, append(30, `gen${i}`), { proc: centre })
    }
    host.kill('SIGKILL')
    await host.exited
    // The state the next run starts from, for a failing run's kept directory.
    copyFileSync(join(tmp, 'h.state.json'), join(tmp, 'first.state.json'))
    const first = host.stderr()
    relay.letGo()

    host = spawnLogmerge(hostArgs)
    await waitForAll(out, append(20, 'after'), { proc: centre, timeout: 30_000 })
    await sleep(1000) // anything sent twice arrives meanwhile
    await stop(host)
    await stop(centre)
    expect(first).not.toMatch(/error/)
    expect(first).toMatch(/app\.log\.1 and truncated; reading the rest of the copy first/)
    expectMerged(completeLines(out), journal)
    expect(
      host.stderr(),
      'the second run gave fresh ids to bytes the first run had published',
    ).not.toMatch(/new generation/)
  })
}
