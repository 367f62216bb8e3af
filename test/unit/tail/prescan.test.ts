/**
 * Where each file present at start-up begins (prescan) and how that combines with the state
 * (resumePoints). Real files in a temp directory; the one race that matters (a rename between
 * looking at a name and reading what it holds) is made to happen at the worst moment by a hook
 * in fs's stat and open.
 */

import type * as fs from 'node:fs'
import {
  appendFileSync,
  copyFileSync,
  mkdtempSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import fc from 'fast-check'
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest'
import { prescan, resumePoints } from '../../../src/tail/prescan.js'
import type { SourceState } from '../../../src/tail/source-state.js'

/** Runs after each stat() or open() that prescan makes, before it goes on (null: none). */
let afterLook: ((path: string) => void) | null = null
vi.mock('node:fs', async (importOriginal) => {
  const real = await importOriginal<typeof fs>()
  // prescan looks at a name by opening it synchronously (then fstat through the descriptor);
  // at a rotated generation through the callback API (src/tail/async-fs.ts): stat, then open.
  const stat = ((path: fs.PathLike, callback: (err: Error | null, st: fs.Stats) => void) =>
    real.stat(path, (err, st) => {
      if (!err) afterLook?.(String(path))
      callback(err, st)
    })) as typeof real.stat
  const open = ((
    path: fs.PathLike,
    flags: number,
    callback: (err: Error | null, fd: number) => void,
  ) =>
    real.open(path, flags, (err, fd) => {
      if (!err) afterLook?.(String(path))
      callback(err, fd)
    })) as typeof real.open
  const openSync = ((path: fs.PathLike, flags: number) => {
    const fd = real.openSync(path, flags)
    afterLook?.(String(path))
    return fd
  }) as typeof real.openSync
  return {
    ...real,
    stat,
    open,
    openSync,
    default: { ...real, stat, open, openSync },
  }
})

let dir: string
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'logmerge-prescan-'))
})
afterEach(() => {
  afterLook = null
  rmSync(dir, { recursive: true, force: true })
})

const b64 = (s: string) => Buffer.from(s).toString('base64')

/** A file with `text`, and the state entry a checkpoint would have made for it at `offset`. */
function logFile(name: string, text: string, offset = 0): SourceState {
  const path = join(dir, name)
  writeFileSync(path, text)
  const { dev, ino, birthtimeMs } = statSync(path)
  // The birth time where the file system records one, as prescan and the checkpoints do.
  return {
    path,
    dev,
    ino,
    ...(birthtimeMs > 0 && { born: birthtimeMs }),
    head: b64(text.slice(0, 64)),
    offset,
  }
}

const idOf = (path: string) => {
  const { dev, ino } = statSync(path)
  return { dev, ino }
}

describe('prescan, no state', () => {
  test('--from start: every file from 0, with its identity and first 64 bytes', async () => {
    const text = `${'x'.repeat(100)}\nsecond\n`
    const a = logFile('a.log', text)
    const found = await prescan([a.path], [], 'start', null)
    expect(found).toEqual([{ ...a, head: b64(text.slice(0, 64)), offset: 0 }])
  })

  test('--from end: just after the last complete line (a half-written line is read)', async () => {
    const a = logFile('a.log', 'one\ntwo\nhalf a li')
    const [found] = await prescan([a.path], [], 'end', null)
    expect(found?.offset).toBe('one\ntwo\n'.length)
  })

  test('--from end, property: the offset is 0 or just after a newline, and no whole line is after it', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.string({ unit: fc.constantFrom('a', 'b', '\n'), maxLength: 300 }),
        async (text) => {
          const a = logFile('p.log', text)
          const [found] = await prescan([a.path], [], 'end', null)
          const offset = found?.offset ?? -1
          expect(offset === 0 || text[offset - 1] === '\n').toBe(true)
          expect(text.slice(offset).includes('\n')).toBe(false)
          // and nothing before it is a partial line: the last newline is just before it
          expect(offset).toBe(text.lastIndexOf('\n') + 1)
        },
      ),
      { numRuns: 60 },
    )
  })

  test('names that are not regular files, or missing, are left out', async () => {
    const found = await prescan([dir, join(dir, 'none.log')], [], 'start', null)
    expect(found).toEqual([])
  })
})

