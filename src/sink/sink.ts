/** What every writer offers the readers: take a block of whole lines, say when to slow down. */

/** The source a block came from and the offset in it up to which its bytes are now queued. */
export interface SourceMark {
  readonly key: string
  readonly offset: number
  /**
   * The source's first bytes as its reader knows them with this block. The event-loop writer
   * records them with the offset, so a checkpoint never pairs a truncated file's new
   * fingerprint with an offset from before the truncation (which a restart would take for a
   * position in the new content).
   */
  readonly head?: Uint8Array
  /** How the source is doing, for `logmerge status` (kept with the offset, not acted on). */
  readonly stats?: SourceStats
  /**
   * Where, in the block written with this mark, the reader added newlines (pieces of a split
   * line, a flushed partial line): see Cursor.inserted. Absent when none. With it a writer
   * that cuts the block into lines (--order time) maps each line's end to a file offset.
   */
  readonly inserted?: readonly number[]
}

export interface SourceStats {
  /** Lines handed to the writer (each piece of a split line counts). */
  readonly lines: number
  /**
   * Bytes of those lines (the newlines added to split or flushed lines included); absent in
   * state files from before it was kept.
   */
  readonly bytes?: number
  /** Lines longer than --max-line-bytes, split into pieces. */
  readonly linesSplit: number
  /** Times the file was seen truncated (copytruncate, `: > file`). */
  readonly truncations: number
  /** Bytes of a partial last line held, waiting for its newline. */
  readonly pendingBytes: number
  /** When it last grew (ms since epoch). */
  readonly lastActivity: number
  /** --order time: records written after a later one (absent in arrival order). */
  readonly late?: number
}

/** How the output is doing, for metrics (every writer keeps these; cheap to read). */
export interface OutputHealth {
  /** Bytes written to the output since start (over every file it was: a reopen goes on). */
  readonly bytes: number
  /**
   * Failed writes, by WRITE_ERROR_CODES index (output-file.ts; a write retried 10 times counts
   * 10).
   */
  readonly errors: readonly number[]
  /**
   * Pauses begun: writing waited out an error (ENOSPC, EFBIG, ...), or the output was gone and
   * could not be created again (the readers wait meanwhile; nothing is lost).
   */
  readonly pauses: number
  /** Seconds spent paused, the pause under way included. */
  readonly pausedSeconds: number
  readonly paused: boolean
  /** Bytes handed to the writer and not written yet (the event-loop writer's queue). */
  readonly queuedBytes: number
}

/** A writer's consistent view for a checkpoint: output size and identity, source offsets. */
export interface Snapshot {
  readonly size: number
  readonly output: { readonly dev: number; readonly ino: number } | null
  readonly offsets: ReadonlyMap<string, number>
  /** Each source's first bytes as of its offset (event-loop writer only; see SourceMark.head). */
  readonly heads?: ReadonlyMap<string, Uint8Array>
  readonly stats: ReadonlyMap<string, SourceStats>
  /**
   * What the writer itself needs to resume exactly, saved with the offsets (a fleet publisher's
   * file generations): kept in the state file as `writer`, opaque to everyone else.
   */
  readonly writer?: unknown
  /** Called once a checkpoint holding this snapshot is saved. */
  readonly onSaved?: () => void
}

/**
 * A checkpoint as the locked writer takes it for the thread engines (LockedWriter.stateLines):
 * the output at one instant and the state file's line of each source in it.
 */
export interface StateLines {
  readonly size: number
  readonly output: Snapshot['output']
  readonly lines: readonly string[]
}

export interface BlockSink {
  /**
   * Queues `block` (whole lines, ending in a newline). Returns a promise when the writer is
   * over its high-water mark; the reader awaits it before reading more, so memory stays bounded.
   *
   * `done`, if given, is called once the writer holds nothing of `block`'s memory any more
   * (written out, or copied): the reader may then read into that memory again. A writer that
   * cannot tell never calls it, and the memory is left to the collector. Why it matters: a
   * catch-up that reads each megabyte into new memory pays the kernel's page faults on every
   * page (a 1 MiB read into a new buffer ran at 80-190 MiB/s here, into a reused one at
   * 1,000-2,900 MiB/s); see tail/read-buffers.ts.
   */
  write(block: Buffer, mark?: SourceMark, done?: () => void): Promise<void> | undefined
  /** A source starts at `mark.offset` with nothing written yet (for checkpoints). */
  note?(mark: SourceMark): void
  /** The source `key` is gone for good (finished, then not found on disk): drop its offset. */
  forget?(key: string): void
}

/** A writer the blocking shell can call: it returns once the block is taken. */
export interface SyncSink {
  write(block: Buffer, mark?: SourceMark): void
  /** A source starts at `mark.offset` with nothing written yet (for checkpoints). */
  note?(mark: SourceMark): void
  /** The source `key` is gone for good: drop its offset (see BlockSink.forget). */
  forget?(key: string): void
}
