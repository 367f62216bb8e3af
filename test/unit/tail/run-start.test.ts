/**
 * A reader made after the run began (a reader thread loads its modules while the main thread's
 * prescan looks at the inputs) counts as new every file born since the run began, not since the
 * reader was made (ReaderOptions.startedAt). Found by the mixed soak on top-down (2026-12-07):
 * a generation born between prescan's look and the thread's start, and renamed away before
 * the thread's first look, was read by no one until the next run, after the generations that
 * followed it. On both shells with real files; fails on both without the option.
 */
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { BIRTH_CLOCK_SLACK_MS } from '../../../src/tail/generation-rules.js'
import { Recorder, recorded, SHELLS, type Shell, type ShellOptions } from './shells.js'

let dir: string
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'logmerge-run-start-'))
})
afterEach(() => rmSync(dir, { recursive: true, force: true }))

/** Past the birth-time rule's clock slack, so that "born before" and "born after" are clear. */
const apart = () => sleep(3 * BIRTH_CLOCK_SLACK_MS)

describe.each(Object.keys(SHELLS))('%s shell', (kind) => {
  const make = SHELLS[kind] as (sink: Recorder, opts?: ShellOptions) => Shell

  test('a generation born after the run began, renamed away before the reader was made: read, before the next', async () => {
    const log = join(dir, 'a.log')
    writeFileSync(log, 'g1 a\n')
    // What prescan recorded: g1 at a.log, read to its end.
    const g1 = recorded(log, 5)
    await apart()
    const startedAt = Date.now() // the run began (before prescan's look, which saw g1)
    await apart()
    renameSync(log, `${log}.1`) // g1
    writeFileSync(log, 'g2 a\n') // born after the run began
    renameSync(log, `${log}.2`) // gone from the name before the reader ever looked
    writeFileSync(log, 'g3 a\n')
    await apart()
    const sink = new Recorder()
    const shell = make(sink, { startedAt }) // the reader thread, made later
    shell.remember([g1])
    await shell.findRotated([log])
    await shell.start([log])
    expect(sink.lines).toEqual(['g2 a', 'g3 a'])
    await shell.close()
  })

  test('a file born before the run began that no state knows stays an old file (not read)', async () => {
    const log = join(dir, 'a.log')
    writeFileSync(`${log}.1`, 'old a\n') // an old generation the state never knew
    writeFileSync(log, 'g1 a\n')
    const g1 = recorded(log, 5)
    await apart()
    const startedAt = Date.now()
    await apart()
    const sink = new Recorder()
    const shell = make(sink, { startedAt })
    shell.remember([g1])
    await shell.findRotated([log])
    await shell.start([log])
    writeFileSync(log, 'g1 a\ng1 b\n')
    await shell.changed(log)
    expect(sink.lines).toEqual(['g1 b'])
    await shell.close()
  })
})
