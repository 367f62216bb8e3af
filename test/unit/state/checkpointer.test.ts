/**
 * The Checkpointer against a scripted writer and a real state file: a checkpoint is the
 * writer's snapshot, made durable (fsync) before the state names it, saved atomically; never
 * two at once; skipped when nothing changed or a source is not known yet; a failed save warns
 * once and the next one retries; stop() takes the last checkpoint and ends the timer.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterEach, beforeEach, expect, test, vi } from 'vitest'
import { type Level, levelLogger } from '../../../src/log.js'
import type { Snapshot } from '../../../src/sink/sink.js'
import { decodeState } from '../../../src/state/checkpoint.js'
import {
  CHECKPOINT_MS_PER_SOURCE,
  CHECKPOINT_TIME_SHARE,
  type Checkpointable,
  Checkpointer,
  PUT_OFF_WARN_MS,
  sourcesAt,
} from '../../../src/state/checkpointer.js'
import { keepsItsLine, type SourceState } from '../../../src/tail/source-state.js'

let dir: string
let statePath: string
let said: [Level, string][]
const log = levelLogger('debug', (level, message) => said.push([level, message]))
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'logmerge-checkpointer-'))
  statePath = join(dir, 'state.json')
  said = []
})
afterEach(() => rmSync(dir, { recursive: true, force: true }))

const source: SourceState = {
  path: '/logs/a.log',
  dev: 1,
  ino: 10,
  head: Buffer.from('told head').toString('base64'),
  offset: 0,
}

/** A writer the test drives: what it has written, and every call made to it, in order. */
function scriptedWriter() {
  const w = {
    size: 0,
    offset: 0,
    head: Buffer.from('head of offset 0'),
    changes: 0,
    known: true,
    calls: [] as string[],
    /** The state file's text when fsync was called (it must not name unsynced bytes yet). */
    stateAtFsync: [] as (string | null)[],
    fsyncDelayMs: 0,
  }
  const from: Checkpointable = {
    snapshot: (): Snapshot => {
      w.calls.push('snapshot')
      return {
        size: w.size,
        output: { dev: 7, ino: 8 },
        offsets: new Map([['1:10', w.offset]]),
        heads: new Map([['1:10', w.head]]),
        stats: new Map(),
      }
    },
    sources: (offsets) => {
      w.calls.push('sources')
      return w.known ? [{ ...source, offset: offsets.get('1:10') ?? -1 }] : null
    },
    fsync: async () => {
      w.calls.push('fsync')
      w.stateAtFsync.push(readQuietly(statePath))
      await sleep(w.fsyncDelayMs)
      w.calls.push('fsynced')
    },
    changes: () => w.changes,
  }
  return { w, from }
}

function readQuietly(path: string): string | null {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return null
  }
}

const saved = () => decodeState(readFileSync(statePath, 'utf8'))

test('a checkpoint: the snapshot, then fsync, then the state file naming what the fsync covered', async () => {
  const { w, from } = scriptedWriter()
  const cp = new Checkpointer(statePath, '/out.log', from, log)
  w.size = 120
  w.offset = 40
  w.head = Buffer.from('the head that goes with offset 40')
  await cp.save()
  expect(w.calls).toEqual(['snapshot', 'sources', 'fsync', 'fsynced'])
  expect(w.stateAtFsync).toEqual([null])
  const state = saved()
  expect(state.output).toEqual({ path: '/out.log', dev: 7, ino: 8, size: 120 })
  // The fingerprint recorded with the offset, not the one the reader told.
  expect(state.sources).toEqual([
    {
      ...source,
      offset: 40,
      head: Buffer.from('the head that goes with offset 40').toString('base64'),
    },
  ])
  expect(state.pid).toBe(process.pid)
})

test('nothing changed since the last save: no snapshot, no fsync, the file not rewritten', async () => {
  const { w, from } = scriptedWriter()
  const cp = new Checkpointer(statePath, '/out.log', from, log)
  await cp.save()
  const first = statSync(statePath)
  w.calls = []
  await cp.save()
  await cp.save()
  expect(w.calls).toEqual([])
  expect(statSync(statePath).ino).toBe(first.ino)
  w.changes++
  w.size = 10
  await cp.save()
  expect(w.calls).toEqual(['snapshot', 'sources', 'fsync', 'fsynced'])
  // Replaced by a rename (replaceFile), not rewritten in place; no temp file left.
  expect(statSync(statePath).ino).not.toBe(first.ino)
  expect(readdirSync(dir)).toEqual(['state.json'])
})

test('a source not known yet: no save, and the next save (once it is) is not skipped as unchanged', async () => {
  const { w, from } = scriptedWriter()
  const cp = new Checkpointer(statePath, '/out.log', from, log)
  w.known = false
  await cp.save()
  expect(readQuietly(statePath)).toBeNull()
  expect(w.calls).not.toContain('fsync')
  w.known = true
  await cp.save()
  expect(saved().sources).toHaveLength(1)
})

