/**
 * The decisions of the shells' directory searches (generation-search.ts: MissingScan,
 * CopySearch) and the generation rules they rest on (generation-rules.ts), on their own, with
 * no files: each test breaks if its rule does. The shells' I/O around them is exercised in
 * missing.test.ts and copy-identity.test.ts with real files.
 */
import { describe, expect, test } from 'vitest'
import { FileTable } from '../../../src/tail/file-table.js'
import {
  BIRTH_CLOCK_SLACK_MS,
  hitMessage,
  isUnknownGeneration,
  missedTooOften,
  newerThan,
  PRUNE_AFTER,
  PRUNE_UNFINISHED_AFTER,
  replacedByStat,
} from '../../../src/tail/generation-rules.js'
import {
  CopySearch,
  type ListedStat,
  MissingScan,
  SEARCH_ATTEMPTS,
} from '../../../src/tail/generation-search.js'
import type { OpenedFile, Tracked } from '../../../src/tail/tracked.js'
import { Truncations } from '../../../src/tail/truncations.js'

const stat = (ino: number, size: number, born = 1000, changed = born): ListedStat => ({
  dev: 1,
  ino,
  size,
  birthtimeMs: born,
  mtimeMs: born,
  ctimeMs: changed,
})

const openedAs = (st: ListedStat, head: string): OpenedFile => ({
  identity: st,
  size: st.size,
  head: Buffer.from(head),
  mtimeMs: st.mtimeMs,
  birthtimeMs: st.birthtimeMs,
})

/** A table that remembers the file `ino` at `path`, read to `offset`, beginning with `head`. */
function remembering(path: string, ino: number, head: string, offset: number): FileTable<number> {
  const t = new FileTable<number>(1024)
  t.remember([{ identity: { dev: 1, ino }, head: Buffer.from(head), offset, path }])
  return t
}

/** `path` followed and read to `size`, beginning with `head` (as the shells open a file). */
function follow(t: FileTable<number>, path: string, ino: number, head: string, size: number) {
  t.look(path, { dev: 1, ino })
  const file = t.opened(path, ino, openedAs(stat(ino, size), head), false, 0)
  if (!file) throw new Error('not opened')
  file.cursor.frame(Buffer.concat([Buffer.from(head), Buffer.alloc(size - head.length, 0x0a)]))
  return file
}

