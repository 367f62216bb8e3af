/** What every writer offers the readers: take a block of whole lines, say when to slow down. */

/** The source a block came from and the offset in it up to which its bytes are now queued. */
export interface SourceMark {
  readonly key: string
  readonly offset: number
}

export interface BlockSink {
  /**
   * Queues `block` (whole lines, ending in a newline). Returns a promise when the writer is
   * over its high-water mark; the reader awaits it before reading more, so memory stays bounded.
   */
  write(block: Buffer, mark?: SourceMark): Promise<void> | undefined
  /** A source starts at `mark.offset` with nothing written yet (for checkpoints). */
  note?(mark: SourceMark): void
}