describe('prescan with a state', () => {
  test('a recorded file still at its name with the same first bytes is left to resume as recorded', async () => {
    const a = logFile('a.log', 'one\ntwo\n', 4)
    appendFileSync(a.path, 'three\n')
    expect(await prescan([a.path], [a], 'end', Date.now() - 60_000)).toEqual([])
    expect(resumePoints([a], [])).toEqual([a])
  })

  test('a file at a name the state knew but did not record (created while down) starts at 0 even with --from end', async () => {
    const old = logFile('a.log', 'old\n', 4)
    renameSync(old.path, join(dir, 'a.log.1'))
    const fresh = logFile('a.log', 'new one\nnew two\n')
    const found = await prescan([fresh.path], [old], 'end', Date.now() - 60_000)
    expect(found).toEqual([{ ...fresh, offset: 0 }])
    // The rotated one keeps its entry: the followers find it by identity beside its name.
    expect(resumePoints([old], found)).toEqual([old, { ...fresh, offset: 0 }])
  })

  test('the same, on a file system without birth times (or a file born before the last start): the name decides', async () => {
    const old = logFile('a.log', 'old\n', 4)
    renameSync(old.path, join(dir, 'a.log.1'))
    const fresh = logFile('a.log', 'new one\nnew two\n')
    // The last run "started" after this file was born: only the name says it is new.
    const found = await prescan([fresh.path], [old], 'end', Date.now() + 60_000)
    expect(found).toEqual([{ ...fresh, offset: 0 }])
  })

  test('a file born after the last run started starts at 0 with --from end', async () => {
    const a = logFile('a.log', 'one\ntwo\n')
    const [found] = await prescan([a.path], [], 'end', Date.now() - 60_000)
    expect(found?.offset).toBe(0)
  })

  test('a recorded identity whose first bytes changed (truncated and rewritten, or its inode reused) is not taken for the old file', async () => {
    const a = logFile('a.log', 'old content, line one\nline two\n', 31)
    writeFileSync(a.path, 'another file now\n') // same inode, other content
    expect(idOf(a.path)).toEqual({ dev: a.dev, ino: a.ino })
    const found = await prescan([a.path], [a], 'start', Date.now() - 60_000)
    expect(found).toEqual([{ ...a, head: b64('another file now\n'), offset: 0 }])
    // One entry per identity, the one found: the old offset never applies to the new content.
    expect(resumePoints([a], found)).toEqual(found)
  })

  test('a recorded identity now held by a file born at another time is another file, even where its first bytes agree (an empty one)', async () => {
    const a = logFile('a.log', '')
    if (a.born === undefined) return // no birth times here: the first bytes decide, as above
    // What a checkpoint recorded for this inode before: a file since deleted, born earlier.
    const old = { ...a, born: a.born - 5_000, head: b64('the old file\n'), offset: 14_459 }
    const found = await prescan([a.path], [old], 'start', Date.now() - 60_000)
    expect(found).toEqual([{ ...a, offset: 0 }])
    expect(resumePoints([old], found)).toEqual(found)
    // Born at the recorded time: the same file, resumed as recorded.
    expect(
      await prescan([a.path], [{ ...old, born: a.born }], 'start', Date.now() - 60_000),
    ).toEqual([])
  })

  test('resumePoints, property: one entry per identity, the found one winning, every recorded identity kept', () => {
    const entry = fc.record({
      path: fc.constantFrom('a', 'b'),
      dev: fc.constant(1),
      ino: fc.integer({ min: 1, max: 6 }),
      head: fc.constantFrom('', 'eA==', 'eQ=='),
      offset: fc.nat(),
    })
    fc.assert(
      fc.property(
        fc.array(entry, { maxLength: 8 }),
        fc.array(entry, { maxLength: 8 }),
        (recorded, found) => {
          const out = resumePoints(recorded, found)
          const keys = out.map((s) => `${s.dev}:${s.ino}`)
          expect(new Set(keys).size).toBe(keys.length)
          for (const r of recorded) expect(keys).toContain(`${r.dev}:${r.ino}`)
          for (const s of out) {
            const fromFound = found.filter((f) => f.ino === s.ino).at(-1)
            if (fromFound) expect(s).toBe(fromFound)
            else expect(s).toBe(recorded.filter((r) => r.ino === s.ino).at(-1))
          }
        },
      ),
    )
  })
})

