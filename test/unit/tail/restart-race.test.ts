/**
 * A name truncated again between the look that restarts it at 0 and the first read there (the
 * mixed soak on top-down, 2026-12-07: at start-up the reader looked at `cpi.log` holding g14 and
 * read it holding g15, g14 having been copied over `cpi.log.1` in between; g15's first lines came
 * out before g14's). The interleaving is forced by the search hook (tests only): the rotation
 * comes during the search for skipped generations that the restart makes before its first read;
 * that search ends by learning what the name holds then (g15), and the read takes it as ours. On both shells with real files. FAILS on main
 * at 5b75ad1+ (this branch holds the test only): giving the restarted cursor its look's first
 * bytes fixes this case but breaks skipped-generations.test.ts (its learn step); see the note.
 */
import { copyFileSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { Recorder, recorded, SHELLS, type Shell, type ShellOptions } from './shells.js'

let dir: string
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'logmerge-restart-race-'))
})
afterEach(() => rmSync(dir, { recursive: true, force: true }))

describe.each(Object.keys(SHELLS))('%s shell', (kind) => {
  const make = SHELLS[kind] as (sink: Recorder, opts?: ShellOptions) => Shell

  test('copied over the last copy again between the restart and its first read: that copy first, then the name', async () => {
    const log = join(dir, 'a.log')
    writeFileSync(`${log}.1`, 'g12 a\n')
    writeFileSync(log, 'g13 a\ng13 b\ng13 c\n')
    const live = recorded(log, 6) // 'g13 a' is out
    copyFileSync(log, `${log}.1`) // g13 copied over the copy before, in place
    const copy = recorded(`${log}.1`, 6) // what start-up made of it: a copy of a.log, from 6
    truncateSync(log, 0)
    writeFileSync(log, 'g14 a\ng14 b\n')
    let armed = true
    const sink = new Recorder()
    let searches = 0
    const rotateAgain = () => {
      armed = false // g14 copied over a.log.1 in place, a.log truncated, g15 written
      copyFileSync(log, `${log}.1`)
      truncateSync(log, 0)
      writeFileSync(log, 'g15 a\n')
    }
    // After findRotated: the first search is a.log's copy search, the second the search for
    // generations its truncation may have skipped, made before the first read.
    const searchHook = () => {
      if (armed && started && ++searches === 2) rotateAgain()
    }
    let started = false
    const shell = make(sink, { searchHook })
    shell.remember([live, copy])
    await shell.findRotated([log])
    started = true
    await shell.start([log])
    await shell.sweep()
    await shell.changed(log)
    await shell.sweep()
    expect(armed).toBe(false)
    expect(sink.lines).toEqual(['g13 b', 'g13 c', 'g14 a', 'g14 b', 'g15 a'])
    await shell.close()
  })
})
