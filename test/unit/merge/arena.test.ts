import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { CopyArena } from '../../../src/merge/arena.js'

describe('CopyArena', () => {
  it('writes exactly the pieces appended, from its slots or from anywhere, in order', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 64 }),
        fc.array(
          fc.record({
            inSlot: fc.boolean(),
            slot: fc.nat({ max: 2 }),
            bytes: fc.uint8Array({ minLength: 0, maxLength: 80 }),
          }),
          { maxLength: 30 },
        ),
        (outBytes, pieces) => {
          const written: Buffer[] = []
          const arena = new CopyArena(100, 3, outBytes, (b) => {
            expect(b.length).toBeGreaterThan(0)
            written.push(Buffer.from(b)) // the area is reused: keep a copy
          })
          const expected: Buffer[] = []
          for (const piece of pieces) {
            const bytes = Buffer.from(piece.bytes)
            let block: Buffer
            if (piece.inSlot) {
              // A block read into a slot: a view of part of the slot, as the Cursor makes.
              const slot = arena.slot(piece.slot)
              bytes.copy(slot, 10)
              block = slot.subarray(5, 10 + bytes.length)
            } else {
              block = Buffer.concat([Buffer.alloc(5), bytes])
            }
            arena.append(block, 5, 5 + bytes.length)
            expected.push(bytes)
            // Slots are reused by the caller once appended (as the merge does): overwrite.
            if (piece.inSlot) arena.slot(piece.slot).fill(0xee)
          }
          arena.flush()
          expect(Buffer.concat(written).equals(Buffer.concat(expected))).toBe(true)
        },
      ),
      { numRuns: 300 },
    )
  })

  it('hands each full output area to write, and pieces larger than an area straight through', () => {
    const writes: string[] = []
    const arena = new CopyArena(16, 1, 8, (b) => writes.push(b.toString()))
    const block = Buffer.from('abcdefghijklmnopqrstuvwxyz')
    arena.append(block, 0, 5) // abcde
    arena.append(block, 5, 9) // fghi: does not fit after abcde
    arena.append(block, 9, 21) // longer than the area: written as it is
    arena.flush()
    arena.flush()
    expect(writes).toEqual(['abcde', 'fghi', 'jklmnopqrstu'])
  })

  it('refuses bad sizes and slots', () => {
    expect(() => new CopyArena(0, 1, 1, () => {})).toThrow(/slotBytes/)
    expect(() => new CopyArena(1, 1.5, 1, () => {})).toThrow(/slots/)
    const arena = new CopyArena(4, 2, 4, () => {})
    expect(arena.slot(1).length).toBe(4)
    expect(() => arena.slot(2)).toThrow(/no slot 2/)
  })
})