describe('MissingScan', () => {
  test('a search made for one name stats only its rotated generations', () => {
    const t = new FileTable<number>(1024)
    const scan = new MissingScan(
      t,
      new Set(['/in/a.log']),
      new Set(['/in']),
      { family: '/in/a.log' },
      1,
    )
    expect(scan.wants('/in/a.log.1')).toBe(true)
    expect(scan.wants('/in/b.log.1')).toBe(false)
  })

  test('input names are left to the looks, except in a periodic scan', () => {
    const t = new FileTable<number>(1024)
    const names = new Set(['/in/a.log'])
    expect(new MissingScan(t, names, new Set(['/in']), {}, 1).wants('/in/a.log')).toBe(false)
    expect(
      new MissingScan(t, names, new Set(['/in']), { settle: true }, 1).wants('/in/a.log'),
    ).toBe(true)
  })

  test('a remembered file found under another name is opened, and read on from where it was', () => {
    const t = remembering('/in/a.log', 5, 'first line', 40)
    const scan = new MissingScan(t, new Set(['/in/a.log']), new Set(['/in']), {}, 1)
    const st = stat(5, 100)
    scan.saw('/in/a.log.1', st)
    const hits = [...scan.toOpen()]
    expect(hits.map((h) => [h.path, h.hit])).toEqual([['/in/a.log.1', 'remembered']])
    expect(scan.isStated(st, st)).toBe(true)
    const taken = scan.take('/in/a.log.1', 9, openedAs(st, 'first line'), 'remembered')
    expect(taken?.file.cursor.offset).toBe(40)
    expect(taken?.note).toBeNull() // the writer knows it already
    expect(taken?.forget).toBeNull()
    expect(taken?.message).toMatch(/rotated while logmerge was not looking/)
  })

  test('generations are opened oldest first, by birth time then change time', () => {
    const t = new FileTable<number>(1024)
    t.remember([
      { identity: { dev: 1, ino: 1 }, head: Buffer.from('x'), offset: 0, path: '/in/a.log' },
      { identity: { dev: 1, ino: 2 }, head: Buffer.from('y'), offset: 0, path: '/in/a.log' },
      { identity: { dev: 1, ino: 3 }, head: Buffer.from('z'), offset: 0, path: '/in/a.log' },
    ])
    const scan = new MissingScan(t, new Set(['/in/a.log']), new Set(['/in']), {}, 1)
    scan.saw('/in/a.log.1', stat(1, 10, 3000))
    scan.saw('/in/a.log.3', stat(2, 10, 1000, 5))
    scan.saw('/in/a.log.2', stat(3, 10, 1000, 9))
    expect([...scan.toOpen()].map((h) => h.path)).toEqual([
      '/in/a.log.3',
      '/in/a.log.2',
      '/in/a.log.1',
    ])
  })

  test('a file taken over is not opened again under a second name in the same search', () => {
    const t = remembering('/in/a.log', 5, 'first line', 0)
    const scan = new MissingScan(t, new Set(['/in/a.log']), new Set(['/in']), {}, 1)
    const st = stat(5, 100)
    scan.saw('/in/a.log.1', st)
    scan.saw('/in/a.log.old', { ...st, birthtimeMs: 2000 })
    const paths: string[] = []
    for (const { path, hit } of scan.toOpen()) {
      paths.push(path)
      scan.take(path, 9, openedAs(st, 'first line'), hit)
    }
    expect(paths).toEqual(['/in/a.log.1'])
  })

  test("another file opened than the one stat'ed is not read, and the search is made again", () => {
    const t = new FileTable<number>(1024)
    const scan = new MissingScan(t, new Set(), new Set(['/in']), {}, 1)
    expect(scan.again()).toBe(false)
    expect(scan.isStated(stat(5, 1), stat(6, 1))).toBe(false)
    expect(scan.again()).toBe(true)
  })

  test('a file gone since the stat makes the search again; one that cannot be opened does not', () => {
    const t = new FileTable<number>(1024)
    const gone = new MissingScan(t, new Set(), new Set(['/in']), {}, 1)
    gone.openFailed(Object.assign(new Error('gone'), { code: 'ENOENT' }))
    expect(gone.again()).toBe(true)
    const denied = new MissingScan(t, new Set(), new Set(['/in']), {}, 1)
    denied.openFailed(Object.assign(new Error('denied'), { code: 'EACCES' }))
    expect(denied.again()).toBe(false)
  })

  test(`a search is made at most ${SEARCH_ATTEMPTS} times`, () => {
    const t = new FileTable<number>(1024)
    const last = new MissingScan(t, new Set(), new Set(['/in']), {}, SEARCH_ATTEMPTS)
    last.dirChanged()
    expect(last.again()).toBe(false)
    const before = new MissingScan(t, new Set(), new Set(['/in']), {}, SEARCH_ATTEMPTS - 1)
    before.dirChanged()
    expect(before.again()).toBe(true)
  })

  test('only the first attempt of a periodic scan counts misses', () => {
    const t = remembering('/in/a.log', 5, 'x', 0)
    const file = [...t.missing()][0] as Tracked<number>
    expect(new MissingScan(t, new Set(), new Set(['/in']), { settle: true }, 2).settle()).toEqual(
      [],
    )
    expect(file.missed).toBe(0)
    expect(new MissingScan(t, new Set(), new Set(['/in']), {}, 1).settle()).toEqual([])
    expect(file.missed).toBe(0)
    new MissingScan(t, new Set(), new Set(['/in']), { settle: true }, 1).settle()
    expect(file.missed).toBe(1)
  })

  test('a file seen by a periodic scan has its misses reset', () => {
    const t = remembering('/in/a.log', 5, 'x', 0)
    const file = [...t.missing()][0] as Tracked<number>
    new MissingScan(t, new Set(), new Set(['/in']), { settle: true }, 1).settle()
    const scan = new MissingScan(t, new Set(), new Set(['/in']), { settle: true }, 1)
    scan.saw('/in/a.log.1', stat(5, 0))
    scan.settle()
    expect(file.missed).toBe(0)
  })
})

