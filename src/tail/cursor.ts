/**
 * The reader core: what one open file looks like to logmerge, with no I/O.
 *
 * A cursor knows the file's identity (device, inode and the first bytes, so a reused inode is
 * not mistaken for the old file), the offset of the next unread byte and the partial last line
 * it holds. The I/O shells (tail-sync, tail-async) feed it stats and chunks; it decides what
 * happened to the file and frames chunks into blocks of whole lines.
 */

const NEWLINE = 0x0a
const NL = Buffer.from([NEWLINE])

/** How many leading bytes identify a file's content (besides device and inode). */
export const FINGERPRINT_BYTES = 64

export interface Identity {
  readonly dev: number
  readonly ino: number
  /**
   * When the file was born (ms since the epoch, as fs.Stats has it; absent or 0 when the file
   * system records no birth times or the state file is older than the field). Not part of the
   * key: it tells two files apart that held one inode at different times (see anotherFile).
   */
  readonly birthtimeMs?: number
}

export const identityKey = (id: Identity): string => `${id.dev}:${id.ino}`

/**
 * Two fingerprints of one file: the shorter is a prefix of the longer (the file only grew since
 * the shorter was taken). An empty one agrees with anything.
 */
export function headsAgree(a: Buffer, b: Buffer): boolean {
  const n = Math.min(a.length, b.length)
  return a.compare(b, 0, n, 0, n) === 0
}

export const sameIdentity = (a: Identity, b: Identity): boolean =>
  a.dev === b.dev && a.ino === b.ino

/**
 * Two looks at one inode that saw two files: both birth times are known and differ, so the
 * first file was deleted and its inode given to a new one. The first bytes cannot always tell
 * (a new file is empty at first, and an empty fingerprint agrees with anything): taken for the
 * old file, a new generation that got a deleted generation's inode was read as that file
 * truncated, and the search for copies a truncation starts read the next generation before it
 * (the mixed soak, rename rotation with old generations deleted: 232 lines of one generation
 * after the next one's, on every engine).
 */
export const anotherFile = (
  a: Pick<Identity, 'birthtimeMs'>,
  b: Pick<Identity, 'birthtimeMs'>,
): boolean => !!a.birthtimeMs && !!b.birthtimeMs && a.birthtimeMs !== b.birthtimeMs

/** What a fresh look at the open file says. */
export type Change = 'idle' | 'grown' | 'truncated'

export interface CursorInit {
  readonly identity: Identity
  /** Offset of the next byte to read. */
  readonly offset: number
  /** The file's first bytes as far as known (up to FINGERPRINT_BYTES). */
  readonly head: Buffer
  /** Longest output line, newline included; longer lines are split into pieces. */
  readonly maxLineBytes: number
  /** Counters carried over from a checkpoint (a restart goes on counting). */
  readonly counts?: CursorCounts
}

/** What a cursor has counted over the life of its file (kept across restarts). */
export interface CursorCounts {
  readonly lines: number
  /** Bytes of the blocks returned (absent in state files from before it was kept: 0). */
  readonly bytes?: number
  readonly linesSplit: number
  readonly truncations: number
}

/** Newlines in `block`: one native search per line, about 2 GB/s for 85-byte lines. */
export function countLines(block: Buffer): number {
  let n = 0
  for (let at = block.indexOf(NEWLINE); at !== -1; at = block.indexOf(NEWLINE, at + 1)) n++
  return n
}

export class Cursor {
  readonly identity: Identity
  readonly maxLineBytes: number
  #offset: number
  #head: Buffer
  #pending: Buffer[] = []
  #pendingBytes = 0
  #linesSplit = 0
  #truncations = 0
  #lines = 0
  #bytes = 0
  /** Positions of the newlines we added to the last block returned (see `inserted`). */
  #inserted: number[] = []
  /** The held partial line has already been cut into pieces (count it as split once). */
  #cutting = false
  /** The last readBuffer lent the caller's scratch buffer (it is not ours to hold). */
  #lent = false