describe('prescan, rotated generations born since the last start', () => {
  test('an unknown generation of an input name is read from 0; a known one is left to the followers', async () => {
    const since = Date.now() - 60_000
    const known = logFile('a.log.1', 'known gen\n', 5)
    const unknown = logFile('a.log.2', 'never seen\n')
    const cur = logFile('a.log', 'current\n', 8)
    logFile('b.log.1', 'another family\n')
    const found = await prescan([cur.path], [known, cur], 'start', since)
    expect(found).toEqual([{ ...unknown, offset: 0 }])
  })

  test('a recorded inode reused by a generation born since (another fingerprint) is read from 0, not resumed', async () => {
    const since = Date.now() - 60_000
    const cur = logFile('a.log', 'current\n', 8)
    const reused = logFile('a.log.1', 'a new file on the old inode\n')
    // What the state recorded for that inode: the file that had it before (since deleted).
    const old = { ...reused, head: b64('the old file\n'), offset: 13 }
    const found = await prescan([cur.path], [cur, old], 'start', since)
    expect(found).toEqual([{ ...reused, offset: 0 }])
    expect(resumePoints([cur, old], found)).toEqual([cur, { ...reused, offset: 0 }])
  })

  test('a recorded inode reused by a generation born since, beginning as the old file did, is read from 0 (the birth time tells)', async () => {
    const since = Date.now() - 60_000
    const cur = logFile('a.log', 'current\n', 8)
    const reused = logFile('a.log.1', 'same start, another file\n')
    if (reused.born === undefined) return // no birth times: only the first bytes can tell
    const old = { ...reused, born: reused.born - 5_000, offset: 5 }
    const found = await prescan([cur.path], [cur, old], 'start', since)
    expect(found).toEqual([{ ...reused, offset: 0 }])
  })

  test('a copytruncate copy of a recorded file is read from the recorded offset, not from 0', async () => {
    const since = Date.now() - 60_000
    const text = 'line one of the live file\nline two\nline three\n'
    const live = logFile('a.log', text, 26)
    renameSync(live.path, join(dir, 'tmp')) // make the copy a separate inode with the same bytes
    const copy = logFile('a.log.1', text)
    renameSync(join(dir, 'tmp'), live.path)
    writeFileSync(live.path, '') // truncated
    const found = await prescan([live.path], [live], 'start', since)
    expect(found).toContainEqual({ ...copy, offset: 26 })
  })

  test('a copy shorter than the recorded offset, its name not truncated yet, is left to the followers (it may be a copy being made)', async () => {
    const since = Date.now() - 60_000
    const text = 'line one of the live file\nline two\nline three\n'
    const live = logFile('a.log', text, 35) // read through the name to byte 35
    // fs.copyFileSync has emptied its target and written the first 30 bytes so far.
    writeFileSync(join(dir, 'a.log.1'), text.slice(0, 30))
    const said: string[] = []
    const found = await prescan([live.path], [live], 'start', since, undefined, (m) => said.push(m))
    // Before: resumed at its size (30), and bytes 30-35 were read a second time once the copy
    // was done (the mixed soak: a copy caught at 0 bytes, 54 lines twice).
    expect(found).toEqual([])
    expect(said.join('\n')).toMatch(
      /a\.log\.1: at start-up: a copy of .*a\.log shorter \(30 bytes\) than its offset 35/,
    )
  })

  test('a copy shorter than the recorded offset beside a name truncated while down is complete: read from its end', async () => {
    const since = Date.now() - 60_000
    const text = 'line one of the live file\nline two\nline three\n'
    const live = logFile('a.log', text, 35)
    const copy = logFile('a.log.1', text.slice(0, 26)) // copied before the reads up to 35
    writeFileSync(live.path, 'the next generation\n') // truncated and written again
    const found = await prescan([live.path], [live], 'start', since)
    expect(found).toContainEqual({ ...copy, offset: 26 })
  })

  test('a copy written in place over an older copy (born before the last start, written since) is read from the recorded offset', async () => {
    const text = 'line one of the live file\nline two\nline three\n'
    const live = logFile('a.log', text, 26)
    const before = logFile('a.log.1', 'the copy before, of the generation before\n', 43)
    await sleep(30) // later than the copy's birth by more than the kernel's clock tick
    const since = Date.now()
    await sleep(30)
    copyFileSync(live.path, `${live.path}.1`) // written in place: the same inode
    writeFileSync(live.path, '') // truncated
    expect(idOf(`${live.path}.1`)).toEqual(idOf(before.path))
    const found = await prescan([live.path], [live, before], 'start', since)
    expect(found).toContainEqual({ ...before, head: b64(text), offset: 26 })
    // Before: not looked at (born before the last start), and the lines after 26 lost.
  })

  test('two copies written in place while down: the generation between, in the copy now, is read from 0', async () => {
    // The state: generation 4 at a.log read to its end, generation 3's copy at a.log.1.
    const gen4 = 'generation four, read to its end before the kill\n'
    const live = logFile('a.log', gen4, gen4.length)
    const before = logFile('a.log.1', 'generation three, the copy before\n', 34)
    await sleep(30) // later than the copy's birth by more than the kernel's clock tick
    const since = Date.now()
    await sleep(30)
    // While down: generation 4 copied over a.log.1 and a.log truncated; generation 5 written,
    // copied over a.log.1 in turn (generation 4 is gone: it was in the output) and truncated;
    // generation 6 written. Generation 5, all of it unread, is in a.log.1 now.
    copyFileSync(live.path, before.path)
    writeFileSync(live.path, '')
    const gen5 = 'generation five, written and copied while logmerge was down\n'
    writeFileSync(live.path, gen5)
    copyFileSync(live.path, before.path)
    writeFileSync(live.path, 'generation six\n')
    expect(idOf(before.path)).toEqual({ dev: before.dev, ino: before.ino }) // written in place
    const found = await prescan([live.path], [live, before], 'start', since)
    // Before: a.log.1 was left out (born before the last start, no copy of a recorded source)
    // and generation 5 was lost (the mixed soak, top-down: 226 lines).
    expect(found).toContainEqual({ ...before, head: b64(gen5), offset: 0 })
  })

  test('an older file written since that is no copy of a recorded source is left alone', async () => {
    const cur = logFile('a.log', 'current\n', 8)
    const old = join(dir, 'a.log.1')
    writeFileSync(old, 'an old generation\n')
    await sleep(30)
    const since = Date.now()
    await sleep(30)
    appendFileSync(old, 'written to late by its writer\n')
    expect(await prescan([cur.path], [cur], 'start', since)).toEqual([])
  })

  test('beside an input truncated while down, an older file written since that no state recorded is read from 0 (a copy written in place of a generation no checkpoint saw)', async () => {
    const copy = join(dir, 'a.log.1')
    writeFileSync(copy, 'generation 5\n') // an old copy, no longer in the state
    const cur = logFile('a.log', 'generation 6, first line\n', 10)
    await sleep(30)
    const since = Date.now()
    await sleep(30)
    // While down: generation 6 copied over a.log.1 in place and a.log truncated, generation 7
    // written, copied over a.log.1 in place, a.log truncated, generation 8 written.
    writeFileSync(copy, 'generation 7, only ever in the copy\n')
    writeFileSync(cur.path, 'generation 8\n')
    const found = await prescan([cur.path], [cur], 'start', since)
    const { dev, ino } = statSync(copy)
    expect(found.find((s) => s.ino === ino && s.dev === dev)?.offset).toBe(0)
  })

  test('without a previous start (no state), no generation is looked for', async () => {
    logFile('a.log.1', 'old\n')
    const cur = logFile('a.log', 'cur\n')
    expect(await prescan([cur.path], [], 'start', null)).toEqual([{ ...cur, offset: 0 }])
  })
})

