/**
 * A rotated file known by no first bytes at offset 0 (recorded or opened while empty) that
 * then fills with a copy of a followed file: the copy begins as that file did, and that file's
 * reader has read it up to its own offset; it is taken as that file's copy (read on from there
 * once the file is seen truncated), not read again from 0. The empty record comes from a copy
 * caught half made: fs.copyFileSync and cp empty (or create) the target before they write it,
 * and a look can come in between (a writer held up there on a loaded machine). Found by the
 * mixed soak on top-down (2026-12-07, `cpi.log.1` opened empty, then filled with the generation
 * `cpi.log` had been read 1,439 bytes into: 35 lines twice). On both shells with real files.
 * The two tests of a copy opened empty fail on both shells without the rule (FileLook: a
 * nameless file known by no first bytes); the others guard the paths that were right already.
 */
import { copyFileSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import type { RememberedSource } from '../../../src/tail/tracked.js'
import { Recorder, recorded, SHELLS, type Shell, type ShellOptions } from './shells.js'

let dir: string
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'logmerge-copy-empty-'))
})
afterEach(() => rmSync(dir, { recursive: true, force: true }))

const G3 = 'g3 a\ng3 b\ng3 c\n'
/** What the reader should give once g3's copy and g4 are read: g3 from byte 5 on, then g4. */
const G3_REST_G4 = ['g3 b', 'g3 c', 'g4 a', 'g4 b']

/** The writer's copytruncate finished: `log` copied over `log.1`, then truncated, then g4. */
function copyTruncate(log: string): void {
  copyFileSync(log, `${log}.1`)
  truncateSync(log, 0)
  writeFileSync(log, 'g4 a\ng4 b\n')
}

describe.each(Object.keys(SHELLS))('%s shell', (kind) => {
  const make = SHELLS[kind] as (sink: Recorder, opts?: ShellOptions) => Shell

  /** A reader started on `log` with what the state (or prescan) recorded. */
  async function startWith(log: string, sources: RememberedSource[]) {
    const sink = new Recorder()
    const shell = make(sink)
    shell.remember(sources)
    await shell.findRotated([log])
    await shell.start([log])
    return { sink, shell }
  }

  test('an in-place copy caught empty, then written and the name truncated: the copy read on from the recorded offset', async () => {
    const log = join(dir, 'a.log')
    writeFileSync(log, G3)
    writeFileSync(`${log}.1`, 'g2 a\ng2 b\n') // the copy before, read to its end
    const live = recorded(log, 5) // 'g3 a' is in the output
    truncateSync(`${log}.1`, 0) // copyFileSync's first step over the copy before
    const empty = recorded(`${log}.1`, 0) // what prescan saw then
    copyTruncate(log) // the same inode, now holding g3
    const { sink, shell } = await startWith(log, [live, empty])
    expect(sink.lines).toEqual(G3_REST_G4)
    await shell.close()
  })

  test('a new copy caught empty, then written and the name truncated: the same', async () => {
    const log = join(dir, 'a.log')
    writeFileSync(log, G3)
    const live = recorded(log, 5)
    writeFileSync(`${log}.1`, '') // created by the copy, not written yet
    const empty = recorded(`${log}.1`, 0)
    copyTruncate(log)
    const { sink, shell } = await startWith(log, [live, empty])
    expect(sink.lines).toEqual(G3_REST_G4)
    await shell.close()
  })

  test('a copy caught empty and written before the name is truncated: left to the name, which takes it as its copy', async () => {
    const log = join(dir, 'a.log')
    writeFileSync(log, G3)
    const live = recorded(log, 5)
    writeFileSync(`${log}.1`, '')
    const empty = recorded(`${log}.1`, 0)
    copyFileSync(log, `${log}.1`) // copied; not truncated yet
    const { sink, shell } = await startWith(log, [live, empty])
    expect(sink.lines).toEqual(['g3 b', 'g3 c'])
    truncateSync(log, 0)
    writeFileSync(log, 'g4 a\ng4 b\n')
    await shell.changed(log)
    await shell.sweep()
    expect(sink.lines).toEqual(G3_REST_G4)
    await shell.close()
  })

  for (const first of ['the copy', 'the name'] as const) {
    test(`a copy opened empty, then written and the name truncated, ${first} looked at first: read once`, async () => {
      const log = join(dir, 'a.log')
      writeFileSync(log, G3)
      writeFileSync(`${log}.1`, 'g2 a\ng2 b\n')
      const live = recorded(log, 5)
      truncateSync(`${log}.1`, 0) // copyFileSync's first step; its writer is then held up
      const empty = recorded(`${log}.1`, 0)
      const { sink, shell } = await startWith(log, [live, empty]) // opens the copy, empty
      expect(sink.lines).toEqual(['g3 b', 'g3 c'])
      copyTruncate(log)
      if (first === 'the copy') await shell.sweep()
      await shell.changed(log)
      await shell.sweep()
      expect(sink.lines).toEqual(G3_REST_G4)
      await shell.close()
    })
  }

  test("a copy that prescan left (shorter than the name's offset, being made): taken as the name's copy once the name is truncated", async () => {
    const log = join(dir, 'a.log')
    writeFileSync(log, G3)
    const live = recorded(log, 5)
    writeFileSync(`${log}.1`, 'g3 a\ng') // being made; prescan records nothing for it
    copyTruncate(log)
    const { sink, shell } = await startWith(log, [live])
    expect(sink.lines).toEqual(G3_REST_G4)
    await shell.close()
  })

  test('the same written in place over the copy before, which the state recorded read to its end', async () => {
    const log = join(dir, 'a.log')
    writeFileSync(`${log}.1`, 'g2 a, a line longer than the copy to come\ng2 b\n')
    const before = recorded(`${log}.1`, 48)
    writeFileSync(log, G3)
    const live = recorded(log, 5)
    copyTruncate(log) // the same inode, now shorter than its recorded offset
    const { sink, shell } = await startWith(log, [live, before])
    expect(sink.lines).toEqual(G3_REST_G4)
    await shell.close()
  })

  test('a rotated file caught empty that its writer then fills (no copy of anything): read from 0', async () => {
    const log = join(dir, 'a.log')
    writeFileSync(log, G3)
    const live = recorded(log, G3.length)
    writeFileSync(`${log}.1`, '')
    const empty = recorded(`${log}.1`, 0)
    writeFileSync(`${log}.1`, 'g2 a\ng2 b\n') // its own lines
    const { sink, shell } = await startWith(log, [live, empty])
    expect(sink.lines).toEqual(['g2 a', 'g2 b'])
    await shell.close()
  })
})
