/**
 * Time order: merges the records of many sources by their timestamps, for files at rest
 * (`--once`: a stable k-way merge) and for files that are still growing (following: a bounded
 * reorder window). Pure logic: the caller reads, pushes blocks with the time they arrived,
 * asks what may be written now, writes it, and sets a timer for the next deadline.
 *
 * Records. A record is a line with a timestamp and the lines after it without one (a stack
 * trace, a wrapped message); it moves as one piece. Lines before a source's first timestamp
 * have no time of their own: they get -Infinity and are written as soon as the rules allow,
 * ahead of anything timed, never counted late. Continuation lines that arrive after their
 * record was written (following only) take that record's time and are written next.
 *
 * Order. Records of one source are always written in the source's order, even if its own
 * timestamps go backwards (each source is a queue; only queue heads are compared). Equal times
 * keep arrival order when following, and the order in which sources were opened with --once
 * (what `sort -m -s` does with its files), so a --once merge does not depend on read timing.
 *
 * --once (windowMs = Infinity): the smallest head is written whenever every source that has
 * not ended holds a record, and that record is complete (the next leader or the end of its
 * source has arrived; or its source is full, and then it may be written in pieces). Ended
 * sources are dropped once empty. O(log k) per record for k sources.
 *
 * Following (finite windowMs): a record may be written once every source that has not ended
 * has moved past its time (a source's watermark is the greatest time it has pushed), or once
 * it has been held windowMs since it arrived; a quiet source therefore holds the others back
 * for at most the window. A record earlier than one already written is still written, never
 * dropped, and counted late.
 *
 * Out: release()/flush() give an object per record (what json and prefix output need);
 * releaseRuns()/flushRuns() give runs of consecutive records from one block (raw output, and
 * the --once hot loop, which moves the heap once a run). Every record and run says where its
 * source's bytes end (endOffset), for checkpoints. docs/time-order.md has the whole picture.
 */

import {
  type LineFormat,
  LineTimes,
  type TimestampFormat,
  type TimestampOptions,
} from '../time/timestamps.js'
import {
  type MergedRecord,
  RecordList,
  type RecordVisitor,
  RunJoiner,
  type RunSink,
} from './emit.js'
import { IndexedHeap } from './heap.js'
import { type Block, type Leaders, Source } from './source.js'

const NEWLINE = 0x0a

export const DEFAULT_WINDOW_MS = 1000
export const DEFAULT_MAX_BUFFERED_BYTES = 8 * 1024 * 1024
export type { MergedRecord, RunSink } from './emit.js'
export { findLeaders, JOIN_LIMIT_BYTES, type Leaders } from './source.js'

export interface TimeOrderOptions {
  /** The reorder window in ms (--reorder-window); Infinity for --once. Default 1000. */
  readonly windowMs?: number
  /**
   * A source holding at least this many bytes is full: the caller should stop reading it
   * until it drains, and its last record may be written before it is complete (so a full
   * source never blocks the merge). Default 8 MiB.
   */
  readonly maxBufferedBytes?: number
  /** Zone and reference time for the parsers of every source (see TimestampOptions). */
  readonly timestamps?: TimestampOptions
}

export interface SourceOptions {
  /** The source's timestamp format (--timestamp-format); default 'auto' (detected). */
  readonly format?: TimestampFormat
  /** Overrides the merge's TimestampOptions for this source (e.g. its mtime as reference). */
  readonly timestamps?: TimestampOptions
}

export class TimeOrder<K> {
  readonly windowMs: number
  readonly maxBufferedBytes: number
  readonly #once: boolean
  readonly #timestamps: TimestampOptions
  readonly #sources = new Map<K, Source<K>>()
  /** Sources holding records, by their next record: (time, tie). */
  readonly #byHead: IndexedHeap<Source<K>>
  /** Following: sources holding records, by when their oldest held record arrived. */
  readonly #byArrival: IndexedHeap<Source<K>>
  /** Following: sources not ended, by watermark. */
  readonly #byWatermark: IndexedHeap<Source<K>>
  #nextRank = 0
  #nextSeq = 0
  /** --once: sources that have not ended and hold no record (the merge must wait for them). */
  #starving = 0
  #maxWritten = Number.NEGATIVE_INFINITY
  #late = 0
  #written = 0
  #bufferedBytes = 0