describe('prescan against a rename at the worst moment', () => {
  test('the name is rotated between its look and its read: no entry mixes two files', async () => {
    // The state knows generation 4 at a.log, read up to 22 bytes.
    const gen4 = logFile('a.log', 'src=k2 seq=15000 aaaa\nsrc=k2 seq=15001 bbbb\n', 22)
    afterLook = (path) => {
      if (path !== gen4.path) return
      afterLook = null
      renameSync(gen4.path, `${gen4.path}.4`) // the writer rotates...
      writeFileSync(gen4.path, 'src=k2 seq=20000 cccc\n') // ...and writes its next line
    }
    const found = await prescan([gen4.path], [gen4], 'start', Date.now() - 60_000)
    expect(afterLook).toBeNull() // the rename happened, between the look and the read
    const all = resumePoints([gen4], found)
    const gen5 = idOf(gen4.path)
    // Generation 4 keeps its recorded offset and fingerprint (the followers find it as a.log.4).
    expect(all).toContainEqual(gen4)
    // Whatever prescan saw of generation 5 (it opened generation 4 by its name, so it may not
    // have seen it at all; the followers then find it new, from 0): never generation 4's bytes
    // with generation 5's identity, never an offset into it.
    for (const s of all.filter((e) => e.ino === gen5.ino))
      expect(s).toEqual({
        path: gen4.path,
        ...gen5,
        head: b64('src=k2 seq=20000 cccc\n'),
        offset: 0,
      })
    expect(all.filter((e) => e.ino === gen4.ino)).toEqual([gen4])
  })

  test('a rotated generation is renamed on between its stat and its read: no entry mixes two files', async () => {
    const since = Date.now() - 60_000
    const cur = logFile('a.log', 'current\n', 8)
    const one = logFile('a.log.1', 'generation one\n')
    const two = logFile('a.log.2', 'generation two\n')
    let shifted = false
    afterLook = (path) => {
      if (shifted || !path.endsWith('a.log.1')) return
      shifted = true
      // logrotate's numbering shifts: a.log.2 -> a.log.3, a.log.1 -> a.log.2
      renameSync(two.path, join(dir, 'a.log.3'))
      renameSync(one.path, two.path)
    }
    const found = await prescan([cur.path], [cur], 'start', since)
    // Both generations, each with its own first bytes: the search is made again after the race.
    expect(found).toHaveLength(2)
    expect(found).toContainEqual({ ...one, path: two.path })
    expect(found).toContainEqual({ ...two, path: join(dir, 'a.log.3') })
  })
})
