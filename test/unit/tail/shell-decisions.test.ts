/**
 * The decisions both reader shells take from shared pure code, on their own with no files:
 * the look before a read (file-look.ts: FileLook, and the SkippedSearch it hands out), the
 * outcomes of opening a name (open-outcomes.ts: OpenOutcomes) and the sweep's two choices
 * (FileIndex.sweepSaw, FileIndex.orphanStep). Each test breaks if its rule does. The shells'
 * I/O around them is exercised with real files by the e2e tests (copytruncate, kill-rotation,
 * inode-reuse, in-place-between-looks, input-faults, follow).
 */
import { describe, expect, test } from 'vitest'
import type { Logger } from '../../../src/log.js'
import { FileLook } from '../../../src/tail/file-look.js'
import { FileTable } from '../../../src/tail/file-table.js'
import { SEARCH_ATTEMPTS, SkippedSearch } from '../../../src/tail/generation-search.js'
import { OpenOutcomes } from '../../../src/tail/open-outcomes.js'
import type { Tracked } from '../../../src/tail/tracked.js'

/** A logger that keeps what it was told, by level. */
function recorder() {
  const said: string[] = []
  const log: Logger = {
    error: (m) => said.push(`error ${m}`),
    warn: (m) => said.push(`warn ${m}`),
    info: (m) => said.push(`info ${m}`),
    debug: (m) => said.push(`debug ${m}`),
    warnOnce: (key, m) => said.push(`once ${key} ${m}`),
    forget: () => {},
  }
  return { log, said }
}

/** A teller that keeps what it was asked to tell. */
function teller() {
  const told: string[] = []
  return {
    told,
    announce: (f: Tracked<unknown>) => told.push(`announce ${f.path}`),
    reborn: (f: Tracked<unknown>, path: string) => told.push(`reborn ${f.path} at ${path}`),
    retellIfHeadChanged: (f: Tracked<unknown>) => told.push(`retell ${f.path}`),
  }
}

const st = (ino: number, size: number, mtimeMs = 1000) => ({
  dev: 1,
  ino,
  size,
  mtimeMs,
  isFile: () => true,
  isDirectory: () => false,
  isFIFO: () => false,
  isSocket: () => false,
  isCharacterDevice: () => false,
  isBlockDevice: () => false,
})

/** `path` followed and read to `content`'s end (as the shells open and read a file). */
function follow(t: FileTable<number>, path: string, ino: number, content: string) {
  t.look(path, { dev: 1, ino })
  const head = Buffer.from(content.slice(0, 64))
  const file = t.opened(path, ino, { identity: st(ino, 0), size: 0, head }, false, 0)
  if (!file) throw new Error('not opened')
  file.cursor.frame(Buffer.from(content))
  return file
}

