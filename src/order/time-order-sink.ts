/**
 * --order time while following: a BlockSink in front of the event-loop writer that puts the
 * readers' blocks in time order with a bounded reorder window (TimeOrder, docs/time-order.md).
 *
 * Each block goes into the merge with its arrival time; what the window rule lets go is written
 * at once, and one timer waits for the next deadline. A source holding more than the merge's
 * limit makes its reader wait (write() returns a promise), like the writer's own high-water
 * mark. Every record written carries its source's file offset just past it, so a checkpoint
 * never counts a byte that is still held here: exactly-once survives a kill -9 in time order.
 *
 * Sources open when the follower opens a file (open), end when it lets the file go (end), and
 * the rest is flushed on shutdown (finish), before the final checkpoint.
 */
import { performance } from 'node:perf_hooks'
import { formatRecord, labelPrefix, type OutputFormat, type SourceInfo } from '../format/formats.js'
import type { Labels } from '../format/labels.js'
import type { BlockSink, SourceMark, SourceStats } from '../sink/sink.js'
import type { TimestampFormat, TimestampOptions } from '../time/timestamps.js'
import { FileOffsets } from './file-offsets.js'
import { type MergedRecord, TimeOrder } from './time-order.js'

export interface TimeSinkOptions {
  readonly windowMs: number
  readonly format: OutputFormat
  readonly labels: Labels
  readonly timestampFormat?: TimestampFormat
  readonly timestamps?: TimestampOptions
  /** Bytes a source may hold before its reader waits (default: the merge's, 8 MiB). */
  readonly maxBufferedBytes?: number
}

/** One file as the merge knows it. The merge's key changes when a file ends and comes back. */
interface TimeSource {
  readonly key: string
  readonly orderKey: string
  readonly info: SourceInfo & { readonly prefix: Buffer }
  readonly offsets: FileOffsets
  stats: SourceStats | undefined
  ended: boolean
}

interface FullWaiter {
  readonly source: TimeSource
  readonly resolve: () => void
}

/** A clock that does not jump with the wall clock: only differences matter to the window. */
const now = (): number => performance.now()

export class TimeOrderSink implements BlockSink {
  readonly #writer: BlockSink
  readonly #opts: TimeSinkOptions
  readonly #order: TimeOrder<string>
  /** File key -> its current merge source. */
  readonly #sources = new Map<string, TimeSource>()
  readonly #byOrderKey = new Map<string, TimeSource>()
  #generation = 0
  #timer: NodeJS.Timeout | null = null
  #timerAt = Number.POSITIVE_INFINITY
  /** Readers waiting for their source to drain below the limit. */
  #full: FullWaiter[] = []
  /** The writer's last "slow down" promise, passed on to readers until it resolves. */
  #writerBusy: Promise<void> | null = null
  #finished = false

