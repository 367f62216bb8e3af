/**
 * What the event-loop writer has written, as a checkpoint sees it: the output's size and
 * identity, and each source's offset, fingerprint and stats. Apart from the writer so that the
 * sink/ invariant has one home: the size and the offsets move together, and only for bytes that
 * are out (the writer calls count() once a batch is written), so a snapshot never counts a byte
 * not yet written.
 */
import type { Snapshot, SourceMark, SourceStats } from './sink.js'

/** What a queued block moves when it is out: its sources' offsets, or a note waiting its turn. */
export type Marks = SourceMark | readonly SourceMark[] | { readonly note: SourceMark } | undefined

export class WrittenState {
  /** Bytes in the output file (its size at open plus what we wrote since). */
  size: number
  /** The output file's identity (null for stdout), for checkpoints. */
  identity: { dev: number; ino: number } | null = null
  readonly #written = new Map<string, number>()
  /** Each source's first bytes as of its offset in #written (see SourceMark.head). */
  readonly #heads = new Map<string, Uint8Array>()
  readonly #stats = new Map<string, SourceStats>()
  #changes = 0
  /** A source was noted for the first time (LoopWriterOptions.onNewSource). */
  readonly #onNewSource: (() => void) | undefined

  constructor(size: number, onNewSource: (() => void) | undefined) {
    this.size = size
    this.#onNewSource = onNewSource
  }

  /** Moves whenever the snapshot would differ (for skipping idle checkpoints). */
  get changes(): number {
    return this.#changes
  }

  /** Whether the source `key` has an offset. */
  has(key: string): boolean {
    return this.#written.has(key)
  }

  /** A source starts at `mark.offset` (nothing of it written yet): recorded, if unknown. */
  note(mark: SourceMark): void {
    if (this.#written.has(mark.key)) return
    this.#written.set(mark.key, mark.offset)
    if (mark.head) this.#heads.set(mark.key, mark.head)
    if (mark.stats) this.#stats.set(mark.key, mark.stats)
    this.#changes++
    this.#onNewSource?.()
  }

  /** A block is out: its marks move (a note queued behind earlier blocks is made now). */
  apply(marks: Marks): void {
    if (Array.isArray(marks)) {
      for (const m of marks) this.apply(m)
      return
    }
    if (marks && 'note' in marks) {
      this.note(marks.note)
      return
    }
    const mark = marks as SourceMark | undefined
    if (!mark) return
    this.#changes++
    this.#written.set(mark.key, mark.offset)
    if (mark.stats) this.#stats.set(mark.key, mark.stats)
    if (mark.head) this.#heads.set(mark.key, mark.head)
  }

  /** The source `key` is gone for good: it leaves the checkpoints. */
  forget(key: string): void {
    if (!this.#written.delete(key)) return
    this.#stats.delete(key)
    this.#heads.delete(key)
    this.#changes++
  }

  /** The writer switched to another file, `size` bytes long now. */
  newFile(size: number, identity: { dev: number; ino: number }): void {
    this.size = size
    this.identity = identity
    this.#changes++
  }

  /**
   * A consistent pair for a checkpoint: the output size and, for each source, the offset up to
   * which its bytes are within that size.
   */
  snapshot(): Snapshot {
    return {
      size: this.size,
      output: this.identity,
      offsets: new Map(this.#written),
      stats: new Map(this.#stats),
      heads: new Map(this.#heads),
    }
  }
}