  constructor(init: CursorInit) {
    if (!Number.isInteger(init.maxLineBytes) || init.maxLineBytes < 2) {
      throw new RangeError(`maxLineBytes must be an integer >= 2, got ${init.maxLineBytes}`)
    }
    this.identity = init.identity
    this.maxLineBytes = init.maxLineBytes
    this.#offset = init.offset
    this.#head = Buffer.from(init.head.subarray(0, FINGERPRINT_BYTES))
    this.#lines = init.counts?.lines ?? 0
    this.#bytes = init.counts?.bytes ?? 0
    this.#linesSplit = init.counts?.linesSplit ?? 0
    this.#truncations = init.counts?.truncations ?? 0
  }

  /** Offset of the next byte to read from the file. */
  get offset(): number {
    return this.#offset
  }

  /** Offset up to which every byte is in a block already returned: safe to checkpoint. */
  get committedOffset(): number {
    return this.#offset - this.#pendingBytes
  }

  /** Bytes of a partial last line held until its newline arrives. */
  get pendingBytes(): number {
    return this.#pendingBytes
  }

  /** Times the file was seen truncated and read again from the start. */
  get truncations(): number {
    return this.#truncations
  }

  /** Lines that were longer than maxLineBytes and so were split. */
  get linesSplit(): number {
    return this.#linesSplit
  }

  /**
   * Positions, in the block the last call returned, of the newlines the cursor added (after the
   * pieces of a split line, after a flushed partial line), in increasing order; empty for an
   * ordinary block. With them a caller that cuts a block into lines can map each line's end back
   * to an offset in the file (the merge by timestamp checkpoints between lines).
   */
  get inserted(): readonly number[] {
    return this.#inserted
  }

  /** Lines returned so far (a split line counts once per piece): what reached the writer. */
  get lines(): number {
    return this.#lines
  }

  /** Bytes of the blocks returned so far (added newlines included): what reached the writer. */
  get bytes(): number {
    return this.#bytes
  }

  get head(): Buffer {
    return this.#head
  }

  /** True while the fingerprint is shorter than it could be (the file was short when read). */
  get headIncomplete(): boolean {
    return this.#head.length < FINGERPRINT_BYTES
  }

