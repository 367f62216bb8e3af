import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { CopyArena, type CopyArenaOptions } from '../../../src/batch/arena.js'
import { arenaMemory, MAX_WASM_BYTES, wasmAvailable } from '../../../src/batch/arena-memory.js'

/** A writer that holds each area it is handed until the test says it is written. */
class HoldingWriter {
  /** Every area handed over, with a copy of its bytes as they were then. */
  readonly handed: { view: Buffer; copy: Buffer; end: number }[] = []
  #total = 0

  readonly write = (bytes: Buffer): void => {
    expect(bytes.length).toBeGreaterThan(0)
    this.#total += bytes.length
    this.handed.push({ view: bytes, copy: Buffer.from(bytes), end: this.#total })
  }

  #written = 0

  /**
   * The first `n` areas are written (as a writer would, now): none of them may have changed
   * since it was handed over. Returns where they end, for CopyArena.written().
   */
  writtenUpTo(n: number): number {
    for (const h of this.handed.slice(this.#written, n)) expect(h.view.equals(h.copy)).toBe(true)
    this.#written = Math.max(this.#written, n)
    return this.handed[n - 1]?.end ?? 0
  }

  get output(): Buffer {
    return Buffer.concat(this.handed.map((h) => h.copy))
  }
}

/** Every memory an arena can have: WebAssembly's (plain and shared), and a plain buffer. */
const MEMORIES: readonly { readonly name: string; readonly options: CopyArenaOptions }[] = [
  { name: 'WebAssembly memory', options: {} },
  { name: 'shared WebAssembly memory', options: { shared: true } },
  { name: 'a buffer and copyWithin', options: { wasm: false } },
]

describe.each(MEMORIES)('CopyArena in $name', ({ options: memory }) => {
  it('writes exactly the pieces appended, whole and in order, never touching an area the writer holds', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 64 }),
        fc.integer({ min: 1, max: 4 }),
        fc.array(
          fc.record({
            inSlot: fc.boolean(),
            slot: fc.nat({ max: 2 }),
            bytes: fc.uint8Array({ minLength: 0, maxLength: 80 }),
            // After the piece: how many areas handed over so far the writer has written.
            writtenBack: fc.nat({ max: 3 }),
          }),
          { maxLength: 30 },
        ),
        (outBytes, outAreas, pieces) => {
          const writer = new HoldingWriter()
          const arena = new CopyArena(100, 3, outBytes, writer.write, { outAreas, ...memory })
          const expected: Buffer[] = []
          for (const piece of pieces) {
            const bytes = Buffer.from(piece.bytes)
            let block: Buffer
            if (piece.inSlot) {
              // A block read into a slot: a view of part of the slot, as the reader makes.
              const slot = arena.slot(piece.slot)
              bytes.copy(slot, 10)
              block = slot.subarray(5, 10 + bytes.length)
            } else {
              block = Buffer.concat([Buffer.alloc(5), bytes])
            }
            const handedBefore = arena.handedBytes
            arena.append(block, 5, 5 + bytes.length)
            // A write made by this append holds only what was appended before it.
            expect(arena.handedBytes).toBeLessThanOrEqual(
              expected.reduce((n, e) => n + e.length, 0),
            )
            expect(arena.handedBytes).toBeGreaterThanOrEqual(handedBefore)
            expected.push(bytes)
            // Slots are reused by the caller once appended (as the merge does): overwrite.
            if (piece.inSlot) arena.slot(piece.slot).fill(0xee)
            const n = Math.max(0, writer.handed.length - piece.writtenBack)
            arena.written(writer.writtenUpTo(n))
            expect(arena.handedBytes).toBe(writer.handed.reduce((s, h) => s + h.copy.length, 0))
          }
          arena.flush()
          writer.writtenUpTo(writer.handed.length)
          expect(writer.output.equals(Buffer.concat(expected))).toBe(true)
          // Every write ends where a piece ends.
          const pieceEnds = new Set<number>()
          let at = 0
          for (const e of expected) {
            at += e.length
            pieceEnds.add(at)
          }
          for (const h of writer.handed) expect(pieceEnds.has(h.end)).toBe(true)
        },
      ),
      { numRuns: 300 },
    )
  })