describe('CopySearch', () => {
  test('a file with no first bytes of ours has no copy to look for', () => {
    const t = new FileTable<number>(1024)
    const empty = follow(t, '/in/e.log', 1, '', 0)
    expect(new CopySearch(t, empty, 1).wanted).toBe(false)
    const full = follow(t, '/in/a.log', 2, 'first line', 40)
    expect(new CopySearch(t, full, 1).wanted).toBe(true)
  })

  test('only rotated siblings of the file are looked at', () => {
    const t = new FileTable<number>(1024)
    const file = follow(t, '/in/a.log', 2, 'first line', 40)
    const search = new CopySearch(t, file, 1)
    expect(search.wants('/in/a.log.1')).toBe(true)
    expect(search.wants('/in/b.log.1')).toBe(false)
  })

  test('the copy is read from our offset only when it holds more than we read', () => {
    const t = new FileTable<number>(1024)
    const file = follow(t, '/in/a.log', 2, 'first line', 40)
    const search = new CopySearch(t, file, 1)
    expect(search.restMessage('/in/a.log.1', 40)).toBeNull()
    expect(search.restMessage('/in/a.log.1', 41)).toMatch(/copied to \/in\/a.log.1 and truncated/)
  })

  test('a copy recorded over the copy before it (same inode) has the writer forget that one', () => {
    const t = new FileTable<number>(1024)
    const file = follow(t, '/in/a.log', 2, 'first line', 40)
    const first = new CopySearch(t, file, 1).recorded(
      '/in/a.log.1',
      openedAs(stat(7, 40), 'first line'),
    )
    expect(first?.forget).toBeNull()
    expect(first?.release).toBeNull()
    expect(first?.announce.finished).toBe(true)
    const second = new CopySearch(t, file, 1).recorded(
      '/in/a.log.1',
      openedAs(stat(7, 60), 'first line'),
    )
    expect(second?.forget).toBe('1:7')
    expect(second?.announce.cursor.offset).toBe(60)
  })

  test("a sibling opened that is not the one stat'ed makes the search again", () => {
    const t = new FileTable<number>(1024)
    const file = follow(t, '/in/a.log', 2, 'first line', 40)
    const search = new CopySearch(t, file, 1)
    expect(search.again(() => false)).toBe(false)
    expect(search.isStated(stat(7, 1), stat(8, 1))).toBe(false)
    expect(search.again(() => false)).toBe(true)
    expect(new CopySearch(t, file, SEARCH_ATTEMPTS).again(() => true)).toBe(false)
    expect(new CopySearch(t, file, 1).again(() => true)).toBe(true)
  })
})