describe('FileLook', () => {
  test('a file that grew is read, and seen whole; the first bytes are read only when they tell', () => {
    const t = new FileTable<number>(1024)
    const file = follow(t, '/in/a.log', 5, 'one\ntwo\n')
    let heads = 0
    const look = new FileLook(t, file, st(5, 20), 0, () => {
      heads++
      return Buffer.from('one\ntwo\n')
    })
    expect(look.change).toBe('grown')
    expect(heads).toBe(1) // the same length rewritten shows only in the first bytes
    expect(look.left(0)).toBeNull()
    expect(look.truncated).toBe(false)
    expect(look.restart(recorder().log)).toBeNull()
    expect(look.skippedSearch()).toBeNull() // bytes of ours: nothing to look for
  })

  test('a truncated file is read again from 0, with the partial line first, and its search is due at once', () => {
    const t = new FileTable<number>(1024)
    const file = follow(t, '/in/a.log', 5, 'one\npart')
    const { log, said } = recorder()
    const look = new FileLook(t, file, st(5, 0), 2000, () => Buffer.alloc(0))
    expect(look.truncated).toBe(true)
    expect(look.left(0)).toBeNull() // it has a name: its writer truncated it
    expect(look.restart(log)?.toString()).toBe('part\n')
    expect(said).toEqual([
      'debug /in/a.log: truncated (read to byte 8; 0 bytes now)',
      'info /in/a.log: truncated; reading it again from the start',
    ])
    expect(file.cursor.offset).toBe(0)
    look.restarted(teller(), 1500)
    // Never seen whole by this look: the shell's start is when the generations may be from.
    const search = look.skippedSearch()
    expect(search).not.toBeNull()
    expect(search?.how(Buffer.from('x'))).toMatchObject({
      unknownSince: 1500,
      family: '/in/a.log',
      afterTruncation: true,
    })
  })

  test('a rotated file written over while empty is left alone, and released once quiet', () => {
    const t = new FileTable<number>(1024)
    const file = follow(t, '/in/a.log', 5, 'one\n')
    t.look('/in/a.log', null) // rotated away: no name left
    const look = new FileLook(t, file, st(5, 0), 0, () => Buffer.alloc(0))
    expect(look.left(60_000)).toBe('stay')
    file.lastActivity = 0
    expect(look.left(1)).toBe('release')
  })

  test('a rotated file written over with the copy of content we were reading goes on from where we were', () => {
    const t = new FileTable<number>(1024)
    const reading = follow(t, '/in/a.log', 5, 'first line\nsecond\n')
    // a.log is seen truncated: what it held and how far we had read it are remembered, and
    // it is read again from 0.
    t.truncating(reading)
    reading.cursor.restart()
    const rotated = follow(t, '/in/a.log.1', 6, 'other content\n')
    t.look('/in/a.log.1', null)
    const { log, said } = recorder()
    const tell = teller()
    const head = () => Buffer.from('first line\nsecond\n')
    const look = new FileLook(t, rotated, st(6, 30, 0), 0, head)
    expect(look.left(0)).toBeNull()
    expect(look.truncated).toBe(false) // no copy to look for: it is the copy
    look.restart(log)
    expect(said[0]).toContain('written over with a copy of a truncated file')
    expect(rotated.cursor.offset).toBe(18)
    expect(look.change).toBe('grown')
    look.restarted(tell, 0)
    expect(tell.told).toEqual(['retell /in/a.log.1'])
  })
})

describe('SkippedSearch', () => {
  test('made after a truncation without asking the directory; otherwise only when its entries changed', () => {
    let asked = 0
    const changed = () => {
      asked++
      return false
    }
    expect(new SkippedSearch('/in/a.log', { since: 1, truncated: true }, 0).wanted(changed)).toBe(
      true,
    )
    expect(asked).toBe(0)
    expect(new SkippedSearch('/in/a.log', { since: 1, truncated: false }, 0).wanted(changed)).toBe(
      false,
    )
    expect(asked).toBe(1)
  })

  test(`made again while the name's content changes under it, ${SEARCH_ATTEMPTS} passes at most`, () => {
    const a = Buffer.from('aaa')
    const b = Buffer.from('bbb')
    const held = new SkippedSearch('/in/a.log', { since: 1, truncated: true }, 0)
    expect(held.again(a, a)).toBe(false)
    const moving = new SkippedSearch('/in/a.log', { since: 1, truncated: true }, 0)
    let passes = 1
    while (moving.again(a, b)) passes++
    expect(passes).toBe(SEARCH_ATTEMPTS)
  })
})

