/**
 * Read buffers and output areas carved from one memory, so that copying a record from the
 * block it was read into to the output is a copy within that memory (arena-memory.ts: a
 * WebAssembly `memory.copy`, or `copyWithin` without WebAssembly).
 *
 * Why: a time-ordered output is made of short pieces (a line or a few) taken from several
 * blocks in turn. `Buffer.copy` of a 100-byte piece costs far more than the bytes (it goes
 * through a native call that builds a view per copy: ~90-130 ns a line on the benchmark
 * machine), while a copy inside one memory needs no allocation (~18 ns in WebAssembly, ~35 ns
 * with copyWithin). Pieces from buffers outside the arena (a record joined from two blocks, a
 * block the caller did not read into a slot) are copied the ordinary way.
 *
 * Output areas are handed to the writer as they are (no copy), and the writer writes them
 * while the merge fills the next one: an area is reused only once the caller says the writer
 * is done with it (written()). When every area is still being written and more output comes
 * (the caller released more than it made room for), the output goes on in a fresh buffer
 * outside the arena (a spill): slower, never wrong. A piece is never split between writes.
 *
 * The caller owns the slots' lifetime: a slot may be read into again only when nothing pushed
 * from it is still held by the merge. With --once and TimeOrder.needsMore, two slots per source
 * suffice: when the merge needs more of a source it holds at most that source's last record,
 * which lies in the slot read last (or in a joined copy), so the other slot is free.
 */

import { type ArenaMemory, arenaMemory } from './arena-memory.js'

/** How many blocks' places in the arena are remembered (a few per source being merged). */
const RECENT_BLOCKS = 16
/** #current when output goes to a buffer outside the arena. */
const SPILL = -1
/** #current after a flush: the next area is chosen when output comes. */
const NONE = -2

export interface CopyArenaOptions {
  /** Output areas of `outBytes` each (default 2: one written while the other fills). */
  readonly outAreas?: number
  /** Back the arena with a SharedArrayBuffer, so that another thread can put blocks into its slots. */
  readonly shared?: boolean
  /**
   * Memory to carve the arena from when it is large enough and shared as asked: a thread that
   * merges one partition after another reuses it instead of faulting in fresh pages each time.
   */
  readonly memory?: ArenaMemory
  /** false: copy with copyWithin even where WebAssembly is available (tests run both). */
  readonly wasm?: boolean
}

export class CopyArena {
  readonly slotBytes: number
  readonly slots: number
  readonly outBytes: number
  readonly #memory: ArenaMemory
  readonly #all: Buffer
  readonly #copy: (to: number, from: number, length: number) => void
  readonly #write: (bytes: Buffer) => void
  /** Each output area's end in the handed-out stream while the writer has it; -1 when free. */
  readonly #busyUntil: number[]
  readonly #areas: Buffer[]
  /** The area being filled: an index into #areas, SPILL, or NONE (chosen at the next append). */
  #current = 0
  #target: Buffer
  /** Where #target starts in the arena (-1 for a spill buffer). */
  #targetBase = -1
  /** The area handed over last (the next one is looked for after it). */
  #last = 0
  #used = 0
  #handed = 0
  #spills = 0
  readonly #recent: Buffer[] = []
  readonly #recentBase: number[] = []
  #nextRecent = 0

