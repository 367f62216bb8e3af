/**
 * Remembered files that are not where the checkpoint left them, on both shells with real files:
 * a file rotated after the start-up search but before its name was first looked at (the order
 * bug of the SIGKILL test: the new file's lines came before the old file's rest), and files
 * gone for good, which must leave the table after two scans of their directory; and a
 * copytruncate between the start-up search and the first open (the copy's rest was lost, then
 * read again from its start by a later run: found by the selftest on the reader-thread engines).
 */
import {
  appendFileSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { toRemembered } from '../../../src/state/recover.js'
import { MISSING_SCAN_SWEEPS } from '../../../src/tail/generation-rules.js'
import { prescan, resumePoints } from '../../../src/tail/prescan.js'
import { type SourceState, sourceIdentity } from '../../../src/tail/source-state.js'
import {
  copytruncate,
  Recorder,
  recorded,
  SHELLS,
  type Shell,
  type ShellOptions,
} from './shells.js'

let dir: string
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'logmerge-missing-'))
})
afterEach(() => rmSync(dir, { recursive: true, force: true }))

describe.each(Object.keys(SHELLS))('%s shell', (kind) => {
  const make = SHELLS[kind] as (sink: Recorder, opts?: ShellOptions) => Shell

  test('a file rotated after the start-up search is finished before the new file', async () => {
    const log = join(dir, 'a.log')
    writeFileSync(log, 'old 1\nold 2\n')
    const state = recorded(log, 'old 1\n'.length) // the last run wrote only 'old 1'
    const sink = new Recorder()
    const shell = make(sink)
    shell.remember([state])
    await shell.findRotated([log]) // finds a.log where the state says: nothing to do yet
    // Rotated now, before the start-up pass looks at the name.
    renameSync(log, `${log}.1`)
    writeFileSync(log, 'new 1\nnew 2\n')
    await shell.start([log])
    expect(sink.lines).toEqual(['old 2', 'new 1', 'new 2'])
    await shell.close()
  })

  test.each([
    ['after the start-up search', 'search'],
    ['between the first look at the name and its open', 'open'],
  ])(
    'two generations recorded at one name, the newer renamed %s: each in order',
    async (_, when) => {
      // The soak's top-down run in CI: the checkpoint recorded g1 at a.log; while logmerge was
      // down a.log was renamed to a.log.1 and g2 began at a.log (prescan records it, from 0).
      // g2 was renamed to a.log.2 and g3 began between the stat of a.log and its open: g3 was
      // taken without the search a look makes for a name that moved on, and g2 was read only
      // after g3, when a later search found it.
      const log = join(dir, 'a.log')
      writeFileSync(log, 'g1 1\ng1 2\n')
      const g1 = recorded(log, 'g1 1\n'.length)
      renameSync(log, `${log}.1`)
      writeFileSync(log, 'g2 1\ng2 2\n')
      const g2 = recorded(log, 0)
      let renamed = false
      const rename = () => {
        if (renamed) return
        renamed = true
        renameSync(log, `${log}.2`)
        writeFileSync(log, 'g3 1\n')
      }
      const sink = new Recorder()
      const shell = make(sink, when === 'open' ? { openHook: rename } : {})
      shell.remember([g1, g2])
      await shell.findRotated([log])
      if (when === 'search') rename()
      await shell.start([log])
      expect(renamed).toBe(true)
      expect(sink.lines).toEqual(['g1 2', 'g2 1', 'g2 2', 'g3 1'])
      await shell.close()
    },
  )

  test("a copytruncate after the start-up search: the copy's rest, then the new lines, once", async () => {
    const log = join(dir, 'a.log')
    writeFileSync(log, 'old 1\nold 2\n')
    const state = recorded(log, 'old 1\n'.length) // the last run wrote only 'old 1'
    const sink = new Recorder()
    const shell = make(sink)
    shell.remember([state])
    await shell.findRotated([log]) // finds a.log where the state says, same first bytes
    // copytruncate now, before the start-up pass opens the name: same inode, new first bytes.
    copytruncate(log)
    writeFileSync(log, 'new 1\nnew 2\n')
    expect(statSync(log).ino).toBe(state.identity.ino)
    await shell.start([log])
    expect(sink.lines).toEqual(['old 2', 'new 1', 'new 2'])
    // The copy is known from now on: a later search does not read it again from its start.
    for (let i = 0; i < MISSING_SCAN_SWEEPS; i++) await shell.sweep()
    expect(sink.lines).toEqual(['old 2', 'new 1', 'new 2'])
    await shell.close()
  })

  test("a copytruncate renaming generations while the start-up search lists them: the old copy's rest first", async () => {
    // The selftest's threads run: after a restart, logrotate shifted a.log.1 (the copy whose
    // rest was unread) to a.log.2 between the search's readdir and its stats, so no name it
    // looked at held the copy; it was read only after the next generation.
    const log = join(dir, 'a.log')
    writeFileSync(log, 'g1 1\ng1 2\n')
    copytruncate(log) // while we were down
    writeFileSync(log, 'g2 1\ng2 2\n')
    const copy = recorded(`${log}.1`, 'g1 1\n'.length) // the restart's prescan found it
    const named = recorded(log, 0)
    let shifted = false
    const shiftOnce = () => {
      if (shifted) return
      shifted = true
      copytruncate(log)
      writeFileSync(log, 'g3 1\n')
    }
    const sink = new Recorder()
    const shell = make(sink, { searchHook: shiftOnce })
    shell.remember([copy, named])
    await shell.findRotated([log])
    expect(shifted).toBe(true)
    await shell.start([log])
    expect(sink.lines).toEqual(['g1 2', 'g2 1', 'g2 2', 'g3 1'])
    await shell.close()
  })

  test("a copytruncate whose copy is shifted to .2 while the search after the truncation lists the directory: the copy's rest once", async () => {
    // The selftest's bottom-up run (session 6): 8 lines at the end of a copy lost. The search
    // for logrotate's copy listed the directory, then a rotation shifted the copy to the next
    // number before it was looked at; no name it looked at held it, and it did not look again.
    const log = join(dir, 'a.log')
    writeFileSync(log, 'g1 1\n')
    let shifted = false
    const shiftOnce = () => {
      if (shifted || !existsSync(`${log}.1`)) return
      shifted = true
      renameSync(`${log}.1`, `${log}.2`)
    }
    const sink = new Recorder()
    const shell = make(sink, { searchHook: shiftOnce })
    await shell.start([log])
    expect(sink.lines).toEqual(['g1 1'])
    appendFileSync(log, 'g1 2\ng1 3\n') // not read yet
    copytruncate(log)
    writeFileSync(log, 'g2 1\n')
    await shell.changed(log)
    expect(shifted).toBe(true)
    expect(sink.lines).toEqual(['g1 1', 'g1 2', 'g1 3', 'g2 1'])
    // Remembered as read: later searches do not read the copy again.
    for (let i = 0; i < MISSING_SCAN_SWEEPS; i++) await shell.sweep()
    expect(sink.lines).toEqual(['g1 1', 'g1 2', 'g1 3', 'g2 1'])
    await shell.close()
  })

  test("late lines in a rotated file found by a search come before the new file's next ones", async () => {
    const log = join(dir, 'a.log')
    writeFileSync(log, 'old 1\nold 2\n')
    const state = recorded(log, 'old 1\n'.length)
    // Rotated while logmerge was down; the application has not reopened yet.
    renameSync(log, `${log}.1`)
    writeFileSync(log, '')
    const sink = new Recorder()
    const shell = make(sink)
    shell.remember([state])
    await shell.findRotated([log]) // finds a.log.1 by identity and reads its rest
    await shell.start([log])
    expect(sink.lines).toEqual(['old 2'])
    // Its last line into the old file, then it reopens and writes to the new one.
    appendFileSync(`${log}.1`, 'old 3\n')
    appendFileSync(log, 'new 1\n')
    await shell.changed(log) // the event for a.log: the old file's late line first
    expect(sink.lines).toEqual(['old 2', 'old 3', 'new 1'])
    await shell.close()
  })

  test('late lines between the search and the start-up pass come before the new file', async () => {
    const log = join(dir, 'a.log')
    writeFileSync(log, 'old 1\nold 2\n')
    const state = recorded(log, 'old 1\n'.length)
    renameSync(log, `${log}.1`) // rotated while logmerge was down
    writeFileSync(log, '')
    const sink = new Recorder()
    const shell = make(sink)
    shell.remember([state])
    await shell.findRotated([log]) // a.log.1 by identity: 'old 2'
    appendFileSync(`${log}.1`, 'old 3\n') // the application's last line there, then it reopens
    appendFileSync(log, 'new 1\n')
    await shell.start([log])
    expect(sink.lines).toEqual(['old 2', 'old 3', 'new 1'])
    await shell.close()
  })

  test('a generation copied and truncated before we read a byte of it comes before the next', async () => {
    const log = join(dir, 'a.log')
    writeFileSync(log, 'g1 a\n')
    const sink = new Recorder()
    const shell = make(sink)
    await shell.findRotated([log])
    await shell.start([log])
    copytruncate(log)
    await shell.changed(log) // the truncation is seen: a.log is read again from 0
    // g2 is written, copied and truncated before logmerge reads any of it: the file shows only
    // g3 next time, and our fingerprint of it is empty, so nothing in a.log says it happened.
    appendFileSync(log, 'g2 a\n')
    copytruncate(log)
    appendFileSync(log, 'g3 a\n')
    await shell.changed(log)
    expect(sink.lines).toEqual(['g1 a', 'g2 a', 'g3 a'])
    await shell.close()
  })

  test('two copytruncates between two looks (the readers held): the middle generation before the newest', async () => {
    const log = join(dir, 'a.log')
    writeFileSync(log, 'g1 a\n')
    const sink = new Recorder()
    const shell = make(sink)
    await shell.findRotated([log])
    await shell.start([log])
    // While logmerge does not look (its output full, say): g1 gets a line, is copied and
    // truncated; g2 is written, copied and truncated; g3 is written. Then it looks, later
    // than the clock slack of the birth-time rule.
    appendFileSync(log, 'g1 b\n')
    copytruncate(log)
    appendFileSync(log, 'g2 a\n')
    copytruncate(log)
    appendFileSync(log, 'g3 a\n')
    await new Promise((r) => setTimeout(r, 100))
    await shell.changed(log)
    expect(sink.lines).toEqual(['g1 a', 'g1 b', 'g2 a', 'g3 a'])
    await shell.close()
  })

  test('a file seen empty, then written, copied and truncated before the next look: the copy first', async () => {
    // The service test's logrotate run: the copytruncate input was created empty, logrotate
    // copied it right after the writer's first lines; nothing of ours was ever in it, so no
    // truncation shows, and the copy came after the next generation's first line.
    const log = join(dir, 'a.log')
    writeFileSync(log, '')
    const sink = new Recorder()
    const shell = make(sink)
    await shell.findRotated([log])
    await shell.start([log])
    await shell.changed(log) // looked at: empty
    await new Promise((r) => setTimeout(r, 50)) // later than the birth-time rule's clock slack
    appendFileSync(log, 'g1 a\ng1 b\n')
    copytruncate(log)
    appendFileSync(log, 'g2 a\n')
    await shell.changed(log)
    expect(sink.lines).toEqual(['g1 a', 'g1 b', 'g2 a'])
    await shell.close()
  })

  test('copied and truncated during the search after a truncation: that copy too, before the newest', async () => {
    const log = join(dir, 'a.log')
    writeFileSync(log, 'g1 a\n')
    let armed = false
    const sink = new Recorder()
    // The search after g1's truncation skips a copy of what a.log holds when it begins (g2,
    // not truncated yet); logrotate copies and truncates g2 while the search runs.
    const shell = make(sink, {
      searchHook: () => {
        if (!armed) return
        armed = false
        copytruncate(log)
        appendFileSync(log, 'g3 a\n')
      },
    })
    await shell.findRotated([log])
    await shell.start([log])
    copytruncate(log)
    appendFileSync(log, 'g2 a\n')
    armed = true
    await shell.changed(log)
    expect(armed).toBe(false)
    expect(sink.lines).toEqual(['g1 a', 'g2 a', 'g3 a'])
    await shell.close()
  })

  test('a copy of what the file holds now (copied, not truncated yet) is not read as well', async () => {
    const log = join(dir, 'a.log')
    writeFileSync(log, 'g1 a\n')
    const sink = new Recorder()
    const shell = make(sink)
    await shell.findRotated([log])
    await shell.start([log])
    writeFileSync(`${log}.1`, readFileSync(log)) // copytruncate of g1, unseen
    truncateSync(log, 0)
    appendFileSync(log, 'g2 a\n')
    renameSync(`${log}.1`, `${log}.2`) // the next copytruncate has copied g2, not truncated yet
    writeFileSync(`${log}.1`, readFileSync(log))
    await shell.changed(log) // sees g1 truncated: the copy of g1 first, then a.log from 0
    truncateSync(log, 0) // logrotate's truncate
    appendFileSync(log, 'g3 a\n')
    await shell.changed(log)
    expect(sink.lines).toEqual(['g1 a', 'g2 a', 'g3 a'])
    await shell.close()
  })

  test('a generation created and rotated away between two looks is read, in order', async () => {
    const log = join(dir, 'a.log')
    writeFileSync(log, 'g1 a\n')
    const sink = new Recorder()
    const shell = make(sink)
    await shell.findRotated([log])
    await shell.start([log])
    // Between two looks at a.log: two rotations; the middle generation never sat at the name
    // when logmerge looked.
    writeFileSync(log, 'g1 a\ng1 b\n')
    renameSync(log, `${log}.2`)
    writeFileSync(log, 'g2 a\ng2 b\n')
    renameSync(log, `${log}.1`)
    writeFileSync(log, 'g3 a\n')
    await shell.resolve(log)
    expect(sink.lines).toEqual(['g1 a', 'g1 b', 'g2 a', 'g2 b', 'g3 a'])
    await shell.close()
  })

  test('a generation created and rotated away while the name was seen empty is read before the next', async () => {
    // The 200-kill soak on async: a look at a.log between a writer's rename and its next
    // create saw no file; the generations created and renamed away before the next look were
    // not searched for when the name led to a file again (the look compared the new file
    // with "no file" and saw nothing move on), and a later periodic search read them after
    // the newer one.
    const log = join(dir, 'a.log')
    writeFileSync(log, 'g1 a\n')
    const sink = new Recorder()
    const shell = make(sink)
    await shell.findRotated([log])
    await shell.start([log])
    renameSync(log, `${log}.1`)
    await shell.resolve(log) // no file at the name: g1 read to its end
    writeFileSync(log, 'g2 a\n')
    renameSync(log, `${log}.2`)
    writeFileSync(log, 'g3 a\n')
    await shell.resolve(log)
    expect(sink.lines).toEqual(['g1 a', 'g2 a', 'g3 a'])
    await shell.close()
  })

  test('a name empty at the start-up pass, then created, rotated and created again: each generation in order', async () => {
    const log = join(dir, 'a.log')
    writeFileSync(log, 'g1 a\ng1 b\n')
    const state = recorded(log, 'g1 a\n'.length)
    renameSync(log, `${log}.1`) // while logmerge was down; the writer has not created a.log yet
    const sink = new Recorder()
    const shell = make(sink)
    shell.remember([state])
    await shell.findRotated([log]) // g1's rest
    await shell.start([log]) // no file at a.log
    writeFileSync(log, 'g2 a\n')
    renameSync(log, `${log}.2`)
    writeFileSync(log, 'g3 a\n')
    await shell.resolve(log)
    expect(sink.lines).toEqual(['g1 b', 'g2 a', 'g3 a'])
    await shell.close()
  })

  test('recorded empty, written while down, then copied and truncated between prescan and the first read: the copy first', async () => {
    // The bounded soak on async (CI): the checkpoint recorded cpy.log empty. While logmerge was
    // down g1 was written; prescan saw it; then logrotate copied g1 to cpy.log.1 and truncated,
    // and g2 was written, all before the start-up pass read cpy.log. The empty fingerprint
    // agreed with g2, which was read as the file's growth, and g1 only later, by a search.
    const log = join(dir, 'a.log')
    writeFileSync(log, '')
    const st = statSync(log)
    const state: SourceState = { ...sourceIdentity(st), path: log, head: '', offset: 0 }
    writeFileSync(log, 'g1 a\ng1 b\n')
    const found = await prescan([log], [state], 'start', Date.now() - 60_000)
    copytruncate(log)
    writeFileSync(log, 'g2 a\n')
    const sink = new Recorder()
    const shell = make(sink)
    shell.remember(toRemembered(resumePoints([state], found)))
    await shell.findRotated([log])
    await shell.start([log])
    expect(sink.lines).toEqual(['g1 a', 'g1 b', 'g2 a'])
    await shell.close()
  })

  test('a finished file is forgotten after two scans miss it, and not before', async () => {
    const log = join(dir, 'a.log')
    writeFileSync(log, 'one\n')
    const sink = new Recorder()
    const shell = make(sink)
    await shell.findRotated([log])
    await shell.start([log])
    const first = statSync(log)
    renameSync(log, `${log}.1`) // rotated: read to its end, then closed after quietMs (0)
    writeFileSync(log, 'two\n')
    for (let i = 0; i < 3; i++) await shell.sweep()
    const firstKey = `${first.dev}:${first.ino}`
    expect(shell.keys()).toContain(firstKey)
    expect(sink.lines).toEqual(['one', 'two'])
    // Still on disk: scans find it, it stays (seen again under a matching name, it must not be
    // read twice).
    for (let i = 0; i < 2 * MISSING_SCAN_SWEEPS; i++) await shell.sweep()
    expect(shell.keys()).toContain(firstKey)
    rmSync(`${log}.1`)
    for (let i = 0; i < MISSING_SCAN_SWEEPS; i++) await shell.sweep()
    expect(shell.keys()).toContain(firstKey) // one scan missed it: not yet
    for (let i = 0; i < MISSING_SCAN_SWEEPS; i++) await shell.sweep()
    expect(shell.keys()).not.toContain(firstKey)
    expect(shell.keys()).toHaveLength(1)
    await shell.close()
  })
})
