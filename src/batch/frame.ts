/**
 * Frames a file read front to back (--once --order time) into blocks of whole lines: the bytes
 * after the last newline of a read are held and go in front of the next one, and a line longer
 * than maxLineBytes comes out as pieces of maxLineBytes - 1 bytes, each with a newline added,
 * cut at exactly the places the tail Cursor cuts them (so any chunking gives the same pieces).
 *
 * Why not the Cursor itself: it also keeps what a follower needs (the fingerprint, the line
 * count of every block, truncation), and looks for overlong lines one line at a time. Here the
 * merge already walks every line once; looking for a line longer than the limit takes a few
 * backward searches a block (see firstOverlong), and nothing is counted.
 */

const NEWLINE = 0x0a
const NL = Buffer.from([NEWLINE])

/** A block of whole lines and the positions in it of the newlines the framer added. */
export interface Framed {
  readonly block: Buffer
  /** Increasing; empty when nothing was added (see Cursor.inserted). */
  readonly inserted: readonly number[]
}

export class LineFramer {
  readonly maxLineBytes: number
  #pending: Buffer[] = []
  #pendingBytes = 0

  constructor(maxLineBytes: number) {
    if (!Number.isInteger(maxLineBytes) || maxLineBytes < 2) {
      throw new RangeError(`maxLineBytes must be an integer >= 2, got ${maxLineBytes}`)
    }
    this.maxLineBytes = maxLineBytes
  }

  /** Bytes of the partial last line held until its newline comes. */
  get pendingBytes(): number {
    return this.#pendingBytes
  }

  /**
   * Where to read next: `slot` with the held partial line copied to its start, reading up to
   * `want` bytes after it, or (when that leaves less than `minRead` of the slot) a fresh buffer.
   * Read into `buf` from `start`, at most `want` bytes, then call frame().
   */
  readBuffer(
    slot: Buffer,
    want: number,
    minRead: number,
  ): { buf: Buffer; start: number; want: number } {
    const start = this.#pendingBytes
    const room = slot.length - start
    const buf = room >= Math.min(want, minRead) ? slot : Buffer.allocUnsafe(start + want)
    let at = 0
    for (const piece of this.#pending) at += piece.copy(buf, at)
    return { buf, start, want: Math.min(want, buf.length - start) }
  }

  /**
   * `n` bytes were read into `buf` at `start` (from readBuffer): returns the block of whole
   * lines they finish (a view of `buf` unless lines were split), or null.
   */
  frame(buf: Buffer, start: number, n: number): Framed | null {
    if (start !== this.#pendingBytes) throw new Error('frame: the buffer is not from readBuffer')
    if (n === 0) return null
    const chunk = buf.subarray(start, start + n)
    const lastNewline = chunk.lastIndexOf(NEWLINE)
    const inserted: number[] = []
    if (lastNewline < 0) {
      this.#hold(Buffer.from(chunk)) // a copy: the read buffer is reused
      const pieces = this.#cutOverlongPending(inserted)
      return pieces === null ? null : { block: pieces, inserted }
    }
    this.#pending = []
    this.#pendingBytes = 0
    const rest = chunk.subarray(lastNewline + 1)
    if (rest.length > 0) this.#hold(Buffer.from(rest))
    const lines = splitOverlong(
      buf.subarray(0, start + lastNewline + 1),
      this.maxLineBytes - 1,
      inserted,
    )
    const before = inserted.length
    const pieces = this.#cutOverlongPending(inserted)
    if (pieces === null) return { block: lines, inserted }
    for (let i = before; i < inserted.length; i++)
      inserted[i] = (inserted[i] as number) + lines.length
    return { block: Buffer.concat([lines, pieces]), inserted }
  }

  /** The held partial line with a newline added (the end of the file), or null. */
  flush(): Framed | null {
    if (this.#pendingBytes === 0) return null
    const inserted = [this.#pendingBytes]
    const block = Buffer.concat([...this.#pending, NL], this.#pendingBytes + 1)
    this.#pending = []
    this.#pendingBytes = 0
    return { block, inserted }
  }

  #hold(bytes: Buffer): void {
    this.#pending.push(bytes)
    this.#pendingBytes += bytes.length
  }

  /** A held partial line that already cannot fit in one output line is cut into pieces now. */
  #cutOverlongPending(inserted: number[]): Buffer | null {
    const room = this.maxLineBytes - 1
    if (this.#pendingBytes <= room) return null
    const held = Buffer.concat(this.#pending, this.#pendingBytes)
    const parts: Buffer[] = []
    let at = 0
    while (held.length - at > room) {
      parts.push(held.subarray(at, at + room), NL)
      inserted.push(at + at / room + room) // piece k (at = k * room) ends at k * (room + 1) + room
      at += room
    }
    const kept = Buffer.from(held.subarray(at))
    this.#pending = [kept]
    this.#pendingBytes = kept.length
    return Buffer.concat(parts)
  }
}

/**
 * `block` (whole lines) with every line longer than `room` bytes (newline not counted) cut into
 * pieces of `room` bytes, a newline after each; the positions of the added newlines (in the
 * result) are pushed onto `inserted`. The block itself when no line is that long.
 */
export function splitOverlong(block: Buffer, room: number, inserted: number[]): Buffer {
  let lineStart = firstOverlong(block, 0, room)
  if (lineStart < 0) return block
  const parts: Buffer[] = []
  let copiedTo = 0
  let added = 0 // newlines added so far: a byte at `at` of block is at `at + added` in the result
  while (lineStart >= 0) {
    const end = block.indexOf(NEWLINE, lineStart)
    parts.push(block.subarray(copiedTo, lineStart))
    let at = lineStart
    while (end - at > room) {
      parts.push(block.subarray(at, at + room), NL)
      inserted.push(at + room + added++)
      at += room
    }
    copiedTo = at
    lineStart = firstOverlong(block, end + 1, room)
  }
  parts.push(block.subarray(copiedTo))
  return Buffer.concat(parts)
}

/**
 * The start of the first line at or after `from` (a line start) longer than `room` bytes, or
 * -1. A line starting at s is that long exactly when no newline lies in [s, s + room], so each
 * step searches back from s + room for the last newline and goes on after it: a block costs
 * about (its length / room) searches of a line's length each, not one search a line.
 */
export function firstOverlong(block: Buffer, from: number, room: number): number {
  let lineStart = from
  // A line starting at lineStart ends by block.length - 1 (a block ends in a newline).
  while (block.length - lineStart > room + 1) {
    const newline = block.lastIndexOf(NEWLINE, lineStart + room)
    if (newline < lineStart) return lineStart
    lineStart = newline + 1
  }
  return -1
}
