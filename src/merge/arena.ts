/**
 * Read buffers and an output buffer carved from one ArrayBuffer, so that copying a record from
 * the block it was read into to the output is a `copyWithin` on one view.
 *
 * Why: a time-ordered output is made of short pieces (a line or a few) taken from several
 * blocks in turn. `Buffer.copy` of a 100-byte piece costs far more than the bytes (it goes
 * through a native call that builds a view per copy: ~130 ns a line on the benchmark machine),
 * while `Uint8Array.prototype.copyWithin` inside one buffer is a builtin with no allocation
 * (~25 ns). Pieces from buffers outside the arena (a record joined from two blocks, a block
 * the caller did not read into a slot) are copied the ordinary way.
 *
 * The caller owns the slots' lifetime: a slot may be read into again only when nothing pushed
 * from it is still held by the merge. With --once and TimeOrder.needsMore, two slots per source
 * suffice: when the merge needs more of a source it holds at most that source's last record,
 * which lies in the slot read last (or in a joined copy), so the other slot is free.
 */

/** How many blocks' places in the arena are remembered (a few per source being merged). */
const RECENT_BLOCKS = 16

export class CopyArena {
  readonly slotBytes: number
  readonly slots: number
  readonly #all: Buffer
  readonly #outStart: number
  readonly #outBytes: number
  readonly #write: (bytes: Buffer) => void
  #used = 0
  readonly #recent: Buffer[] = []
  readonly #recentBase: number[] = []
  #nextRecent = 0

  /**
   * `slots` read slots of `slotBytes` each and an output area of `outBytes`; `write` receives
   * the output whenever the area fills and on flush() (it must consume the bytes before it
   * returns: the area is reused).
   */
  constructor(slotBytes: number, slots: number, outBytes: number, write: (bytes: Buffer) => void) {
    for (const [name, n] of [
      ['slotBytes', slotBytes],
      ['slots', slots],
      ['outBytes', outBytes],
    ] as const) {
      if (!Number.isInteger(n) || n < 1) throw new RangeError(`${name} must be an integer >= 1`)
    }
    this.slotBytes = slotBytes
    this.slots = slots
    this.#outStart = slotBytes * slots
    this.#outBytes = outBytes
    this.#all = Buffer.allocUnsafeSlow(this.#outStart + outBytes)
    this.#write = write
  }

  /** Read slot `i` (0 <= i < slots), a view of the arena. */
  slot(i: number): Buffer {
    if (!Number.isInteger(i) || i < 0 || i >= this.slots) throw new RangeError(`no slot ${i}`)
    return this.#all.subarray(i * this.slotBytes, (i + 1) * this.slotBytes)
  }

  /** Appends block[start, end) to the output. */
  append(block: Buffer, start: number, end: number): void {
    const n = end - start
    if (this.#used + n > this.#outBytes) this.flush()
    if (n > this.#outBytes) {
      this.#write(block.subarray(start, end))
      return
    }
    const at = this.#outStart + this.#used
    const base = this.#baseOf(block)
    if (base >= 0) this.#all.copyWithin(at, base + start, base + end)
    else block.copy(this.#all, at, start, end)
    this.#used += n
  }

  /**
   * Where block[0] lies in the arena, or -1 when the block is not in it. Asking a view for its
   * `.buffer` costs about as much as the copy, so the answer for the last few blocks is kept.
   */
  #baseOf(block: Buffer): number {
    const known = this.#recent
    for (let i = 0; i < known.length; i++)
      if (known[i] === block) return this.#recentBase[i] as number
    const base = block.buffer === this.#all.buffer ? block.byteOffset - this.#all.byteOffset : -1
    this.#recent[this.#nextRecent] = block
    this.#recentBase[this.#nextRecent] = base
    this.#nextRecent = (this.#nextRecent + 1) % RECENT_BLOCKS
    return base
  }

  /** Hands what the output area holds to `write`. */
  flush(): void {
    if (this.#used === 0) return
    const bytes = this.#all.subarray(this.#outStart, this.#outStart + this.#used)
    this.#used = 0
    this.#write(bytes)
  }
}
