/**
 * copytruncate while following, with lines still unread when logrotate copies and truncates:
 * logmerge is stopped (SIGSTOP) across each rotation, so when it wakes its file is shorter than
 * its offset and the unread lines are only in the copy. It must find the copy by its first
 * bytes, read it from where it was, then read the truncated file from the start.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect } from 'vitest'
import {
  completeLines,
  ENGINES,
  expectMerged,
  follow,
  Journal,
  logrotateFor,
  pause,
  resume,
  spawnLogmerge,
  stop,
  test,
  uniqueLines,
  waitForAll,
} from './helpers.js'

describe.each(ENGINES)('engine %s', (engine) => {
  test('lines unread at a copytruncate are read from the copy, none lost or doubled', async ({
    tmp,
  }) => {
    const log = join(tmp, 'app.log')
    writeFileSync(log, '')
    const rotate = await logrotateFor(tmp, log, ['copytruncate', 'rotate 5', 'missingok'])
    const { lm, out, journal } = await follow({
      cwd: tmp,
      engine,
      inputs: ['app.log'],
      probe: [log],
      args: ['--log-level', 'info'],
    })
    for (let round = 0; round < 3; round++) {
      await pause(lm)
      // Same length every round: after the truncate the file regrows to exactly the old size,
      // so only its first bytes tell it was truncated.
      journal.append(
        log,
        uniqueLines(`r${round}`, 50).map((l) => l.padEnd(60, '.')),
      )
      await rotate()
      journal.append(
        log,
        uniqueLines(`after${round}`, 5).map((l) => l.padEnd(60, '.')),
      )
      resume(lm)
      await waitForAll(out, journal.all)
    }
    await stop(lm)
    expectMerged(completeLines(out), journal)
    expect(lm.stderr()).toMatch(/copied to .*app\.log\.1 and truncated/)
  })

  test('restarts after copytruncates, while running and while stopped: the copies are not read again', async ({
    tmp,
  }) => {
    const log = join(tmp, 'app.log')
    writeFileSync(log, '')
    const rotate = await logrotateFor(tmp, log, ['copytruncate', 'rotate 5', 'missingok'])
    const args = ['--engine', engine, '--from', 'start', '-o', 'out.log', 'app.log']
    const out = join(tmp, 'out.log')
    const journal = new Journal()
    let lm = spawnLogmerge(args, { cwd: tmp })
    // While running: the truncation is seen and the copy's rest read; then a restart.
    journal.append(log, uniqueLines('run1', 40))
    await waitForAll(out, journal.all, { proc: lm })
    journal.append(log, uniqueLines('run1b', 10))
    await rotate()
    journal.append(log, uniqueLines('run1c', 10))
    await waitForAll(out, journal.all, { proc: lm })
    await stop(lm)
    lm = spawnLogmerge(args, { cwd: tmp })
    journal.append(log, uniqueLines('run2', 10))
    await waitForAll(out, journal.all, { proc: lm })
    await stop(lm)
    // While stopped: unread lines, then a copytruncate, then more lines.
    journal.append(log, uniqueLines('stopped', 20))
    await rotate()
    journal.append(log, uniqueLines('run3', 10))
    lm = spawnLogmerge(args, { cwd: tmp })
    await waitForAll(out, journal.all, { proc: lm })
    await stop(lm)
    expectMerged(completeLines(out), journal)
  })
})