describe('generation rules', () => {
  test('a generation born within the clock slack before the search began still counts', () => {
    const names = new Set(['/in/a.log'])
    expect(newerThan('/in/a.log.1', 10_000 - BIRTH_CLOCK_SLACK_MS + 1, names, 10_000)).toBe(true)
    expect(newerThan('/in/a.log.1', 10_000 - BIRTH_CLOCK_SLACK_MS, names, 10_000)).toBe(false)
    expect(newerThan('/in/a.log.1', 0, names, 0)).toBe(false) // no birth time: never
    expect(newerThan('/in/b.log.1', 20_000, names, 10_000)).toBe(false) // not an input's
  })

  test(`a missing file is dropped after ${PRUNE_AFTER} misses if finished, ${PRUNE_UNFINISHED_AFTER} if not`, () => {
    const t = remembering('/in/a.log', 5, 'x', 0)
    const file = [...t.missing()][0] as Tracked<number>
    for (let i = 1; i < PRUNE_UNFINISHED_AFTER; i++) expect(missedTooOften(file)).toBe(false)
    expect(missedTooOften(file)).toBe(true)
    file.missed = 0
    file.finished = true
    for (let i = 1; i < PRUNE_AFTER; i++) expect(missedTooOften(file)).toBe(false)
    expect(missedTooOften(file)).toBe(true)
  })

  test('a remembered file read to its end is taken over without a word', () => {
    const was = { known: true, finished: false, path: '/in/a.log', unread: false }
    expect(hitMessage('/in/a.log.1', { kind: 'resume' }, was)).toBeNull()
    expect(hitMessage('/in/a.log.1', { kind: 'resume' }, { ...was, unread: true })).toMatch(
      /rotated while logmerge was not looking/,
    )
    expect(
      hitMessage('/in/a.log.1', { kind: 'resume' }, { ...was, unread: true, finished: true }),
    ).toMatch(/written to after it was closed/)
    expect(hitMessage('/in/a.log', { kind: 'resume' }, { ...was, unread: true })).toBeNull()
  })

  test('an entry whose inode a file born at another time holds is dropped as deleted (dropReborn), and replacedByStat says so', () => {
    const t = new FileTable<number>(1024)
    t.remember([
      {
        identity: { dev: 1, ino: 5, birthtimeMs: 1000 },
        head: Buffer.from('old'),
        offset: 14_459,
        path: '/in/a.log.53',
      },
    ])
    const known = t.files.get('1:5') as Tracked<number>
    expect(replacedByStat(known, stat(5, 0, 2000))).toBe(true)
    // Born when recorded, or no birth time on either side: only the size and first bytes tell.
    expect(t.dropReborn(stat(5, 0, 1000))).toBeNull()
    expect(t.dropReborn(stat(5, 0, 0))).toBeNull()
    expect(t.files.has('1:5')).toBe(true)
    expect(t.dropReborn(stat(5, 0, 2000))).toBe(known)
    expect(t.files.has('1:5')).toBe(false)
    expect([...t.missing()]).toEqual([])
    // The new file opens as a file never seen: from 0, not at the old offset.
    const file = t.opened('/in/a.log', 9, openedAs(stat(5, 0, 2000), ''), false, 0)
    expect(file?.cursor.offset).toBe(0)
  })

  test('an entry with a handle is never dropped by a birth time (the inode cannot be reused while held)', () => {
    const t = new FileTable<number>(1024)
    const file = follow(t, '/in/a.log', 5, 'x', 10)
    expect(t.dropReborn(stat(5, 10, 9999))).toBeNull()
    expect(t.files.get('1:5')).toBe(file)
  })

  test('after a truncation, a file no one knew, born before but written since, is an unknown generation (a copy written in place)', () => {
    const names = new Set(['/in/a.log'])
    const files = new Map<string, Tracked<unknown>>()
    const inPlace = { ...stat(7, 500, 1000), mtimeMs: 5000 }
    expect(isUnknownGeneration(files, '/in/a.log.1', inPlace, names, 3000, true)).toBe(true)
    // Neither born nor written since: an old generation.
    expect(isUnknownGeneration(files, '/in/a.log.1', stat(7, 500, 1000), names, 3000, true)).toBe(
      false,
    )
    // No truncation started the search: an old file written to late is no new generation.
    expect(isUnknownGeneration(files, '/in/a.log.1', inPlace, names, 3000)).toBe(false)
  })
})

describe('Truncations', () => {
  const fileAt = (offset: number, head: string) =>
    ({ key: '1:5', cursor: { offset, head: Buffer.from(head) } }) as unknown as Tracked<unknown>

  test('after a truncation, the search for generations between is due at once, even while the file is empty', () => {
    const cuts = new Truncations()
    const file = fileAt(0, '')
    cuts.sawWhole(file, 1000)
    cuts.emptied(file, 0)
    // Put off until the file had bytes, the read after this look took them first, and nothing
    // was looked for.
    expect(cuts.generationsToFind(file, 0, 2000)).toEqual({ since: 1000, truncated: true })
    expect(cuts.generationsToFind(file, 0, 2100)).toBeUndefined() // once while empty
    // And once more when it has bytes (none of them ours): a generation written, copied and
    // truncated after the first search is found then.
    expect(cuts.generationsToFind(file, 10, 3000)).toEqual({ since: 1000, truncated: true })
    expect(cuts.generationsToFind(file, 20, 3100)).toBeUndefined()
  })

  test('a file only seen empty is searched beside once it fills, as no truncation (the directory must show a change)', () => {
    const cuts = new Truncations()
    const file = fileAt(0, '')
    expect(cuts.generationsToFind(file, 0, 1000)).toBeUndefined()
    expect(cuts.generationsToFind(file, 10, 2000)).toEqual({ since: 1000, truncated: false })
    // With bytes of ours there is nothing to look for.
    expect(cuts.generationsToFind(fileAt(10, 'abc'), 10, 3000)).toBeUndefined()
  })
})