  constructor(writer: BlockSink, opts: TimeSinkOptions) {
    this.#writer = writer
    this.#opts = opts
    this.#order = new TimeOrder<string>({
      windowMs: opts.windowMs,
      maxBufferedBytes: opts.maxBufferedBytes,
      timestamps: opts.timestamps,
    })
  }

  /** Records written after a later one, over every source (for the log at the end). */
  get late(): number {
    return this.#order.stats.late
  }

  /** The follower opened the file `key` at `path`: its lines join the merge. */
  open(key: string, path: string): void {
    const current = this.#sources.get(key)
    if (current && !current.ended) return
    const orderKey = `${key}#${this.#generation++}`
    const label = this.#opts.labels.labelOf(path)
    const source: TimeSource = {
      key,
      orderKey,
      info: { label, path, prefix: labelPrefix(label) },
      offsets: new FileOffsets(),
      stats: undefined,
      ended: false,
    }
    this.#order.open(orderKey, { format: this.#opts.timestampFormat })
    this.#sources.set(key, source)
    this.#byOrderKey.set(orderKey, source)
  }

  /** The follower let the file go: it no longer holds the others back. */
  end(key: string): void {
    const source = this.#sources.get(key)
    if (!source || source.ended) return
    source.ended = true
    this.#order.end(source.orderKey)
    this.#release()
  }

  write(block: Buffer, mark?: SourceMark): Promise<void> | undefined {
    if (this.#finished || mark === undefined) return this.#writer.write(block, mark)
    if (!this.#sources.get(mark.key) || this.#sources.get(mark.key)?.ended) {
      this.open(mark.key, mark.key)
    }
    const source = this.#sources.get(mark.key) as TimeSource
    const inserted = mark.inserted ?? []
    // The block's file bytes end at mark.offset; the newlines the reader added are not among them.
    const fileStart = mark.offset - (block.length - inserted.length)
    const at = source.offsets.add(block.length, fileStart, inserted)
    source.stats = mark.stats
    this.#order.push(source.orderKey, block, now(), at)
    this.#release()
    const waits: Promise<void>[] = []
    if (this.#writerBusy) waits.push(this.#writerBusy)
    if (this.#order.isFull(source.orderKey)) {
      waits.push(new Promise((resolve) => this.#full.push({ source, resolve })))
    }
    return waits.length === 0 ? undefined : Promise.all(waits).then(() => undefined)
  }

  note(mark: SourceMark): void {
    this.#writer.note?.(mark)
  }

  forget(key: string): void {
    this.#writer.forget?.(key)
  }

  /** Writes everything still held, in order (shutdown, the end of a run). No more merging after. */
  finish(): void {
    if (this.#finished) return
    this.#finished = true
    this.#clearTimer()
    this.#writeRecords(this.#order.flush())
    this.#wakeReaders()
  }

  /** Writes what the window rule allows now, and waits for the next deadline. */
  #release(): void {
    if (this.#finished) return
    this.#writeRecords(this.#order.release(now()))
    this.#wakeReaders()
    this.#schedule()
  }

  /**
   * Writes `records`, then forgets the ended sources they drained. Only after all of them: an
   * ended source is gone from the merge as soon as its last record is taken, which is before
   * the first of its records in this batch is written (a source ended with two records held
   * failed on the second: found by the fleet centre, which ends a file's source on a message).
   */
  #writeRecords(records: readonly MergedRecord<string>[]): void {
    for (const record of records) this.#writeRecord(record)
    for (const record of records) {
      const source = this.#byOrderKey.get(record.key)
      if (source?.ended && !this.#order.has(record.key)) this.#byOrderKey.delete(record.key)
    }
  }

  #writeRecord(record: MergedRecord<string>): void {
    const source = this.#byOrderKey.get(record.key) as TimeSource
    // Mapped in order: the start first, then the end (FileOffsets forgets blocks behind).
    const offset = source.offsets.toFile(record.offset)
    const bytes = formatRecord(this.#opts.format, { ...record, offset }, source.info)
    const late = this.#order.lateCount(record.key)
    const stats = source.stats ? { ...source.stats, late } : undefined
    const mark: SourceMark = {
      key: source.key,
      offset: source.offsets.toFile(record.endOffset),
      ...(stats ? { stats } : {}),
    }
    const busy = this.#writer.write(bytes, mark)
    if (busy) {
      const wait = busy.then(() => {
        if (this.#writerBusy === wait) this.#writerBusy = null
      })
      this.#writerBusy = wait
    }
  }

  #wakeReaders(): void {
    if (this.#full.length === 0) return
    const still: FullWaiter[] = []
    for (const waiter of this.#full) {
      if (!this.#finished && this.#order.isFull(waiter.source.orderKey)) still.push(waiter)
      else waiter.resolve()
    }
    this.#full = still
  }

  #schedule(): void {
    const deadline = this.#order.nextDeadline()
    if (deadline === null) {
      this.#clearTimer()
      return
    }
    if (this.#timer !== null && this.#timerAt <= deadline) return
    this.#clearTimer()
    this.#timerAt = deadline
    // +1: a timer may fire a little early by the performance clock.
    this.#timer = setTimeout(
      () => {
        this.#timer = null
        this.#timerAt = Number.POSITIVE_INFINITY
        this.#release()
      },
      Math.max(0, deadline - now()) + 1,
    )
    this.#timer.unref()
  }

  #clearTimer(): void {
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
    this.#timerAt = Number.POSITIVE_INFINITY
  }
}
