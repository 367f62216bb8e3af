/**
 * How a copytruncate copy is told from the file whose identity (device and inode) it has: on
 * both shells with real files, and FileTable's rules on their own. Five defects, each test
 * failing without its fix (issue 16, item 2, and service.test.ts's logrotate flake):
 *
 * 1. The time a file with none of its bytes read was "seen empty" was refreshed by every empty
 *    look, including one between logrotate's truncate and the writer's next line, which comes
 *    after the copy was born: the search for generations born since missed the copy, and its
 *    lines came after the next generation's (FileTable.generationsToFind keeps the first).
 * 2. A finished file recorded with an empty fingerprint agreed with any content: when it was
 *    deleted (logrotate's delaycompress) and its inode reused by the next copytruncate copy,
 *    that copy was taken for the old file "written to after it was closed" and read from 0
 *    (133-172 lines twice in the service test). An empty fingerprint now agrees with content
 *    only when that content is not a copy of a followed file.
 * 3. A copy written in place over an existing copy (Node's fs.copyFileSync, cp: the copy keeps
 *    the inode of the copy before it) was skipped by the search after the truncation, its
 *    identity being known: the lines between our offset and the truncation were lost (1-12 a
 *    run). A closed entry whose first bytes, size or write time say it was written over is
 *    another file now (FileTable.isCopyOf, replacedByStat).
 * 4. A copy written in place over a copy that was still open (found again after a restart, and
 *    read to its end as a rotated file) was seen truncated and read again from 0 (whole
 *    generations twice with SIGKILLs), and the copied file's search skipped it as open (its
 *    last lines lost). A file with no name left that is seen truncated was written over: it is
 *    left for the copied file, or read on from where that one was (FileTable.overwritten).
 * 5. That open copy written over again while the copied file's truncation was handled (the
 *    mixed soak on bottom-up, under load): the read of the rotated files that comes before a
 *    read of their name had found the copy of content read through the name and left it; the
 *    copy search then found no copy of that content (written over by the next generation), and
 *    the name's new lines came before that generation's. The rotated files are read again once
 *    the copy search is done (the shells' #readNew).
 */
import {
  appendFileSync,
  copyFileSync,
  mkdtempSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { FileTable } from '../../../src/tail/file-table.js'
import type { OpenedFile, Tracked } from '../../../src/tail/tracked.js'
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
  dir = mkdtempSync(join(tmpdir(), 'logmerge-copy-identity-'))
})
afterEach(() => rmSync(dir, { recursive: true, force: true }))

/**
 * A copytruncate as Node's fs.copyFileSync makes it: `log` copied to `log.1`, written in place
 * when `log.1` exists (truncated, then filled: it keeps its inode), then `log` truncated.
 */
function copyInPlace(log: string): void {
  copyFileSync(log, `${log}.1`)
  truncateSync(log, 0)
}

const inode = (path: string): number => statSync(path).ino

