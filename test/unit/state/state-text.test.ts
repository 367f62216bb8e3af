/**
 * The state file's text (encodeState): one line per source between the top-level fields and
 * pid / writer, read back whole; and base64Of, which gives every checkpoint its fingerprints.
 */
import { describe, expect, test } from 'vitest'
import { decodeState, encodeState } from '../../../src/state/checkpoint.js'
import { base64Of, keepsItsLine, type SourceState } from '../../../src/tail/source-state.js'

const a: SourceState = { dev: 1, ino: 10, born: 5.5, path: '/l/a "q".log', head: 'YQ==', offset: 2 }
const b: SourceState = {
  dev: 1,
  ino: 11,
  path: '/l/b.log',
  head: 'Yg==',
  offset: 5,
  stats: { lines: 3, linesSplit: 0, truncations: 0, pendingBytes: 0, lastActivity: 7 },
}

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
    expect(text.endsWith('}\n')).toBe(true)
  })

  test('no sources, no writer', () => {
    const text = encodeState(null, [], new Date(0), new Date(0), 7)
    expect(decodeState(text)).toMatchObject({ sources: [], pid: 7 })
    expect(Object.keys(JSON.parse(text))).not.toContain('writer')
  })
})

describe('base64Of', () => {
  test('a view into a larger buffer: its own bytes only', () => {
    const whole = Buffer.from('xxhello worldyy')
    expect(base64Of(whole.subarray(2, 13))).toBe(Buffer.from('hello world').toString('base64'))
    expect(base64Of(new Uint8Array(whole.buffer, whole.byteOffset + 2, 5))).toBe(
      Buffer.from('hello').toString('base64'),
    )
    expect(base64Of(Buffer.alloc(0))).toBe('')
  })
})

describe('a record that keeps its line (keepsItsLine)', () => {
  test('its line is its JSON, the same each checkpoint; the symbol shows nowhere', () => {
    const kept = keepsItsLine({ ...a })
    const first = encodeState(null, [kept, b], new Date(0), new Date(0), 1)
    expect(encodeState(null, [kept, b], new Date(0), new Date(0), 1)).toBe(first)
    expect(first).toContain(`  ${JSON.stringify(a)},`)
    expect(kept).toEqual(a)
    expect(Object.keys(kept)).toEqual(Object.keys(a))
    expect(decodeState(first).sources).toEqual([a, b])
  })
})