test('put off for longer than PUT_OFF_WARN_MS: one warning, then saved again once the source is known', async () => {
  const { w, from } = scriptedWriter()
  const cp = new Checkpointer(statePath, '/out.log', from, log)
  w.known = false
  const t0 = Date.now()
  vi.spyOn(Date, 'now').mockImplementation(() => t0)
  try {
    await cp.save()
    expect(said).toEqual([])
    vi.spyOn(Date, 'now').mockImplementation(() => t0 + PUT_OFF_WARN_MS)
    w.changes++
    await cp.save()
    w.changes++
    await cp.save()
  } finally {
    vi.restoreAllMocks()
  }
  expect(said).toEqual([
    [
      'warn',
      `checkpoints of ${statePath} put off for 30 s: the writer counts a source no reader described (a bug: please report it with this message)`,
    ],
  ])
  w.known = true
  await cp.save()
  expect(saved().sources).toHaveLength(1)
})

test('never two at once: saves asked for meanwhile share one that runs after', async () => {
  const { w, from } = scriptedWriter()
  const cp = new Checkpointer(statePath, '/out.log', from, log)
  w.fsyncDelayMs = 50
  const first = cp.save()
  while (!w.calls.includes('fsync')) await sleep(1) // the first is under way
  w.changes++
  const second = cp.save()
  const third = cp.save()
  expect(third).toBe(second)
  await Promise.all([first, second, third])
  // Each save's fsync ended before the next snapshot: never interleaved.
  expect(w.calls).toEqual([
    'snapshot',
    'sources',
    'fsync',
    'fsynced',
    'snapshot',
    'sources',
    'fsync',
    'fsynced',
  ])
})

test('a failed save warns once, keeps the last good state, and the next one retries', async () => {
  const { w, from } = scriptedWriter()
  const cp = new Checkpointer(statePath, '/out.log', from, log)
  w.size = 5
  await cp.save()
  // The state's directory cannot take a new file (a path through a regular file).
  const broken = new Checkpointer(join(statePath, 'nested.json'), '/out.log', from, log)
  w.changes++
  await broken.save()
  w.changes++
  await broken.save()
  expect(said.map(([level]) => level)).toEqual(['warn'])
  expect(said[0]?.[1]).toMatch(/^cannot save state .*nested\.json: .*; will retry$/)
  expect(saved().output?.size).toBe(5)
  // A save that works again is not skipped: the failed one did not count as saved.
  w.size = 9
  await cp.save()
  expect(saved().output?.size).toBe(9)
})

test('start(ms) saves on its own; stop() takes the last checkpoint and no more after it', async () => {
  const { w, from } = scriptedWriter()
  const cp = new Checkpointer(statePath, '/out.log', from, log)
  cp.start(20)
  w.changes++
  w.size = 3
  for (let i = 0; i < 200 && readQuietly(statePath) === null; i++) await sleep(10)
  expect(saved().output?.size).toBe(3)
  w.changes++
  w.size = 4
  await cp.stop()
  expect(saved().output?.size).toBe(4)
  const snapshots = w.calls.filter((c) => c === 'snapshot').length
  w.changes++
  await sleep(100)
  expect(w.calls.filter((c) => c === 'snapshot').length).toBe(snapshots)
})

test('periodic checkpoints of many sources come less often (at most CHECKPOINT_TIME_SHARE of the time at CHECKPOINT_MS_PER_SOURCE each); asked-for ones are not put off', async () => {
  const { w, from } = scriptedWriter()
  const cp = new Checkpointer(statePath, '/out.log', from, log)
  // 3,000 sources: reckoned at 45 ms a checkpoint, the next periodic one >= 405 ms after it.
  const many = Array.from({ length: 3000 }, (_, i) => ({ ...source, ino: 1000 + i }))
  from.sources = () => many
  const wait = many.length * CHECKPOINT_MS_PER_SOURCE * (1 / CHECKPOINT_TIME_SHARE - 1)
  const ends: number[] = []
  cp.observe(() => ends.push(performance.now()))
  const starts: number[] = []
  const snapshot = from.snapshot
  from.snapshot = () => {
    starts.push(performance.now())
    return snapshot()
  }
  cp.start(10)
  const t0 = performance.now()
  while (performance.now() - t0 < 1_000) {
    w.changes++ // always something new to save
    await sleep(5)
  }
  const periodic = starts.length
  // At a 10 ms interval they would come back to back (~50 in a second); spaced: at most 3.
  expect(periodic).toBeGreaterThanOrEqual(1)
  expect(periodic).toBeLessThanOrEqual(3)
  for (let i = 1; i < starts.length; i++)
    expect((starts[i] as number) - (ends[i - 1] as number)).toBeGreaterThanOrEqual(wait - 1)
  // One asked for right after runs at once.
  w.changes++
  const asked = performance.now()
  await cp.save()
  expect((starts.at(-1) as number) - asked).toBeLessThan(100)
  expect(starts.length).toBe(periodic + 1)
  await cp.stop()
})