describe('OpenOutcomes', () => {
  const enoent = Object.assign(new Error('gone'), { code: 'ENOENT', syscall: 'open' })
  const eacces = Object.assign(new Error('denied'), { code: 'EACCES', syscall: 'open' })

  test('a name gone since its stat is unreadable for now, with no word and nothing followed', () => {
    const t = new FileTable<number>(1024)
    const { log, said } = recorder()
    const tell = teller()
    new OpenOutcomes(t, tell, log, { follow: true, from: 'start' }).failed(
      '/in/a.log',
      st(5, 10),
      enoent,
    )
    expect(t.unreadableNow()).toEqual(['/in/a.log'])
    expect(said).toEqual([])
    expect(tell.told).toEqual([])
    expect(t.files.size).toBe(0)
  })

  test('a file that cannot be opened is followed by identity, announced, and warned about once', () => {
    const t = new FileTable<number>(1024)
    const { log, said } = recorder()
    const tell = teller()
    new OpenOutcomes(t, tell, log, { follow: true, from: 'start' }).failed(
      '/in/a.log',
      st(5, 10),
      eacces,
    )
    expect(t.files.has('1:5')).toBe(true)
    expect(tell.told).toEqual(['announce /in/a.log'])
    expect(said).toEqual([
      'once open:/in/a.log cannot open /in/a.log: permission denied (EACCES); will keep trying',
    ])
  })

  test('a parked file whose name is gone is left to the next look; another error warns', () => {
    const t = new FileTable<number>(1024)
    const { log, said } = recorder()
    const outcomes = new OpenOutcomes(t, teller(), log, { follow: true, from: 'start' })
    outcomes.reopenFailed('/in/a.log', enoent)
    expect(said).toEqual([])
    outcomes.reopenFailed('/in/a.log', eacces)
    expect(said).toHaveLength(1)
  })

  test('a descriptor that is not a regular file is not read; a non-system error is a bug', () => {
    const t = new FileTable<number>(1024)
    const { log } = recorder()
    const outcomes = new OpenOutcomes(t, teller(), log, { follow: true, from: 'start' })
    expect(
      outcomes.readable('/in/a.log', { ...st(5, 0), isFile: () => false, isFIFO: () => true }),
    ).toBe(false)
    expect(outcomes.readable('/in/a.log', st(5, 0))).toBe(true)
    expect(() => outcomes.readFailed('/in/a.log', new TypeError('bug'))).toThrow('bug')
    expect(() => outcomes.readFailed('/in/a.log', eacces)).not.toThrow()
  })

  test('only --from end asks where a file begins', () => {
    const t = new FileTable<number>(1024)
    const { log } = recorder()
    t.beginStartup(['/in/a.log'])
    const fromStart = new OpenOutcomes(t, teller(), log, { follow: true, from: 'start' })
    const fromEnd = new OpenOutcomes(t, teller(), log, { follow: true, from: 'end' })
    expect(fromStart.startSize('/in/a.log', st(5, 10))).toBeNull()
    expect(fromEnd.startSize('/in/a.log', st(5, 10))).toBe(10)
  })
})

describe('the sweep', () => {
  test('a name is looked at properly when it leads nowhere, elsewhere, or to ours at another size', () => {
    const t = new FileTable<number>(1024)
    follow(t, '/in/a.log', 5, 'one\n')
    expect(t.sweepSaw('1:5', st(5, 4))).toBe(false)
    expect(t.sweepSaw('1:5', st(5, 9))).toBe(true)
    expect(t.sweepSaw('1:5', st(6, 4))).toBe(true)
    expect(t.sweepSaw('1:5', undefined)).toBe(true)
    expect(t.sweepSaw(null, st(5, 4))).toBe(true)
  })

  test('an orphan is read when its size moved, retired when quiet, else left', () => {
    const t = new FileTable<number>(1024)
    const file = follow(t, '/in/a.log', 5, 'one\n')
    t.look('/in/a.log', null)
    expect(FileTable.orphanStep(file, 9, 60_000)).toBe('read')
    expect(FileTable.orphanStep(file, -1, 60_000)).toBe('read') // fstat failed: the read says why
    expect(FileTable.orphanStep(file, 4, 60_000)).toBeNull()
    file.lastActivity = 0
    expect(FileTable.orphanStep(file, 4, 1)).toBe('retire')
  })
})