  constructor(options: TimeOrderOptions = {}) {
    const windowMs = options.windowMs ?? DEFAULT_WINDOW_MS
    if (!(windowMs >= 0)) throw new RangeError(`windowMs must be >= 0, got ${windowMs}`)
    const maxBuffered = options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES
    if (!Number.isInteger(maxBuffered) || maxBuffered < 1) {
      throw new RangeError(`maxBufferedBytes must be an integer >= 1, got ${maxBuffered}`)
    }
    this.windowMs = windowMs
    this.maxBufferedBytes = maxBuffered
    this.#once = windowMs === Number.POSITIVE_INFINITY
    this.#timestamps = options.timestamps ?? {}
    this.#byHead = new IndexedHeap<Source<K>>(headBefore, {
      get: (s) => s.headPosition,
      set: (s, i) => {
        s.headPosition = i
      },
    })
    this.#byArrival = new IndexedHeap<Source<K>>(
      (a, b) =>
        a.headArrival < b.headArrival || (a.headArrival === b.headArrival && a.rank < b.rank),
      {
        get: (s) => s.arrivalPosition,
        set: (s, i) => {
          s.arrivalPosition = i
        },
      },
    )
    this.#byWatermark = new IndexedHeap<Source<K>>(
      (a, b) => a.watermark < b.watermark || (a.watermark === b.watermark && a.rank < b.rank),
      {
        get: (s) => s.watermarkPosition,
        set: (s, i) => {
          s.watermarkPosition = i
        },
      },
    )
  }

  /** --once mode (an infinite window). */
  get once(): boolean {
    return this.#once
  }

  /** Starts a source. Its key must not be in use (an ended source's key is free once drained). */
  open(key: K, options: SourceOptions = {}): void {
    if (this.#sources.has(key)) throw new Error(`time order: source ${String(key)} is already open`)
    const times = new LineTimes(options.format ?? 'auto', options.timestamps ?? this.#timestamps)
    const source = new Source(key, this.#nextRank++, times)
    this.#sources.set(key, source)
    if (!this.#once) this.#byWatermark.push(source)
    this.#refreshStarving(source)
  }

  /** True while the key is open, or ended with records still held. */
  has(key: K): boolean {
    return this.#sources.has(key)
  }

  /**
   * Adds a block of whole lines (it must end in a newline) that the source read, in the
   * source's order. `now` is the arrival time on the caller's clock (ms; only differences
   * matter; it is ignored with --once). `offset` is where the block starts in the caller's
   * terms (default: the bytes pushed to this source before it); emitted records report their
   * offsets in the same terms. The block must not be modified afterwards.
   *
   * `leaders`: the block's leaders and times when a reader thread found them already
   * (findLeaders with a LineTimes made with this source's format and options); the source's own
   * LineTimes then learns nothing, so format(key) stays null.
   */
  push(key: K, block: Buffer, now: number, offset?: number, leaders?: Leaders): void {
    const source = this.#source(key, 'push to')
    if (source.ended) throw new Error(`time order: source ${String(key)} has ended`)
    if (block.length === 0) return
    if (block[block.length - 1] !== NEWLINE) {
      throw new RangeError(`time order: a block for ${String(key)} must end in a newline`)
    }
    const arrival = Math.max(now, source.lastArrival)
    source.lastArrival = arrival
    const blockOffset = offset ?? source.pushedBytes
    source.pushedBytes += block.length
    const bytesBefore = source.bytes
    this.#nextSeq += source.push(
      block,
      arrival,
      blockOffset,
      this.#once ? null : this.#nextSeq,
      leaders,
    )
    this.#bufferedBytes += source.bytes - bytesBefore
    this.#placeInHeaps(source)
    if (!this.#once) this.#byWatermark.update(source)
  }

  /** The source will push nothing more: its held records are merged, then it is forgotten. */
  end(key: K): void {
    const source = this.#source(key, 'end')
    if (source.ended) return
    source.ended = true
    this.#byWatermark.remove(source)
    this.#placeInHeaps(source)
  }

  /**
   * The records that may be written at `now` (the caller's clock, as for push), in order.
   * Call it after pushes, after end(), and when the deadline from nextDeadline() comes.
   */
  release(now: number, limitBytes = Number.POSITIVE_INFINITY): MergedRecord<K>[] {
    const out = new RecordList<K>()
    this.#drain(now, false, out, limitBytes)
    return out.records
  }

  /**
   * Like release(), but hands `sink` runs of consecutive records from one block (contiguous
   * bytes) instead of an object per record: the fast path for raw output. Returns how many
   * records were written.
   *
   * `limitBytes` (all four): stop once at least this many bytes were handed out (the record or
   * run that reaches it included), so a caller with bounded room for output can write what it
   * has and call again; what is left stays held, in order.
   */
  releaseRuns(now: number, sink: RunSink<K>, limitBytes = Number.POSITIVE_INFINITY): number {
    if (this.#once) return this.#drainOnceRuns(false, sink, limitBytes)
    const runs = new RunJoiner(sink)
    this.#drain(now, false, runs, limitBytes)
    return runs.finish()
  }

  /** Everything held, in order, whatever the rules (shutdown; the end of a --once run). */
  flush(limitBytes = Number.POSITIVE_INFINITY): MergedRecord<K>[] {
    const out = new RecordList<K>()
    this.#drain(0, true, out, limitBytes)
    return out.records
  }

  /** flush() as runs (see releaseRuns). */
  flushRuns(sink: RunSink<K>, limitBytes = Number.POSITIVE_INFINITY): number {
    if (this.#once) return this.#drainOnceRuns(true, sink, limitBytes)
    const runs = new RunJoiner(sink)
    this.#drain(0, true, runs, limitBytes)
    return runs.finish()
  }

  /**
   * When the oldest held record's window runs out (the caller's clock, ms): call release()
   * then. null when nothing is held, and always with --once.
   */
  nextDeadline(): number | null {
    const oldest = this.#byArrival.peek()
    return oldest === undefined ? null : oldest.headArrival + this.windowMs
  }

  /** Bytes the source holds (pushed, not yet released); 0 for an unknown key. */
  bufferedBytes(key: K): number {
    return this.#sources.get(key)?.bytes ?? 0
  }

  /** True when the caller should stop reading the source until it drains (see options). */
  isFull(key: K): boolean {
    return this.bufferedBytes(key) >= this.maxBufferedBytes
  }

  /**
   * True when the source has not ended and holds no complete record: with --once the merge
   * may be waiting for it, so a reader should read it next (a complete record is one whose
   * next leader has arrived; a full source's last record counts as complete).
   */
  needsMore(key: K): boolean {
    const source = this.#sources.get(key)
    return source !== undefined && !source.ended && !this.#complete(source)
  }

  /** Records of the source written out of time order so far; 0 for an unknown key. */
  lateCount(key: K): number {
    return this.#sources.get(key)?.late ?? 0
  }

  /** The source's timestamp format, or null while `auto` has not found one. */
  format(key: K): LineFormat | null {
    return this.#sources.get(key)?.times.format ?? null
  }

  /** Totals: records written, of those late, and bytes held by all sources. */
  get stats(): { written: number; late: number; bufferedBytes: number } {
    return { written: this.#written, late: this.#late, bufferedBytes: this.#bufferedBytes }
  }

  /** The latest time written so far (-Infinity before any): a partitioned merge checks it. */
  get maxWritten(): number {
    return this.#maxWritten
  }

  /**
   * Goes on from a merge that already wrote records up to `time` elsewhere (a partitioned
   * merge falling back to this one): records before it count as late, as they would have.
   */
  writtenUpTo(time: number): void {
    if (time > this.#maxWritten) this.#maxWritten = time
  }

  #source(key: K, what: string): Source<K> {
    const source = this.#sources.get(key)
    if (source === undefined) {
      throw new Error(`time order: cannot ${what} source ${String(key)}: it is not open`)
    }
    return source
  }

  /** Writes records to `visit` while the rules (or `force`) allow, up to about `limitBytes`. */
  #drain(now: number, force: boolean, visit: RecordVisitor<K>, limitBytes: number): void {
    const stopAt = this.#bufferedBytes - limitBytes
    for (;;) {
      const top = this.#byHead.peek()
      if (top === undefined) return
      if (!force && !this.#mayWrite(top, now)) return
      this.#take(top, visit)
      if (this.#bufferedBytes <= stopAt) return
    }
  }

  /**
   * --once, as runs: the same merge as #drain, written for speed because it is the hot loop of
   * a catch-up. It takes from the top source every record of its head block that still comes
   * before the next-best source's head (and is complete), then hands the run to `sink` and
   * moves the heap once, instead of once a record.
   */
  #drainOnceRuns(force: boolean, sink: RunSink<K>, limitBytes: number): number {
    const heap = this.#byHead
    let taken = 0
    let left = limitBytes
    while (left > 0) {
      const top = heap.peek()
      if (top === undefined) break
      if (!force && (this.#starving !== 0 || !this.#complete(top))) break
      const block = top.headBlock as Block
      const starts = block.starts
      const times = block.times
      const count = block.count
      const next = heap.secondBest()
      const nextTime = next === undefined ? Number.POSITIVE_INFINITY : next.headTime
      const nextTie = next === undefined ? 0 : next.headTie
      const tie = top.headTie
      const first = block.next
      let i = first
      let records = top.records
      let maxWritten = this.#maxWritten
      let late = 0
      // The first record is the heap's smallest; the ones after it must still be.
      for (;;) {
        const time = times[i] as number
        if (i !== 0) {
          if (time < maxWritten) late++
          else maxWritten = time
        }
        i++
        records--
        if (i === count) break
        const t = times[i] as number
        if (t > nextTime || (t === nextTime && tie > nextTie)) break
        const bytesLeft = top.bytes - ((starts[i] as number) - (starts[first] as number))
        if (!force && records < 2 && !top.ended && bytesLeft < this.maxBufferedBytes) break
      }
      const start = starts[first] as number
      const isLast = i === count
      const end = isLast ? block.limit : (starts[i] as number)
      const endOffset = block.offset + end + (isLast ? block.endAdjust : 0)
      this.#maxWritten = maxWritten
      if (late > 0) {
        top.late += late
        this.#late += late
      }
      taken += i - first
      this.#written += i - first
      this.#bufferedBytes -= end - start
      top.advanceBy(block, i - first, end - start)
      sink(top.key, block.buf, start, end, endOffset)
      left -= end - start
      if (top.records > 0) heap.topChanged()
      else this.#placeInHeaps(top)
    }
    return taken
  }

  /** May the smallest held record (the head of `top`) be written at `now`? */
  #mayWrite(top: Source<K>, now: number): boolean {
    if (this.#once) return this.#starving === 0 && this.#complete(top)
    const oldest = this.#byArrival.peek() as Source<K>
    if (oldest.headArrival + this.windowMs <= now) return true
    return top.headTime <= this.#minWatermark()
  }

  /** Hands the source's next record to `visit` and moves the source along. */
  #take(source: Source<K>, visit: RecordVisitor<K>): void {
    const block = source.headBlock as Block
    const i = block.next
    const start = block.starts[i] as number
    const isLast = i + 1 === block.count
    const end = isLast ? block.limit : (block.starts[i + 1] as number)
    const time = block.times[i] as number
    const continuation = i === 0
    let late = false
    if (!continuation) {
      if (time < this.#maxWritten) {
        late = true
        source.late++
        this.#late++
      } else this.#maxWritten = time
    }
    const endOffset = block.offset + end + (isLast ? block.endAdjust : 0)
    visit.record(source.key, block, start, end, endOffset, time, late, continuation)
    this.#written++
    this.#bufferedBytes -= end - start
    source.advance(block, end - start)
    if (source.records > 0) {
      // The source was the heap's top and its key only grew: a sift down from the top.
      this.#byHead.topChanged()
      if (isLast && !this.#once) this.#byArrival.update(source)
    } else {
      this.#placeInHeaps(source)
    }
  }

  /**
   * Puts the source where it belongs in the heaps after a push or end (and forgets it when it
   * has ended and holds nothing).
   */
  #placeInHeaps(source: Source<K>): void {
    if (source.records > 0) {
      source.refreshHead()
      if (this.#byHead.has(source)) this.#byHead.update(source)
      else this.#byHead.push(source)
      if (!this.#once) {
        if (this.#byArrival.has(source)) this.#byArrival.update(source)
        else this.#byArrival.push(source)
      }
    } else {
      this.#byHead.remove(source)
      this.#byArrival.remove(source)
    }
    this.#refreshStarving(source)
    if (source.ended && source.records === 0) this.#sources.delete(source.key)
  }

  /**
   * --once: a source starves the merge while it has not ended and holds no record: its next
   * record could be the smallest.
   */
  #refreshStarving(source: Source<K>): void {
    if (!this.#once) return
    const starving = !source.ended && source.records === 0
    if (starving !== source.starving) {
      source.starving = starving
      this.#starving += starving ? 1 : -1
    }
  }

  /**
   * --once: may the source's next record be written? Its time is known, but while it is the
   * last record held, more of its continuation lines may still come, unless the source has
   * ended or is full (then it is written in pieces rather than stalling the merge).
   */
  #complete(source: Source<K>): boolean {
    return source.records >= 2 || source.ended || source.bytes >= this.maxBufferedBytes
  }

  #minWatermark(): number {
    return this.#byWatermark.peek()?.watermark ?? Number.POSITIVE_INFINITY
  }
}

/** The merge order: earlier time first; equal times by tie (arrival, or source order). */
function headBefore<K>(a: Source<K>, b: Source<K>): boolean {
  const ta = a.headTime
  const tb = b.headTime
  return ta < tb || (ta === tb && a.headTie < b.headTie)
}
