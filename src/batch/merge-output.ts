/**
 * The output side of the `--once --order time` merge (merge.ts): what the merge releases is
 * copied into output areas of the arena, a full area goes to the writer as it is, with the
 * checkpoint marks of the sources in it, and the merge waits for the writer only when fewer
 * than two areas are free. Apart from the merge's rounds (which source to read next) because
 * this is where exactly-once is kept: each write carries the file offset just past the last
 * record of every source in it, so a checkpoint of a long --once that is killed resumes
 * exactly once.
 *
 * It makes the arena, read slots included (the feed reads into them), because the arena
 * hands its full areas to this side's writer.
 *
 * Raw output is copied run by run (TimeOrder.releaseRuns: one memory.copy each, the hot path);
 * the other formats record by record (formatRecord).
 */
import { formatRecord, type OutputFormat } from '../format/formats.js'
import type { TimeOrder } from '../order/time-order.js'
import type { SourceMark } from '../sink/sink.js'
import type { CopyArena } from './arena.js'
import { type ArenaLayout, layOutArena } from './arena-layout.js'
import type { ArenaMemory } from './arena-memory.js'
import type { OnceSource } from './once-source.js'

/** The writer the merge writes to (LoopWriter). */
export interface OnceWriter {
  /** Queues `block`, which the writer may hold until written (see queuedBytes). */
  write(block: Buffer, marks?: readonly SourceMark[]): Promise<void> | undefined
  note(mark: SourceMark): void
  /** Bytes queued and not yet written: the newest ones handed over, as writes go in order. */
  readonly queuedBytes: number
  /** Resolves once everything queued so far is written. */
  drain(): Promise<void>
  /** Resolves once at most `bytes` are queued (the writer writes a long queue a part at a time). */
  drainTo(bytes: number): Promise<void>
}

export class MergeOutput {
  readonly arena: CopyArena
  readonly #sources: readonly OnceSource[]
  readonly #order: TimeOrder<number>
  readonly #writer: OnceWriter
  readonly #format: OutputFormat
  readonly #outAreas: number
  /** The writer's promise for the last area handed over, until awaited. */
  #pending: Promise<void> | undefined
  /** Input bytes released in the current step (runSink adds to it). */
  #released = 0
  /** Where TimeOrder.releaseRuns puts each run (raw output): made once, called per run. */
  readonly #runSink: (
    key: number,
    block: Buffer,
    start: number,
    end: number,
    endOffset: number,
  ) => void

  constructor(
    sources: readonly OnceSource[],
    order: TimeOrder<number>,
    writer: OnceWriter,
    format: OutputFormat,
    layout: ArenaLayout,
    memory: ArenaMemory | null | undefined,
  ) {
    this.#sources = sources
    this.#order = order
    this.#writer = writer
    this.#format = format
    this.#outAreas = layout.outAreas
    // The writer keeps each output area until it is written (no copy): see #makeRoom.
    const arena = layOutArena(
      layout,
      (bytes) => {
        this.#pending = writer.write(bytes, this.#marks()) ?? this.#pending
      },
      memory,
    )
    this.arena = arena
    this.#runSink = (key, block, start, end, endOffset) => {
      const source = sources[key] as OnceSource
      if (block !== source.block) {
        source.block = block
        source.base = arena.baseOf(block)
      }
      arena.append(block, start, end, source.base)
      this.#released += end - start
      // Mapped to a file offset only when the output area is written (#marks): once an area.
      source.written = endOffset
      source.touched = true
    }
  }

  /**
   * Releases what the merge allows (everything held with `force`), a few areas at a time:
   * each step takes no more than the free output areas hold, then waits for room.
   */
  async release(force: boolean): Promise<void> {
    const arena = this.arena
    for (;;) {
      await this.#makeRoom()
      // Room for one more run past the limit (most are far shorter than an area); at least
      // one run a step, so that the merge always moves on.
      const limit = Math.max(1, arena.freeBytes - arena.outBytes)
      this.#released = 0
      if (this.#format === 'raw') {
        if (force) this.#order.flushRuns(this.#runSink, limit)
        else this.#order.releaseRuns(0, this.#runSink, limit)
      } else {
        const records = force ? this.#order.flush(limit) : this.#order.release(0, limit)
        this.#released = this.#writeRecords(records)
      }
      if (this.#pending) {
        await this.#pending
        this.#pending = undefined
      }
      if (this.#released < limit) return
    }
  }

  /** Hands the area being filled to the writer and waits for its write. */
  async finish(): Promise<void> {
    this.arena.flush()
    if (this.#pending) await this.#pending
  }

  /**
   * Frees the output areas the writer is done with (writes go in order, so every byte handed
   * over before the last `queuedBytes` is written); while fewer than two are free, waits until
   * the writer holds no more than half of them (it frees them a batch at a time). A step of the
   * merge then fills at most the free ones (no spill).
   */
  async #makeRoom(): Promise<void> {
    const arena = this.arena
    const writer = this.#writer
    const areas = this.#outAreas
    arena.written(arena.handedBytes - writer.queuedBytes)
    if (arena.freeBytes >= 2 * arena.outBytes) return
    const held = Math.max(0, Math.min(Math.floor(areas / 2), areas - 2))
    await writer.drainTo(held * arena.outBytes)
    arena.written(arena.handedBytes - writer.queuedBytes)
  }

  /** Formats and appends records (prefix, json); returns their bytes as read. */
  #writeRecords(records: ReturnType<TimeOrder<number>['release']>): number {
    let taken = 0
    for (const record of records) {
      taken += record.end - record.start
      const source = this.#sources[record.key] as OnceSource
      const offset = source.offsets.toFile(record.offset)
      const bytes = formatRecord(this.#format, { ...record, offset }, source.info)
      this.arena.append(bytes, 0, bytes.length)
      source.written = record.endOffset
      source.touched = true
    }
    return taken
  }

  /** The marks of the sources written since the last write. */
  #marks(): SourceMark[] {
    const marks: SourceMark[] = []
    for (const s of this.#sources) {
      if (!s.touched) continue
      s.touched = false
      marks.push({ key: s.key, offset: s.offsets.toFile(s.written) })
    }
    return marks
  }
}
