/**
 * Discovery with real files and real inotify: a directory whose change events come too fast is
 * polled instead (busy-dir.ts), still reporting every write and every rename, and is watched
 * again once quiet; input names given one by one are matched through a set. The pure parts of
 * busy-dir.ts (EventRate, compareLooks) are tested at the end.
 */
import {
  appendFileSync,
  closeSync,
  mkdtempSync,
  openSync,
  renameSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { createLogger } from '../../../src/log.js'
import {
  BUSY_EVENTS,
  compareLooks,
  EventRate,
  POLL_MS,
  QUIET_POLLS,
  WINDOW_MS,
} from '../../../src/tail/busy-dir.js'
import { Discovery } from '../../../src/tail/discovery.js'
import { makeMatcher, parseInput } from '../../../src/tail/inputs.js'

let dir: string
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'logmerge-discovery-'))
})
afterEach(() => rmSync(dir, { recursive: true, force: true }))

/** Discovery of `dir/*.log` recording its events, with a low busy threshold. */
async function watching(busyEvents: number) {
  const data: string[] = []
  const names: string[] = []
  const debug: string[] = []
  const log = createLogger('debug', (line) => debug.push(line))
  const d = await Discovery.start(
    [parseInput(join(dir, '*.log'))],
    { changedData: (p) => data.push(p), changedName: (p) => names.push(p) },
    { log, busyEvents },
  )
  const polled = () => debug.some((l) => l.includes('instead of watching it'))
  const watchedAgain = () => debug.some((l) => l.includes('quiet again; watching it'))
  return { d, data, names, polled, watchedAgain }
}

/**
 * Writes `n` lines to `a` and `b` in turn: the kernel folds an event into the one before when
 * they are the same and unread, so writes to one file alone would make a single event.
 */
function alternate(fa: number, fb: number, n: number): void {
  for (let i = 0; i < n; i++) writeSync(i % 2 ? fb : fa, `line ${i}\n`)
}

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(5)
  }
}

describe('Discovery: a busy directory', () => {
  test('is polled once its events come too fast; writes and renames are still reported; watched again when quiet', async () => {
    const a = join(dir, 'a.log')
    const b = join(dir, 'b.log')
    writeFileSync(a, '')
    writeFileSync(b, '')
    const w = await watching(50)
    try {
      const fd = openSync(a, 'a')
      const fb = openSync(b, 'a')
      try {
        alternate(fd, fb, 500)
        await until('polling', w.polled)
        // While polled: a write is reported by the next look, not by an event.
        w.data.length = 0
        writeSync(fd, 'while polled\n')
        await until('the write while polled', () => w.data.includes(a), 20 * POLL_MS)
        // A rename and a new file at the name are looked at (rename rotation).
        w.names.length = 0
        renameSync(a, `${a}.1`)
        writeFileSync(a, 'new generation\n')
        await until('the rotation', () => w.names.includes(a), 20 * POLL_MS)
      } finally {
        closeSync(fd)
        closeSync(fb)
      }
      // Quiet: watched again after QUIET_POLLS looks, and a write is an event once more.
      await until('the watch again', w.watchedAgain, (QUIET_POLLS + 20) * POLL_MS + 1000)
      w.data.length = 0
      appendFileSync(a, 'after\n')
      await until('the event', () => w.data.includes(a), 1000)
    } finally {
      await w.d.close()
    }
  })

  test('a directory that is not busy stays watched', async () => {
    const a = join(dir, 'a.log')
    writeFileSync(a, '')
    const w = await watching(BUSY_EVENTS)
    try {
      for (let i = 0; i < 20; i++) appendFileSync(a, `line ${i}\n`)
      await until('the events', () => w.data.length > 0)
      await sleep(50)
      expect(w.polled()).toBe(false)
    } finally {
      await w.d.close()
    }
  })

  test('close() stops the polling', async () => {
    const a = join(dir, 'a.log')
    const b = join(dir, 'b.log')
    writeFileSync(a, '')
    writeFileSync(b, '')
    const w = await watching(20)
    const fd = openSync(a, 'a')
    const fb = openSync(b, 'a')
    try {
      alternate(fd, fb, 200)
      await until('polling', w.polled)
    } finally {
      closeSync(fd)
      closeSync(fb)
    }
    await w.d.close()
    const seen = w.data.length
    appendFileSync(a, 'after close\n')
    await sleep(5 * POLL_MS)
    expect(w.data.length).toBe(seen)
  })
})

describe('makeMatcher', () => {
  test('names given one by one, directories and globs; never the output', () => {
    const inputs = [
      parseInput('/v/a.log'),
      parseInput('/v/b.log'),
      parseInput('/w/*.log'),
      parseInput('/v/out.log'),
    ]
    const m = makeMatcher(inputs, '/v/out.log')
    expect(m('/v/a.log')).toBe(true)
    expect(m('/v/c.log')).toBe(false)
    expect(m('/w/x.log')).toBe(true)
    expect(m('/w/x.txt')).toBe(false)
    expect(m('/v/out.log')).toBe(false)
  })
})

describe('EventRate', () => {
  test('busy on the event that reaches the threshold within a window, once', () => {
    const r = new EventRate(3)
    expect(r.hit(0)).toBe(false)
    expect(r.hit(1)).toBe(false)
    expect(r.hit(2)).toBe(true)
    expect(r.hit(3)).toBe(false)
  })

  test('a new window starts the count again', () => {
    const r = new EventRate(3)
    r.hit(0)
    r.hit(1)
    expect(r.hit(WINDOW_MS)).toBe(false) // the third, but in the next window
    expect(r.hit(WINDOW_MS + 1)).toBe(false)
    expect(r.hit(WINDOW_MS + 2)).toBe(true)
  })
})

describe('compareLooks', () => {
  const look = (entries: [string, number, number, number][]) =>
    new Map(entries.map(([p, ino, size, mtimeMs]) => [p, { ino, size, mtimeMs }]))

  test('a new name, a gone name and a replaced file are names; a write is data', () => {
    const before = look([
      ['/d/a.log', 1, 10, 100],
      ['/d/b.log', 2, 10, 100],
      ['/d/c.log', 3, 10, 100],
      ['/d/d.log', 4, 10, 100],
    ])
    const now = look([
      ['/d/a.log', 1, 10, 100], // unchanged
      ['/d/b.log', 2, 20, 101], // grown
      ['/d/c.log', 9, 10, 100], // replaced (rename rotation)
      ['/d/e.log', 5, 0, 102], // new
    ])
    const diff = compareLooks(before, now)
    expect(diff.data).toEqual(['/d/b.log'])
    expect(diff.names.sort()).toEqual(['/d/c.log', '/d/d.log', '/d/e.log'])
  })

  test('rewritten to the same size shows in the change time', () => {
    const diff = compareLooks(look([['/d/a.log', 1, 10, 100]]), look([['/d/a.log', 1, 10, 105]]))
    expect(diff.data).toEqual(['/d/a.log'])
  })
})