describe.each(Object.keys(SHELLS))('%s shell', (kind) => {
  const make = SHELLS[kind] as (sink: Recorder, opts?: ShellOptions) => Shell

  test('seen empty, written, copied and truncated, seen empty again, then written: the copy first', async () => {
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
    await new Promise((r) => setTimeout(r, 50))
    await shell.changed(log) // the truncation's event: a look between the truncate and the next line
    appendFileSync(log, 'g2 a\n')
    await shell.changed(log)
    expect(sink.lines).toEqual(['g1 a', 'g1 b', 'g2 a'])
    await shell.close()
  })

  test("copies written in place over the copy before them, then truncated: each copy's rest once, before the new lines", async () => {
    const log = join(dir, 'a.log')
    writeFileSync(log, 'g1 a\n')
    const sink = new Recorder()
    const shell = make(sink)
    await shell.findRotated([log])
    await shell.start([log])
    const expected = ['g1 a']
    let copyInode: number | undefined
    for (let g = 1; g <= 3; g++) {
      // Lines not read yet when the file is copied and truncated: only the copy holds them.
      appendFileSync(log, `g${g} b\ng${g} c\n`)
      copyInPlace(log)
      copyInode ??= inode(`${log}.1`)
      expect(inode(`${log}.1`)).toBe(copyInode) // written in place: the same inode each time
      appendFileSync(log, `g${g + 1} a\n`)
      // Later than the copy's write time by more than the clock's tick (see isCopyOf).
      await new Promise((r) => setTimeout(r, 20))
      await shell.changed(log)
      expected.push(`g${g} b`, `g${g} c`, `g${g + 1} a`)
      expect(sink.lines).toEqual(expected)
    }
    await shell.close()
  })

  test("a copy written over the last copy while that one is open (adopted after a restart): the copy's rest once, then the new lines", async () => {
    const log = join(dir, 'a.log')
    writeFileSync(`${log}.1`, 'g0 a\ng0 b\n') // the copy of the generation before
    writeFileSync(log, 'g1 a\n')
    const sink = new Recorder()
    const shell = make(sink)
    // A restart: the state knows both, each read to its end.
    shell.remember([recorded(`${log}.1`, 10), recorded(log, 5)])
    await shell.findRotated([log]) // a.log.1 is found and opened, as a rotated file
    await shell.start([log])
    const copyInode = inode(`${log}.1`)
    appendFileSync(log, 'g1 b\n')
    copyInPlace(log) // over the open a.log.1
    expect(inode(`${log}.1`)).toBe(copyInode)
    appendFileSync(log, 'g2 a\n')
    await new Promise((r) => setTimeout(r, 20))
    await shell.changed(log)
    await shell.sweep()
    await shell.changed(log)
    expect(sink.lines).toEqual(['g1 b', 'g2 a'])
    await shell.close()
  })

  test('the open last copy written over again while the truncation is handled: the generation it holds, then the new lines', async () => {
    const log = join(dir, 'a.log')
    writeFileSync(`${log}.1`, 'g0 a\n') // the copy of the generation before
    writeFileSync(log, 'g1 a\n')
    const sink = new Recorder()
    let writeOver = false
    const shell = make(sink, {
      quietMs: 60_000, // a.log.1 stays open between the looks, as under load
      // The copytruncate writer's next rotation, made while the search for a.log's copy runs
      // (after the read of a.log.1 that comes first has found nothing to read): g2 is copied
      // over a.log.1 in place and truncated, and g3 begun.
      searchHook: () => {
        if (!writeOver) return
        writeOver = false
        copyInPlace(log)
        appendFileSync(log, 'g3 a\n')
      },
    })
    shell.remember([recorded(`${log}.1`, 5), recorded(log, 5)])
    await shell.findRotated([log]) // a.log.1 is found and opened, as a rotated file
    await shell.start([log])
    appendFileSync(log, 'g1 b\n')
    await shell.changed(log)
    // g1, read to its end, is copied over a.log.1 and truncated; g2 is written.
    copyInPlace(log)
    appendFileSync(log, 'g2 a, a longer line\ng2 b\n')
    writeOver = true
    await new Promise((r) => setTimeout(r, 20))
    await shell.changed(log)
    await shell.sweep()
    await shell.changed(log)
    expect(sink.lines).toEqual(['g1 b', 'g2 a, a longer line', 'g2 b', 'g3 a'])
    await shell.close()
  })

  for (const copySize of ['larger', 'smaller'] as const) {
    test(`a generation copied in place (${copySize} than the copy before) and truncated before we read a byte of it: all of it, before the next`, async () => {
      const log = join(dir, 'a.log')
      writeFileSync(log, 'g1 a\n')
      const sink = new Recorder()
      const shell = make(sink)
      await shell.findRotated([log])
      await shell.start([log])
      // g1 is copied (a.log.1 born) and truncated; logmerge reads the copy's rest, then finds
      // a.log empty: it starts again from 0 with none of g2 read.
      appendFileSync(log, 'g1 b, a line of some length\n')
      copyInPlace(log)
      await shell.changed(log)
      expect(sink.lines).toEqual(['g1 a', 'g1 b, a line of some length'])
      // g2 is written, copied over a.log.1 in place and truncated before the next look: the
      // table knows a.log.1's inode as g1's copy, read to its end.
      await new Promise((r) => setTimeout(r, 50))
      const g2 = copySize === 'larger' ? ['g2 a', 'g2 b, longer than the copy before it'] : ['g2']
      appendFileSync(log, g2.map((l) => `${l}\n`).join(''))
      copyInPlace(log)
      appendFileSync(log, 'g3 a\n')
      await shell.changed(log)
      expect(sink.lines).toEqual(['g1 a', 'g1 b, a line of some length', ...g2, 'g3 a'])
      await shell.close()
    })
  }
})

