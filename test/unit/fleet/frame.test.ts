import fc from 'fast-check'
import { describe, expect, test } from 'vitest'
import {
  type BatchMeta,
  decodeBatch,
  encodeBatch,
  fileOffsetAt,
  positionOf,
  splitLongLines,
} from '../../../src/fleet/frame.js'
import { Cursor } from '../../../src/tail/cursor.js'

const meta = (data: Buffer): BatchMeta => ({
  v: 1,
  h: 'web-1',
  r: 'run',
  c: 0,
  g: { g1: { p: '/var/log/a.log', l: 'a.log', o: 0 } },
  s: [{ g: 'g1', s: 10, e: 10 + data.length, n: data.length }],
})

describe('frame', () => {
  test('a batch decodes to what was encoded, bytes untouched', () => {
    const data = Buffer.from('one\r\ntwo\0\nthree \xff\n', 'latin1')
    const m = meta(data)
    const decoded = decodeBatch(encodeBatch(m, [data], data.length))
    expect(decoded.meta).toEqual(m)
    expect(decoded.data.equals(data)).toBe(true)
  })

  test('a message that is not ours, or whose lengths do not add up, is refused', () => {
    expect(() => decodeBatch(Buffer.from('hello'))).toThrow(/not a logmerge message/)
    const data = Buffer.from('a\n')
    const bad = { ...meta(data), s: [{ g: 'g1', s: 0, e: 5, n: 2 }] }
    expect(() => decodeBatch(encodeBatch(bad, [data], 2))).toThrow(/does not match its range/)
  })

  test('offsets and positions map back and forth around added newlines', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 1000 }),
        fc.uniqueArray(fc.integer({ min: 0, max: 200 }), { maxLength: 10 }),
        fc.integer({ min: 0, max: 200 }),
        (start, raw, at) => {
          const inserted = [...raw].sort((a, b) => a - b)
          if (inserted.includes(at)) return // not a line boundary in the file
          const offset = fileOffsetAt(start, inserted, at)
          expect(positionOf(start, inserted, offset)).toBeLessThanOrEqual(at)
          expect(fileOffsetAt(start, inserted, positionOf(start, inserted, offset))).toBe(offset)
        },
      ),
    )
  })

  test('long lines are split where the readers split them, whatever the block', () => {
    const max = 16
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 50 }), { minLength: 1, maxLength: 8 }),
        (lengths) => {
          const text = lengths.map((n, i) => `${String.fromCharCode(97 + i).repeat(n)}\n`).join('')
          const block = Buffer.from(text)
          const cursor = new Cursor({
            identity: { dev: 1, ino: 1 },
            offset: 0,
            head: Buffer.alloc(0),
            maxLineBytes: max,
          })
          const expected = cursor.frame(Buffer.from(text)) ?? Buffer.alloc(0)
          const split = splitLongLines(block, [], max)
          expect(split.block.toString()).toBe(expected.toString())
          expect(split.inserted).toEqual(cursor.inserted)
          // Every added newline is one the file does not have: the file bytes come back.
          const kept = [...split.block].filter((_, i) => !split.inserted.includes(i))
          expect(Buffer.from(kept).toString()).toBe(text)
        },
      ),
    )
  })

  test('newlines the reader added are carried over', () => {
    const block = Buffer.from(`${'x'.repeat(10)}\n${'y'.repeat(40)}\n`)
    const { inserted } = splitLongLines(block, [10], 16)
    expect(inserted[0]).toBe(10)
    expect(inserted.length).toBe(3)
  })
})