  /**
   * Decides what happened to the file from its current size and, when available, its current
   * first bytes. A file whose first bytes changed was truncated and written again, even if it is
   * now longer than our offset. So was one now shorter than the first bytes we know of it (files
   * only shrink by truncation; see readStillOurs): a fingerprint can run ahead of the offset (a
   * file that start-up found rewritten resumes at 0 with its first bytes then), and an empty
   * file agrees with any fingerprint. Taken for idle, a look at such a file emptied by a
   * copytruncate counted as seeing it whole after the copy was born, and the search from then
   * for the generations the truncation skipped missed the one copied just before (the mixed
   * soak, async: a whole generation read by the next run, after later ones).
   */
  classify(size: number, headNow?: Buffer): Change {
    if (size < this.#offset || size < this.#head.length) return 'truncated'
    if (headNow !== undefined && !this.readStillOurs(headNow)) return 'truncated'
    return size > this.#offset ? 'grown' : 'idle'
  }

  /** True when `headNow` (the file's first bytes now) agrees with what we saw before. */
  headMatches(headNow: Buffer): boolean {
    return headsAgree(this.#head, headNow)
  }

  /**
   * After a read at our offset, with `headNow` the file's first bytes read after it: true when
   * the bytes read can be this content's. A truncation between the look that decided to read
   * and the read itself (copytruncate's, while a read waited for the pool or for the sink
   * between chunks) shows here: the file now begins otherwise, or holds fewer bytes than our
   * fingerprint, which it held. Files only shrink by truncation, so a file that begins as ours
   * after the read held ours during it. Read on from our offset, the next generation's bytes
   * came out, as the end of our partial line and lines after it, and as many of ours were lost
   * (issue 16: 334 lines and a torn line with copies written in place, under load). With no
   * fingerprint there is nothing to tell by (a read at 0 learns it).
   */
  readStillOurs(headNow: Buffer): boolean {
    return headNow.length >= this.#head.length && headsAgree(this.#head, headNow)
  }

  /** Learn the file's first bytes (read separately when we did not start at offset 0). */
  setHead(head: Buffer): void {
    if (head.length > this.#head.length) {
      this.#head = Buffer.from(head.subarray(0, FINGERPRINT_BYTES))
    }
  }

  /**
   * Takes the next bytes of the file (read at `this.offset`) and returns the block of complete
   * lines they finish, or null. The bytes after the last newline are held. A line longer than
   * maxLineBytes comes out as pieces of at most maxLineBytes bytes, each ending in a newline.
   * The caller must not reuse `chunk`'s memory afterwards.
   */
  frame(chunk: Buffer): Buffer | null {
    this.#inserted = []
    if (chunk.length === 0) return null
    this.#learnHead(chunk)
    this.#offset += chunk.length
    const lastNewline = chunk.lastIndexOf(NEWLINE)
    if (lastNewline < 0) {
      this.#hold(chunk)
      return this.#cutOverlongPending()
    }
    const complete = chunk.subarray(0, lastNewline + 1)
    const block = this.#pendingBytes === 0 ? complete : this.#takePending(complete)
    return this.#complete(block, chunk.subarray(lastNewline + 1))
  }

  /**
   * A buffer for the next read of up to `want` bytes with the held partial line already copied
   * to its start, so the block of complete lines needs no second copy (the hot path of a
   * catch-up). Read into `buf` from `start`, then call frameRead.
   */
  readBuffer(want: number, scratch?: Buffer): { buf: Buffer; start: number } {
    const start = this.#pendingBytes
    // A caller that consumes each block before the next read (the blocking shell) may lend a
    // scratch buffer to read into: no garbage per read. Held bytes are always copied out.
    const lend = scratch !== undefined && scratch.length >= start + want
    const buf = lend ? scratch.subarray(0, start + want) : Buffer.allocUnsafe(start + want)
    this.#lent = lend
    let at = 0
    for (const piece of this.#pending) at += piece.copy(buf, at)
    return { buf, start }
  }

  /** frame() for a buffer from readBuffer: `bytesRead` new bytes were read into it at `start`. */
  frameRead(buf: Buffer, start: number, bytesRead: number): Buffer | null {
    this.#inserted = []
    if (start !== this.#pendingBytes)
      throw new Error('frameRead: the buffer is not from readBuffer')
    if (bytesRead === 0) return null
    const chunk = buf.subarray(start, start + bytesRead)
    this.#learnHead(chunk)
    this.#offset += bytesRead
    const lastNewline = chunk.lastIndexOf(NEWLINE)
    if (lastNewline < 0) {
      // The whole partial line is buf's start (readBuffer put the held bytes there). Held as it
      // is when it fills most of a buffer of our own (a long line: no copy of each megabyte);
      // a copy when the buffer is lent (the next read's) or far larger than the line.
      const whole = buf.subarray(0, start + bytesRead)
      this.#pending = [!this.#lent && whole.length * 2 >= buf.length ? whole : Buffer.from(whole)]
      this.#pendingBytes = whole.length
      return this.#cutOverlongPending()
    }
    this.#pending = []
    this.#pendingBytes = 0
    return this.#complete(buf.subarray(0, start + lastNewline + 1), chunk.subarray(lastNewline + 1))
  }

  /** `block` ends a line; `rest` (after its last newline) is held. */
  #complete(block: Buffer, rest: Buffer): Buffer {
    const firstAlreadyCut = this.#cutting
    this.#cutting = false
    // Copy the remainder: holding a view would keep the whole chunk alive for a few bytes.
    if (rest.length > 0) this.#hold(Buffer.from(rest))
    const lines = this.#mayHaveOverlong(block) ? this.#splitOverlong(block, firstAlreadyCut) : block
    this.#lines += countLines(lines)
    this.#bytes += lines.length
    const before = this.#inserted.length
    const pieces = this.#cutOverlongPending()
    for (let i = before; i < this.#inserted.length; i++)
      this.#inserted[i] = (this.#inserted[i] as number) + lines.length
    return pieces === null ? lines : Buffer.concat([lines, pieces])
  }

  /**
   * Cheap test before the line-by-line scan: only the first line can be longer than the block
   * after it, so when the bytes after the first line fit in one output line, only it is checked.
   */
  #mayHaveOverlong(block: Buffer): boolean {
    if (block.length <= this.maxLineBytes) return false
    const firstEnd = block.indexOf(NEWLINE) + 1
    return firstEnd > this.maxLineBytes || block.length - firstEnd > this.maxLineBytes
  }

  /**
   * Returns the held partial line with a newline added (the file was rotated away, truncated,
   * deleted, or we are finishing a --once run), or null when nothing is held.
   */
  flush(): Buffer | null {
    this.#cutting = false
    this.#inserted = []
    if (this.#pendingBytes === 0) return null
    this.#lines++
    this.#bytes += this.#pendingBytes + 1
    this.#inserted = [this.#pendingBytes]
    return this.#takePending(NL)
  }

  /** The file was truncated: returns the flushed partial line and starts again at offset 0. */
  restart(): Buffer | null {
    const flushed = this.flush()
    this.#truncations++
    this.#offset = 0
    this.#head = Buffer.alloc(0)
    return flushed
  }

  /**
   * The file was written over with a copy of content whose first `offset` bytes were read
   * through another file (see FileTable.overwritten): returns the flushed partial line, as
   * restart() does, and goes on at `offset` of the new content, which begins with `head`.
   */
  restartAt(offset: number, head: Buffer): Buffer | null {
    const flushed = this.restart()
    this.#offset = offset
    this.#head = Buffer.from(head.subarray(0, FINGERPRINT_BYTES))
    return flushed
  }

  /** Extends the fingerprint with the bytes of `chunk` (read at this.#offset) just past it. */
  #learnHead(chunk: Buffer): void {
    const have = this.#head.length
    const at = this.#offset
    if (have >= FINGERPRINT_BYTES || at > have || at + chunk.length <= have) return
    const extra = chunk.subarray(have - at, FINGERPRINT_BYTES - at)
    this.#head = Buffer.concat([this.#head, extra])
  }

  #hold(bytes: Buffer): void {
    this.#pending.push(bytes)
    this.#pendingBytes += bytes.length
  }

  #takePending(tail: Buffer): Buffer {
    const out = Buffer.concat([...this.#pending, tail], this.#pendingBytes + tail.length)
    this.#pending = []
    this.#pendingBytes = 0
    return out
  }

  /** A partial line that already cannot fit in one output line is cut into full pieces now. */
  #cutOverlongPending(): Buffer | null {
    const room = this.maxLineBytes - 1
    if (this.#pendingBytes <= room) return null
    const held =
      this.#pending.length === 1
        ? (this.#pending[0] as Buffer)
        : Buffer.concat(this.#pending, this.#pendingBytes)
    const parts: Buffer[] = []
    let at = 0
    // Same cut points as #splitOverlong, so any chunking of the input gives the same pieces.
    while (held.length - at > room) {
      parts.push(held.subarray(at, at + room), NL)
      this.#inserted.push(at + at / room + room) // piece k (at = k * room): k * (room + 1) + room
      at += room
    }
    if (!this.#cutting) this.#linesSplit++
    this.#cutting = true
    this.#lines += parts.length / 2
    this.#bytes += (parts.length / 2) * (room + 1)
    const kept = Buffer.from(held.subarray(at))
    this.#pending = [kept]
    this.#pendingBytes = kept.length
    return Buffer.concat(parts)
  }

  /** Splits the lines of `block` that are longer than maxLineBytes. */
  #splitOverlong(block: Buffer, firstAlreadyCut: boolean): Buffer {
    const room = this.maxLineBytes - 1
    const parts: Buffer[] = []
    let start = 0
    let copiedTo = 0
    let added = 0 // newlines added so far: a byte at `at` of block is at `at + added` in the output
    while (start < block.length) {
      const end = block.indexOf(NEWLINE, start) // always found: a block ends in a newline
      if (end - start > room) {
        parts.push(block.subarray(copiedTo, start))
        let at = start
        while (end - at > room) {
          parts.push(block.subarray(at, at + room), NL)
          this.#inserted.push(at + room + added++)
          at += room
        }
        copiedTo = at
        if (start > 0 || !firstAlreadyCut) this.#linesSplit++
      }
      start = end + 1
    }
    if (copiedTo === 0) return block
    parts.push(block.subarray(copiedTo))
    return Buffer.concat(parts)
  }
}