  /**
   * `slots` read slots of `slotBytes` each and output areas of `outBytes`; `write` receives
   * each area when it fills and on flush(), and may keep it until written() says it is done.
   */
  constructor(
    slotBytes: number,
    slots: number,
    outBytes: number,
    write: (bytes: Buffer) => void,
    options: CopyArenaOptions = {},
  ) {
    const outAreas = options.outAreas ?? 2
    for (const [name, n] of [
      ['slotBytes', slotBytes],
      ['slots', slots],
      ['outBytes', outBytes],
      ['outAreas', outAreas],
    ] as const) {
      if (!Number.isInteger(n) || n < 1) throw new RangeError(`${name} must be an integer >= 1`)
    }
    this.slotBytes = slotBytes
    this.slots = slots
    this.outBytes = outBytes
    const outStart = slotBytes * slots
    const total = CopyArena.bytesFor(slotBytes, slots, outBytes, outAreas)
    const shared = options.shared ?? false
    const reused = options.memory
    this.#memory =
      reused !== undefined &&
      reused.bytes.length >= total &&
      reused.shared === shared &&
      (options.wasm !== false || !reused.wasm)
        ? reused
        : arenaMemory(total, { shared, ...(options.wasm === false ? { wasm: false } : {}) })
    this.#all = this.#memory.bytes.subarray(0, total)
    this.#copy = this.#memory.copy
    this.#areas = Array.from({ length: outAreas }, (_, i) =>
      this.#all.subarray(outStart + i * outBytes, outStart + (i + 1) * outBytes),
    )
    this.#busyUntil = this.#areas.map(() => -1)
    this.#target = this.#areas[0] as Buffer
    this.#targetBase = outStart
    this.#write = write
  }

  /** The bytes an arena of these sizes takes (its slots, then its output areas). */
  static bytesFor(slotBytes: number, slots: number, outBytes: number, outAreas: number): number {
    return slotBytes * slots + outBytes * outAreas
  }

  /** The memory behind the arena (its bytes a SharedArrayBuffer when `shared`). */
  get memory(): ArenaMemory {
    return this.#memory
  }

  /** Read slot `i` (0 <= i < slots), a view of the arena. */
  slot(i: number): Buffer {
    if (!Number.isInteger(i) || i < 0 || i >= this.slots) throw new RangeError(`no slot ${i}`)
    return this.#all.subarray(i * this.slotBytes, (i + 1) * this.slotBytes)
  }

  /** Bytes handed to `write` so far. */
  get handedBytes(): number {
    return this.#handed
  }

  /** Output buffers allocated outside the arena: every area was held, or a piece was larger. */
  get spills(): number {
    return this.#spills
  }

  /** Output bytes that fit before a spill: the room left in the area being filled and the free areas. */
  get freeBytes(): number {
    let free = this.#current >= 0 ? this.outBytes - this.#used : 0
    for (let i = 0; i < this.#areas.length; i++)
      if (i !== this.#current && this.#busyUntil[i] === -1) free += this.outBytes
    return free
  }

  /**
   * The writer is done with every handed-out byte before `upTo` (counted as handedBytes):
   * the areas that lie wholly before it may be filled again.
   */
  written(upTo: number): void {
    for (let i = 0; i < this.#areas.length; i++) {
      const until = this.#busyUntil[i] as number
      if (until !== -1 && until <= upTo) this.#busyUntil[i] = -1
    }
  }

  /**
   * Appends block[start, end) to the output. A piece is never split between two writes: one
   * that does not fit in what is left of the area goes to the next area, and one larger than an
   * area to a buffer of its own. And `write` is only ever called from here with pieces appended
   * before this one. So a caller that notes how far each source's pieces go after append
   * returns, and sends those notes with each write (checkpoints), is exact.
   * `base` is baseOf(block), for a caller that appends from one block many times and keeps it.
   */
  append(block: Buffer, start: number, end: number, base = this.baseOf(block)): void {
    // The hot path (a piece of a slot that fits in an arena area) first, with nothing around it.
    const used = this.#used
    if (base >= 0 && this.#targetBase >= 0 && end - start <= this.outBytes - used) {
      this.#copy(this.#targetBase + used, base + start, end - start)
      this.#used = used + end - start
      return
    }
    this.#appendWhole(block, start, end, base)
  }

  #appendWhole(block: Buffer, start: number, end: number, base: number): void {
    const n = end - start
    if (n === 0) return
    if (this.#current !== NONE && this.#used + n > this.#target.length) {
      this.flush()
      this.#current = NONE // also when it was empty: an empty area stays free
      this.#targetBase = -1
    }
    if (this.#current === NONE) {
      if (n > this.outBytes) this.#takeSpill(n)
      else this.#takeFreeArea()
    }
    if (base >= 0 && this.#targetBase >= 0) {
      this.#copy(this.#targetBase + this.#used, base + start, n)
    } else {
      block.copy(this.#target, this.#used, start, end)
    }
    this.#used += n
  }

  /** Hands what the area being filled holds to `write`; the next output goes to another area. */
  flush(): void {
    if (this.#used === 0) return
    const bytes = this.#target.subarray(0, this.#used)
    this.#handed += this.#used
    if (this.#current >= 0) {
      this.#busyUntil[this.#current] = this.#handed
      this.#last = this.#current
    }
    this.#current = NONE
    this.#targetBase = -1
    this.#used = 0
    this.#write(bytes)
  }

  /** Makes the next free area (in ring order) the one being filled, or a spill buffer. */
  #takeFreeArea(): void {
    const n = this.#areas.length
    for (let k = 1; k <= n; k++) {
      const i = (this.#last + k) % n
      if (this.#busyUntil[i] === -1) {
        this.#current = i
        this.#target = this.#areas[i] as Buffer
        this.#targetBase = this.slotBytes * this.slots + i * this.outBytes
        return
      }
    }
    this.#takeSpill(this.outBytes)
  }

  /** Output goes to a buffer of `bytes` outside the arena (every area is held, or too small). */
  #takeSpill(bytes: number): void {
    this.#current = SPILL
    this.#target = Buffer.allocUnsafe(bytes)
    this.#targetBase = -1
    this.#spills++
  }

  /**
   * Where block[0] lies in the arena, or -1 when the block is not in it. Asking a view for its
   * `.buffer` costs about as much as the copy, so the answer for the last few blocks is kept.
   */
  baseOf(block: Buffer): number {
    const known = this.#recent
    for (let i = 0; i < known.length; i++)
      if (known[i] === block) return this.#recentBase[i] as number
    const base = block.buffer === this.#all.buffer ? block.byteOffset - this.#all.byteOffset : -1
    this.#recent[this.#nextRecent] = block
    this.#recentBase[this.#nextRecent] = base
    this.#nextRecent = (this.#nextRecent + 1) % RECENT_BLOCKS
    return base
  }
}