// ---------------------------------------------------------------------------------------------
// FileTable's rules
// ---------------------------------------------------------------------------------------------

/** `path` followed and read to `size`, beginning with `head` (as the shells open a file). */
function follow(t: FileTable<number>, path: string, ino: number, head: string, size: number) {
  t.look(path, { dev: 1, ino })
  const file = t.opened(
    path,
    ino,
    { identity: { dev: 1, ino }, size, head: Buffer.from(head) },
    false,
    0,
  )
  if (!file) throw new Error('not opened')
  file.cursor.frame(Buffer.concat([Buffer.from(head), Buffer.alloc(size - head.length, 0x0a)]))
  return file
}

/** A file found at `ino` now: its size, first bytes and times. */
const found = (
  ino: number,
  head: string,
  size: number,
  times: { mtimeMs: number; birthtimeMs: number },
): OpenedFile & {
  dev: number
  ino: number
  size: number
  mtimeMs: number
  birthtimeMs: number
} => ({
  identity: { dev: 1, ino },
  dev: 1,
  ino,
  size,
  head: Buffer.from(head),
  ...times,
})

describe('a finished empty file whose inode a copytruncate copy reuses', () => {
  // The service test's failures: compressed.log's first generation, followed while empty,
  // rotated away and read to its end (fingerprint empty), then deleted by delaycompress; the
  // same logrotate run copies copied.log, and the copy gets the freed inode 7.
  const setUp = () => {
    const t = new FileTable<number>(1024)
    const copied = follow(t, '/in/copied.log', 3, 'copied-0-abc\ncopied-1-def\n', 9000)
    t.look('/in/compressed.log', { dev: 1, ino: 7 })
    const gen0 = t.opened(
      '/in/compressed.log',
      10,
      { identity: { dev: 1, ino: 7 }, size: 0, head: Buffer.alloc(0) },
      false,
      0,
    )
    if (!gen0) throw new Error('not opened')
    t.look('/in/compressed.log', { dev: 1, ino: 8 }) // rotated: the name leads to a new file
    gen0.handle = null
    t.released(gen0)
    return { t, copied, gen0 }
  }
  const names = new Set(['/in/copied.log', '/in/compressed.log'])

  // Without birth times (0), only the content tells; with them, the birth after the close too.
  for (const births of ['unknown', 'after the close'] as const) {
    test(`is not taken for that copy, nor read from 0, and is the truncated file's copy (birth times ${births})`, () => {
      const { t, copied, gen0 } = setUp()
      const closedAt = gen0.closedAt ?? 0
      const now = closedAt + 1000
      const copy = found(7, 'copied-0-abc\ncopied-1-def\n', 9200, {
        mtimeMs: now,
        birthtimeMs: births === 'unknown' ? 0 : now,
      })
      const hit = t.searchHit('/in/copied.log.1', copy, names, closedAt - 1000)
      const taken =
        hit &&
        t.adoptHit('/in/copied.log.1', 11, copy, hit, {
          unknownSince: closedAt - 1000,
          current: names,
        })
      // Before: 'remembered', "written to after it was closed; reading the new lines", from 0.
      expect(taken).toBeNull()
      expect(gen0.handle).toBeNull()
      // copied.log is then seen truncated: a.log.1 is its copy, whose rest it reads.
      expect(t.mayBeCopy(copied, copy)).toBe(true)
      expect(t.isCopyOf(copied, copy)).toBe(true)
      expect(t.rememberCopy('/in/copied.log.1', copy, copy.head, copy.size)?.replaced).toBe(gen0)
    })
  }

  test('written to after it was closed, by the writer that held it (not a copy): read from 0', () => {
    const { t, gen0 } = setUp()
    const closedAt = gen0.closedAt ?? 0
    const late = found(7, 'compressed-0-late\n', 18, {
      mtimeMs: closedAt + 1000,
      birthtimeMs: closedAt - 5000, // born before we saw it: the same file
    })
    const hit = t.searchHit('/in/compressed.log.1', late, names)
    expect(hit).toBe('remembered')
    const taken = hit && t.adoptHit('/in/compressed.log.1', 12, late, hit)
    expect(taken?.file).toBe(gen0)
    expect(gen0.cursor.offset).toBe(0)
  })
})