  it('never splits a piece between writes, nor writes the piece being appended', () => {
    const writer = new HoldingWriter()
    const arena = new CopyArena(32, 1, 8, writer.write, { outAreas: 2, ...memory })
    const slot = arena.slot(0)
    slot.write('abcdefghijklmnopqrstuvwxyz')
    expect(arena.freeBytes).toBe(16)
    arena.append(slot, 0, 5) // abcde
    expect(arena.freeBytes).toBe(11)
    arena.append(slot, 5, 9) // fghi does not fit after abcde: abcde goes, fghi starts the other area
    expect(writer.handed.map((h) => h.copy.toString())).toEqual(['abcde'])
    arena.append(slot, 9, 20) // jklmnopqrst, larger than an area: fghi goes, it waits in a spill
    expect(writer.handed.map((h) => h.copy.toString())).toEqual(['abcde', 'fghi'])
    expect(arena.spills).toBe(1)
    expect(arena.freeBytes).toBe(0) // both areas held by the writer
    arena.append(slot, 20, 23) // uvw: jklmnopqrst goes; uvw to a spill (no area is free)
    expect(writer.handed.map((h) => h.copy.toString())).toEqual(['abcde', 'fghi', 'jklmnopqrst'])
    expect(arena.spills).toBe(2)
    arena.written(writer.writtenUpTo(1)) // the first area is free again
    expect(arena.freeBytes).toBe(8)
    arena.append(slot, 23, 26) // xyz still fits in the spill
    arena.flush()
    arena.flush()
    expect(arena.spills).toBe(2)
    expect(writer.handed.map((h) => h.copy.toString())).toEqual([
      'abcde',
      'fghi',
      'jklmnopqrst',
      'uvwxyz',
    ])
    expect(arena.handedBytes).toBe(26)
    writer.writtenUpTo(4)
  })

  it('chooses the next area when output comes, so one the writer finished meanwhile is taken', () => {
    const writer = new HoldingWriter()
    const arena = new CopyArena(16, 1, 4, writer.write, { outAreas: 1, ...memory })
    const slot = arena.slot(0)
    slot.write('abcdefgh')
    arena.append(slot, 0, 4) // fills the only area
    arena.append(slot, 4, 5) // hands it over: e goes to a spill
    arena.flush()
    expect(arena.spills).toBe(1)
    expect(arena.freeBytes).toBe(0)
    arena.written(writer.writtenUpTo(2))
    expect(arena.freeBytes).toBe(4)
    arena.append(slot, 5, 8)
    arena.flush()
    expect(arena.spills).toBe(1)
    expect(writer.output.toString()).toBe('abcdefgh')
  })

  it('uses the memory asked for, and reuses a given one only when it fits', () => {
    const arena = new CopyArena(4, 2, 4, () => {}, memory)
    const shared = memory.shared === true
    expect(arena.memory.shared).toBe(shared)
    expect(arena.memory.bytes.buffer).toBeInstanceOf(shared ? SharedArrayBuffer : ArrayBuffer)
    expect(arena.memory.wasm).toBe(memory.wasm !== false)
    const again = new CopyArena(4, 2, 4, () => {}, { ...memory, memory: arena.memory })
    expect(again.memory).toBe(arena.memory)
    const larger = new CopyArena(1 << 20, 2, 4, () => {}, { ...memory, memory: arena.memory })
    expect(larger.memory).not.toBe(arena.memory)
    const other = new CopyArena(4, 2, 4, () => {}, { shared: !shared, memory: arena.memory })
    expect(other.memory).not.toBe(arena.memory)
  })

  it('refuses bad sizes and slots', () => {
    expect(() => new CopyArena(0, 1, 1, () => {})).toThrow(/slotBytes/)
    expect(() => new CopyArena(1, 1.5, 1, () => {})).toThrow(/slots/)
    expect(() => new CopyArena(1, 1, 1, () => {}, { outAreas: 0 })).toThrow(/outAreas/)
    const arena = new CopyArena(4, 2, 4, () => {})
    expect(arena.slot(1).length).toBe(4)
    expect(() => arena.slot(2)).toThrow(/no slot 2/)
  })
})

describe('arenaMemory', () => {
  it('is WebAssembly memory here (the merge relies on its copy being fast)', () => {
    expect(wasmAvailable()).toBe(true)
  })

  it.each([
    { shared: false, wasm: true },
    { shared: true, wasm: true },
    { shared: false, wasm: false },
  ])('copies forwards, backwards and overlapping (shared $shared, wasm $wasm)', (kind) => {
    const size = 70_000 // more than a WebAssembly page
    const memory = arenaMemory(size, kind)
    expect(memory.bytes.length).toBeGreaterThanOrEqual(size)
    expect(memory.wasm).toBe(kind.wasm)
    const model = Buffer.alloc(memory.bytes.length)
    for (let i = 0; i < model.length; i++) model[i] = (i * 131) & 0xff
    memory.bytes.set(model)
    const copies: [number, number, number][] = [
      [66_000, 10, 500], // across the page boundary
      [100, 90, 50], // overlapping, forwards
      [90, 100, 50], // overlapping, backwards
      [5, 5, 7], // onto itself
      [0, 69_990, 10], // the last bytes asked for
      [1234, 4321, 0], // nothing
    ]
    for (const [to, from, length] of copies) {
      memory.copy(to, from, length)
      model.copyWithin(to, from, from + length)
    }
    expect(memory.bytes.equals(model)).toBe(true)
  })

  it('refuses shared memory without WebAssembly or over its 4 GiB, and bad sizes', () => {
    expect(() => arenaMemory(16, { shared: true, wasm: false })).toThrow(/needs WebAssembly/)
    expect(() => arenaMemory(MAX_WASM_BYTES + 1, { shared: true })).toThrow(/at most 4 GiB/)
    expect(() => arenaMemory(0)).toThrow(/size/)
  })
})
