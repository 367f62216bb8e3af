/**
 * The state file's source lines and the records a checkpoint reuses (src/state/source-texts.ts):
 * a source unchanged since the last checkpoint is the same record, with the same line; any
 * changed field (offset, fingerprint, stats) gives a new one; the file reads back the same.
 */
import fc from 'fast-check'
import { describe, expect, test } from 'vitest'
import type { SourceStats } from '../../../src/sink/sink.js'
import { decodeState, encodeState } from '../../../src/state/checkpoint.js'
import { sourcesAt } from '../../../src/state/checkpointer.js'
import { RecordsAt, SavedRecords, sameRecord, sourceLine } from '../../../src/state/source-texts.js'
import { base64Of, type SourceState } from '../../../src/tail/source-state.js'

const stats: SourceStats = {
  lines: 3,
  linesSplit: 0,
  truncations: 0,
  pendingBytes: 0,
  lastActivity: 7,
}
const a: SourceState = { dev: 1, ino: 10, path: '/l/a.log', head: 'YQ==', offset: 2 }
const b: SourceState = { dev: 1, ino: 11, path: '/l/b.log', head: 'Yg==', offset: 5 }
const snap = (heads: [string, Uint8Array][], st: [string, SourceStats][]) => ({
  heads: new Map(heads),
  stats: new Map(st),
})

describe('SavedRecords: a reader record with the writer fingerprint and stats', () => {
  test('the same record while neither changed, compared by value (new objects each snapshot)', () => {
    const records = new SavedRecords()
    const first = records.of(a, snap([['1:10', Buffer.from('ab')]], [['1:10', stats]]))
    expect(first).toEqual({ ...a, head: 'YWI=', stats })
    const again = records.of(a, snap([['1:10', Buffer.from('ab')]], [['1:10', { ...stats }]]))
    expect(again).toBe(first)
  })

  test('a new record when the fingerprint or a stat changed', () => {
    const records = new SavedRecords()
    const first = records.of(a, snap([['1:10', Buffer.from('ab')]], [['1:10', stats]]))
    const head = records.of(a, snap([['1:10', Buffer.from('ac')]], [['1:10', stats]]))
    expect(head).toEqual({ ...a, head: 'YWM=', stats })
    const lines = records.of(
      a,
      snap([['1:10', Buffer.from('ac')]], [['1:10', { ...stats, lines: 4 }]]),
    )
    expect(lines).toEqual({ ...a, head: 'YWM=', stats: { ...stats, lines: 4 } })
    const none = records.of(a, snap([], []))
    expect(none).toBe(a)
    expect(new Set([first, head, lines]).size).toBe(3)
  })
})

describe('sourcesAt and RecordsAt', () => {
  test('the same record while the description and the offset are the same', () => {
    const told = new Map([
      ['1:10', a],
      ['1:11', b],
    ])
    const first = sourcesAt(
      told,
      new Map([
        ['1:10', 7],
        ['1:11', 5],
      ]),
    )
    const second = sourcesAt(
      told,
      new Map([
        ['1:10', 7],
        ['1:11', 6],
      ]),
    )
    expect(first?.[0]).toEqual({ ...a, offset: 7 })
    expect(second?.[0]).toBe(first?.[0])
    expect(second?.[1]).toEqual({ ...b, offset: 6 })
    expect(second?.[1]).not.toBe(first?.[1])
    const at = new RecordsAt()
    const moved = { ...a, path: '/l/a.log.1' }
    expect(at.at(moved, 2)).not.toBe(at.at(a, 2))
  })
})

describe('the state file text', () => {
  test('one line per source, between the top fields and pid / writer', () => {
    const text = encodeState(null, [a, b], new Date(0), new Date(0), 42, { gens: 1 })
    const lines = text.split('\n')
    expect(lines).toContain(`  ${JSON.stringify(a)},`)
    expect(lines).toContain(`  ${JSON.stringify(b)}`)
    const state = decodeState(text)
    expect(state.sources).toEqual([a, b])
    expect(state.pid).toBe(42)
    expect(state.writer).toEqual({ gens: 1 })
    expect(Object.keys(JSON.parse(text))).toEqual([
      'format',
      'version',
      'savedAt',
      'startedAt',
      'output',
      'sources',
      'pid',
      'writer',
    ])
    expect(decodeState(encodeState(null, [], new Date(0))).sources).toEqual([])
  })

  test('property: records reused across checkpoints read back as given', () => {
    const record = fc.record({
      ino: fc.integer({ min: 1, max: 6 }),
      path: fc.constantFrom('/a', '/b', '/c "d"'),
      head: fc.constantFrom('', 'YQ==', 'YWI='),
      offset: fc.nat({ max: 3 }),
    })
    const rounds = fc.array(fc.uniqueArray(record, { selector: (s) => s.ino }), { maxLength: 6 })
    fc.assert(
      fc.property(rounds, (list) => {
        const records = new SavedRecords()
        const told = new Map<string, SourceState>()
        for (const round of list) {
          const offsets = new Map<string, number>()
          for (const r of round) {
            const key = `1:${r.ino}`
            const had = told.get(key)
            // A description changes only when something in it did (as the threads send them).
            const next = { dev: 1, ...r, offset: 0 }
            if (!had || !sameRecord(had, next)) told.set(key, next)
            offsets.set(key, r.offset)
          }
          for (const key of told.keys()) if (!offsets.has(key)) told.delete(key)
          const at = sourcesAt(told, offsets) ?? []
          const sources = at.map((s) => records.of(s, snap([], [])))
          const text = encodeState(null, sources, new Date(0), new Date(0), 1)
          expect(decodeState(text).sources).toEqual(round.map((r) => ({ dev: 1, ...r })))
        }
      }),
    )
  })

  test('a line is the record JSON, kept with the record object', () => {
    expect(sourceLine(a)).toBe(JSON.stringify(a))
    expect(sourceLine(a)).toBe(sourceLine(a))
  })
})

describe('base64Of and sameRecord', () => {
  test('base64Of a view into a larger buffer: its own bytes only', () => {
    const whole = Buffer.from('xxhello worldyy')
    expect(base64Of(whole.subarray(2, 13))).toBe(Buffer.from('hello world').toString('base64'))
    expect(base64Of(new Uint8Array(whole.buffer, whole.byteOffset + 2, 5))).toBe(
      Buffer.from('hello').toString('base64'),
    )
  })

  test('sameRecord compares nested records by value', () => {
    expect(sameRecord({ x: 1, s: { y: 2 } }, { s: { y: 2 }, x: 1 })).toBe(true)
    expect(sameRecord({ x: 1, s: { y: 2 } }, { x: 1, s: { y: 3 } })).toBe(false)
    expect(sameRecord({ x: 1 }, { x: 1, z: undefined })).toBe(false)
    expect(sameRecord({ x: null }, { x: {} })).toBe(false)
  })
})