describe('a copy written in place over the copy before it', () => {
  // a.log read to 300 of generation 2, then copied over a.log.1 (inode 9, g1's copy, finished
  // at 250 bytes) and truncated.
  const setUp = (g1: string, g2: string) => {
    const t = new FileTable<number>(1024)
    const copy = t.rememberCopy('/x/a.log.1', { dev: 1, ino: 9 }, Buffer.from(g1), 250)
    if (!copy) throw new Error('not remembered')
    const file = follow(t, '/x/a.log', 4, g2, 300)
    return { t, file, before: copy.copy, closedAt: copy.copy.closedAt ?? 0 }
  }

  test("is the copy of the truncated file when its first bytes changed to the file's", () => {
    const { t, file, before, closedAt } = setUp('g1-0 first line\n', 'g2-0 first line\n')
    const old = closedAt - 60_000
    const copy = found(9, 'g2-0 first line\n', 320, { mtimeMs: closedAt + 2500, birthtimeMs: old })
    expect(t.mayBeCopy(file, copy)).toBe(true)
    expect(t.isCopyOf(file, copy)).toBe(true)
    const again = t.rememberCopy('/x/a.log.1', copy, copy.head, copy.size)
    expect(again?.replaced).toBe(before)
    expect(again?.copy.cursor.offset).toBe(320)
    expect(again?.copy.cursor.head.toString()).toBe('g2-0 first line\n')
    // a.log is truncated again, and g3 is written; a.log.1 is unchanged since (nothing
    // written over it): not a copy of g3.
    file.cursor.restart()
    file.cursor.frame(Buffer.from('g3-0 first line\n'))
    const same = found(9, 'g2-0 first line\n', 320, { mtimeMs: closedAt, birthtimeMs: old })
    expect(t.isCopyOf(file, same)).toBe(false)
  })

  test('with first bytes that never change (a fixed header): a copy only when written after it was closed', () => {
    const header = 'HEADER v1 the same for every generation of this log, 64 bytes..\n'
    const { t, file, closedAt } = setUp(header, header)
    const old = closedAt - 60_000
    const unchanged = found(9, header, 250, { mtimeMs: closedAt - 10, birthtimeMs: old })
    expect(t.isCopyOf(file, unchanged)).toBe(false)
    const written = found(9, header, 320, { mtimeMs: closedAt + 2500, birthtimeMs: old })
    expect(t.isCopyOf(file, written)).toBe(true)
  })

  test('a file being followed is never taken for a copy, nor the file itself', () => {
    const t = new FileTable<number>(1024)
    const file = follow(t, '/x/a.log', 4, 'g2-0\n', 300)
    const open: Tracked<number> = follow(t, '/x/a.log.1', 9, 'g2-0\n', 100)
    const copy = found(9, 'g2-0\n', 320, { mtimeMs: Date.now() + 5000, birthtimeMs: 0 })
    expect(open.handle).not.toBeNull()
    expect(t.mayBeCopy(file, copy)).toBe(false)
    expect(t.isCopyOf(file, copy)).toBe(false)
    expect(t.mayBeCopy(file, file.cursor.identity)).toBe(false)
  })
})

