/**
 * One source's blocks as the merge saw them, to turn the merge's offsets back into offsets in
 * the file. The merge counts the bytes pushed to a source; the file has fewer of them, because
 * the reader adds newlines (after the pieces of a line split at --max-line-bytes, after a
 * flushed partial line: Cursor.inserted), and a truncated file starts again at 0. A checkpoint
 * must record a file offset, so each record's end is mapped back here. Records of a source
 * come out in its order, so the blocks are a queue: the ones entirely before a mapped offset
 * are dropped as it moves on.
 */

interface PushedBlock {
  /** The block's first byte, in bytes pushed to the source. */
  readonly pushedStart: number
  readonly pushedEnd: number
  /** The file offset of the block's first byte. */
  readonly fileStart: number
  /** Positions in the block of the newlines the reader added, increasing. */
  readonly inserted: readonly number[]
}

export class FileOffsets {
  readonly #blocks: PushedBlock[] = []
  #head = 0
  #pushed = 0

  /**
   * A block of `length` bytes starting at file offset `fileStart` goes to the merge. Returns
   * the offset to push it at (the bytes pushed before it).
   */
  add(length: number, fileStart: number, inserted: readonly number[] = []): number {
    const pushedStart = this.#pushed
    this.#pushed += length
    this.#blocks.push({ pushedStart, pushedEnd: this.#pushed, fileStart, inserted })
    return pushedStart
  }

  /**
   * The file offset of the merge's offset `pushed` (a record's start or end). Call it with
   * offsets that do not go backwards by more than one block: earlier blocks are forgotten.
   */
  toFile(pushed: number): number {
    while (this.#head < this.#blocks.length - 1) {
      const first = this.#blocks[this.#head] as PushedBlock
      if (first.pushedEnd >= pushed) break
      this.#head++
    }
    if (this.#head > 1024) {
      this.#blocks.splice(0, this.#head)
      this.#head = 0
    }
    const block = this.#blocks[this.#head]
    if (block === undefined) return 0
    const within = Math.min(
      Math.max(pushed - block.pushedStart, 0),
      block.pushedEnd - block.pushedStart,
    )
    // Added newlines before `within` are not file bytes (a block after a truncation may map below 0).
    return Math.max(0, block.fileStart + within - countBelow(block.inserted, within))
  }
}

/** How many of the increasing `positions` are below `limit`. */
function countBelow(positions: readonly number[], limit: number): number {
  let lo = 0
  let hi = positions.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if ((positions[mid] as number) < limit) lo = mid + 1
    else hi = mid
  }
  return lo
}