test('a slow disk (fsync) does not space periodic checkpoints of a few sources out', async () => {
  const { w, from } = scriptedWriter()
  const cp = new Checkpointer(statePath, '/out.log', from, log)
  w.fsyncDelayMs = 40
  let snapshots = 0
  const snapshot = from.snapshot
  from.snapshot = () => {
    snapshots++
    return snapshot()
  }
  cp.start(10)
  const t0 = performance.now()
  while (performance.now() - t0 < 1_000) {
    w.changes++
    await sleep(5)
  }
  await cp.stop()
  // Back to back (each ~45 ms: fsync, then the next tick): about 20 in the second, fewer on a
  // loaded machine. Timed, 40 ms each would have allowed at most 3.
  expect(snapshots).toBeGreaterThanOrEqual(5)
})

test("sourcesAt: each source at the writer's offset; put off (null) while one is not described yet", () => {
  const told = new Map([['1:10', source]])
  expect(sourcesAt(told, new Map([['1:10', 42]]))).toEqual([{ ...source, offset: 42 }])
  // A thread's 'source' message still on its way: never a state without that source.
  expect(
    sourcesAt(
      told,
      new Map([
        ['1:10', 42],
        ['1:11', 0],
      ]),
    ),
  ).toBeNull()
  expect(sourcesAt(told, new Map())).toEqual([])
})

/** One more checkpoint of a changed writer (`w.changes` moved): the state's first source. */
async function checkpointOnce(cp: Checkpointer, w: { changes: number }) {
  w.changes++
  await cp.save()
  return saved().sources[0]
}

const b64 = (t: string) => Buffer.from(t).toString('base64')

test('every change shows in the next checkpoint: offset, writer fingerprint, stats (new objects each snapshot)', async () => {
  const reader: SourceState = { ...source, offset: 0 }
  const w = { head: Buffer.from('ab'), stats: { lines: 1 }, offset: 5, changes: 0 }
  const seen: SourceState[][] = []
  const from: Checkpointable = {
    // New maps and new objects each snapshot, as the thread engines' shared slots give them.
    snapshot: (): Snapshot => ({
      size: 10,
      output: { dev: 7, ino: 8 },
      offsets: new Map([['1:10', w.offset]]),
      heads: new Map([['1:10', Buffer.from(w.head)]]),
      stats: new Map([
        ['1:10', { linesSplit: 0, truncations: 0, pendingBytes: 0, lastActivity: 3, ...w.stats }],
      ]),
    }),
    sources: (offsets) => sourcesAt(new Map([['1:10', reader]]), offsets),
    fsync: async () => {},
    changes: () => w.changes,
  }
  const take = async () => {
    const first = await checkpointOnce(cp, w)
    seen.push([...saved().sources])
    return first
  }
  const cp = new Checkpointer(statePath, '/out.log', from, log)
  expect(await take()).toMatchObject({ offset: 5, head: b64('ab'), stats: { lines: 1 } })
  expect(await take()).toMatchObject({ offset: 5, head: b64('ab'), stats: { lines: 1 } })
  w.head = Buffer.from('abc')
  expect(await take()).toMatchObject({ offset: 5, head: b64('abc'), stats: { lines: 1 } })
  w.stats = { lines: 2 }
  expect(await take()).toMatchObject({ offset: 5, head: b64('abc'), stats: { lines: 2 } })
  w.offset = 9
  expect(await take()).toMatchObject({ offset: 9, head: b64('abc'), stats: { lines: 2 } })
  expect(seen).toHaveLength(5)
})

test('a record given again while unchanged (keepsItsLine): the writer stats and fingerprint it is saved with follow every change', async () => {
  const reader = keepsItsLine({ ...source, offset: 5 })
  const stats1 = { lines: 1, linesSplit: 0, truncations: 0, pendingBytes: 0, lastActivity: 3 }
  const w = { head: Buffer.from('ab'), stats: stats1, changes: 0 }
  const from: Checkpointable = {
    snapshot: (): Snapshot => ({
      size: 10,
      output: { dev: 7, ino: 8 },
      offsets: new Map([['1:10', 5]]),
      heads: new Map([['1:10', w.head]]),
      // The writer keeps a source's stats object until its next write.
      stats: new Map([['1:10', w.stats]]),
    }),
    sources: () => [reader],
    fsync: async () => {},
    changes: () => w.changes,
  }
  const cp = new Checkpointer(statePath, '/out.log', from, log)
  const take = () => checkpointOnce(cp, w)
  expect(await take()).toEqual({ ...source, offset: 5, head: b64('ab'), stats: stats1 })
  const text = readFileSync(statePath, 'utf8')
    .split('\n')
    .filter((l) => l.includes('"ino"'))
  expect(await take()).toEqual({ ...source, offset: 5, head: b64('ab'), stats: stats1 })
  expect(
    readFileSync(statePath, 'utf8')
      .split('\n')
      .filter((l) => l.includes('"ino"')),
  ).toEqual(text)
  w.stats = { ...stats1, lines: 2 }
  expect(await take()).toEqual({ ...source, offset: 5, head: b64('ab'), stats: w.stats })
  w.head = Buffer.from('abc')
  expect(await take()).toEqual({ ...source, offset: 5, head: b64('abc'), stats: w.stats })
  w.head = Buffer.from(source.head, 'base64')
  w.stats = undefined as unknown as typeof stats1
  expect(await take()).toEqual({ ...source, offset: 5 })
})