describe('a rotated file still open when a copy is written over it', () => {
  // a.log.1 (inode 9) adopted after a restart and read to its end, open for a while as a
  // rotated file; a.log (inode 4) read to 300 of generation 2.
  const setUp = () => {
    const t = new FileTable<number>(1024)
    t.remember([
      {
        identity: { dev: 1, ino: 9 },
        head: Buffer.from('g1-0\n'),
        offset: 250,
        path: '/x/a.log.1',
      },
    ])
    const orphan = t.adoptOrphan('/x/a.log.1', 19, {
      identity: { dev: 1, ino: 9 },
      size: 250,
      head: Buffer.from('g1-0\n'),
    })
    if (!orphan) throw new Error('not adopted')
    const file = follow(t, '/x/a.log', 4, 'g2-0\n', 300)
    return { t, orphan, file }
  }

  test('before a.log is seen truncated: left for a.log, which takes it as its copy', () => {
    const { t, orphan, file } = setUp()
    // It sees itself truncated first: it now begins as a.log does.
    expect(t.overwritten(orphan, Buffer.from('g2-0\n'), { size: 320, mtimeMs: 0 })).toEqual({
      kind: 'leave',
    })
    expect(t.overwritten(orphan, Buffer.alloc(0), { size: 0, mtimeMs: 0 })).toEqual({
      kind: 'leave',
    }) // being written
    const copy = found(9, 'g2-0\n', 320, { mtimeMs: Date.now(), birthtimeMs: 0 })
    expect(t.mayBeCopy(file, copy)).toBe(true)
    expect(t.isCopyOf(file, copy)).toBe(true)
    const taken = t.rememberCopy('/x/a.log.1', copy, copy.head, copy.size)
    expect(taken?.replaced).toBe(orphan) // the shell closes its handle
    expect(t.holds(orphan)).toBe(false)
  })

  test('after a restart, before the start-up pass opens a.log: left for a.log all the same', () => {
    const t = new FileTable<number>(1024)
    const id = { dev: 1, ino: 9 }
    t.remember([
      { identity: id, head: Buffer.from('g1-0\n'), offset: 250, path: '/x/a.log.1' },
      { identity: { dev: 1, ino: 4 }, head: Buffer.from('g2-0\n'), offset: 300, path: '/x/a.log' },
    ])
    const orphan = t.adoptOrphan('/x/a.log.1', 19, {
      identity: id,
      size: 250,
      head: Buffer.alloc(0),
    })
    if (!orphan) throw new Error('not adopted')
    // The copy lands now: a.log is remembered, not open yet. Before: 'own', read from 0.
    const now = { size: 320, mtimeMs: 0 }
    expect(t.overwritten(orphan, Buffer.from('g2-0\n'), now)).toEqual({ kind: 'leave' })
  })

  test('after a.log was seen truncated without it: read on from where a.log was', () => {
    const { t, orphan, file } = setUp()
    t.truncating(file)
    file.cursor.restart()
    expect(t.overwritten(orphan, Buffer.from('g2-0\n'), { size: 320, mtimeMs: 0 })).toEqual({
      kind: 'copy',
      offset: 300,
    })
    expect(t.overwritten(orphan, Buffer.from('g2-0\n'), { size: 280, mtimeMs: 0 })).toEqual({
      kind: 'copy',
      offset: 280,
    })
    // Written after a.log was seen truncated: no copy of what a.log held then, though it
    // begins the same way (a fixed header would).
    const later = { size: 320, mtimeMs: Date.now() + 10_000 }
    expect(t.overwritten(orphan, Buffer.from('g2-0\n'), later)).toEqual({ kind: 'own' })
    // Content that is no copy of ours: truncated by a writer that still holds it.
    expect(t.overwritten(orphan, Buffer.from('other\n'), { size: 6, mtimeMs: 0 })).toEqual({
      kind: 'own',
    })
  })
})
