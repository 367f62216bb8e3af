/**
 * One input of the time-order merge: its queue of pushed blocks, split into records, and what
 * the merge needs to know about it (its next record, its watermark, how much it holds).
 *
 * A record is a line with a timestamp (its leader) and the lines after it without one; it
 * moves as one piece. Records are kept as offsets into the blocks the caller pushed: nothing
 * is copied, except when a record's continuation lines arrive in a later block while the
 * record is still held (then the two pieces are joined into one small buffer).
 */

import type { LineTimes } from '../time/timestamps.js'
import { Fifo } from './fifo.js'

const NEWLINE = 0x0a

/**
 * Continuation lines that arrive in a later block than their leader are copied next to it
 * (one record, one buffer) up to this size; a longer record is written in pieces.
 */
export const JOIN_LIMIT_BYTES = 1024 * 1024

/**
 * A block of whole lines as pushed, with the records found in it. Record i (next <= i < count)
 * is buf[starts[i], starts[i + 1]), the last one ending at `limit`. Slot 0 holds continuation
 * lines (whose leader was written before, or never seen) when the block starts with some;
 * otherwise it is unused and `next` starts at 1. Typed arrays: a block holds thousands of
 * records, and growing JavaScript arrays a push at a time costs more than filling these.
 */
export interface Block {
  readonly buf: Buffer
  /** The caller's offset of buf[0] (by default the bytes pushed to the source before it). */
  readonly offset: number
  /** Added to the end offset of the block's last record (a joined record ends in another block). */
  readonly endAdjust: number
  /** When the block was pushed (the caller's clock, ms). */
  readonly arrival: number
  readonly starts: Int32Array
  readonly times: Float64Array
  /** Each record's tie-breaker when following; null with --once (the tie is the source rank). */
  readonly ties: number[] | null
  /** One past the last record. */
  count: number
  /** End of the last record (buf.length unless its last record moved into a joined block). */
  limit: number
  /** Index of the next record to emit. */
  next: number
}

/** Room for the leaders of a block: its lines are rarely shorter than this on average. */
const GUESSED_LINE_BYTES = 64

export class Source<K> {
  readonly key: K
  /** Order of opening: breaks ties between equal times in --once. */
  readonly rank: number
  readonly times: LineTimes
  /** Blocks with records not yet emitted, oldest first. */
  readonly blocks = new Fifo<Block>()
  /** Records and bytes held (pushed, not yet emitted). */
  records = 0
  bytes = 0
  /** The caller said no more data will come. */
  ended = false
  /** The greatest time pushed so far: the source has moved past every time before it. */
  watermark = Number.NEGATIVE_INFINITY
  /** Time and tie of the last leader pushed (continuation lines that come later take them). */
  lastLeaderTime = Number.NaN
  lastLeaderTie = 0
  /** Bytes pushed so far: the default offset of the next block. */
  pushedBytes = 0
  lastArrival = Number.NEGATIVE_INFINITY
  /** Records written out of time order (earlier than a record already written). */
  late = 0
  /** --once: not ended and holding no record (the merge waits for it). */
  starving = false
  /** The next record's time, tie and arrival, in fields: the heaps compare them often. */
  headTime = Number.NaN
  headTie = 0
  headArrival = Number.NaN
  /** Positions in the merge's heaps (-1: not in that heap). */
  headPosition = -1
  arrivalPosition = -1
  watermarkPosition = -1

  constructor(key: K, rank: number, times: LineTimes) {
    this.key = key
    this.rank = rank
    this.times = times
    this.lastLeaderTie = rank
  }

  /** The block holding the next record (meaningful while the source holds a record). */
  headBlock: Block | null = null

  /**
   * Splits a block of whole lines into records and queues them. `tieBase` numbers the new
   * leaders' ties when following (null with --once). `leaders`: the block's leaders when they
   * were found elsewhere (a reader thread, with a LineTimes like this source's), else found
   * here. Returns how many ties it used.
   */
  push(
    buf: Buffer,
    arrival: number,
    offset: number,
    tieBase: number | null,
    leaders: Leaders = findLeaders(buf, this.times),
  ): number {
    const { starts, times, count } = leaders
    if (leaders.maxTime > this.watermark) this.watermark = leaders.maxTime
    const headEnd = count > 1 ? (starts[1] as number) : buf.length
    let first = 1
    if (headEnd > 0 && !this.#joinToHeld(buf, headEnd, offset)) {
      // Lines without a time of their own that cannot join their record: a record of their own
      // in slot 0, with their leader's time (-Infinity before the source's first timestamp).
      starts[0] = 0
      times[0] = Number.isNaN(this.lastLeaderTime) ? Number.NEGATIVE_INFINITY : this.lastLeaderTime
      first = 0
    }
    if (count === first) return 0
    const ties = tieBase === null ? null : this.#ties(first, count, tieBase)
    if (count > 1) {
      this.lastLeaderTime = times[count - 1] as number
      this.lastLeaderTie = ties === null ? this.rank : (ties[count - 1] as number)
    }
    this.blocks.push({
      buf,
      offset,
      endAdjust: 0,
      arrival,
      starts,
      times,
      ties,
      count,
      limit: buf.length,
      next: first,
    })
    this.records += count - first
    this.bytes += buf.length - (starts[first] as number)
    return ties === null ? 0 : count - 1
  }

  /** Moves past the head record, of `bytes` bytes, in `block` (the head block). */
  advance(block: Block, bytes: number): void {
    this.advanceBy(block, 1, bytes)
  }

  /** Moves past `records` records of the head block, `bytes` bytes in all. */
  advanceBy(block: Block, records: number, bytes: number): void {
    block.next += records
    this.records -= records
    this.bytes -= bytes
    if (block.next === block.count) this.blocks.shift()
    if (this.records > 0) this.refreshHead()
  }

  /** Reloads the head fields after the next record changed (the source holds a record). */
  refreshHead(): void {
    const b = this.blocks.front as Block
    this.headBlock = b
    this.headTime = b.times[b.next] as number
    this.headTie = b.ties === null ? this.rank : (b.ties[b.next] as number)
    this.headArrival = b.arrival
  }

  /** Ties for records first..count-1: numbered from tieBase; slot 0 takes its leader's. */
  #ties(first: number, count: number, tieBase: number): number[] {
    const ties: number[] = new Array(count).fill(0)
    let next = tieBase
    for (let i = first; i < count; i++) ties[i] = i === 0 ? this.lastLeaderTie : next++
    return ties
  }

  /**
   * Lines without a timestamp at the start of a block continue the source's last record; when
   * that record is still held (and small), they are copied next to it so it stays one record.
   */
  #joinToHeld(buf: Buffer, headEnd: number, blockOffset: number): boolean {
    const tail = this.blocks.back
    if (tail === undefined || this.records === 0) return false
    const i = tail.count - 1
    const start = tail.starts[i] as number
    if (tail.limit - start + headEnd > JOIN_LIMIT_BYTES) return false
    const joined = Buffer.concat([tail.buf.subarray(start, tail.limit), buf.subarray(0, headEnd)])
    const offset = tail.offset + start
    // The joined record keeps its slot: 0 if it was continuation lines, 1 if it has a leader.
    const slot = i === 0 ? 0 : 1
    const starts = new Int32Array(2)
    const times = new Float64Array(2)
    times[slot] = tail.times[i] as number
    const ties = tail.ties === null ? null : [0, 0]
    if (ties !== null) ties[slot] = tail.ties?.[i] as number
    const replacement: Block = {
      buf: joined,
      offset,
      endAdjust: blockOffset + headEnd - (offset + joined.length),
      arrival: tail.arrival,
      starts,
      times,
      ties,
      count: slot + 1,
      limit: joined.length,
      next: slot,
    }
    tail.count--
    tail.limit = start
    if (tail.next >= tail.count) this.blocks.pop()
    this.blocks.push(replacement)
    this.bytes += headEnd
    return true
  }
}

/**
 * Where a block's leader lines (those with a timestamp) start, and their times, from slot 1
 * on (slot 0 is kept for continuation lines, see Block); `count` is one past the last.
 */
export interface Leaders {
  readonly starts: Int32Array
  readonly times: Float64Array
  readonly count: number
  /** The greatest of the times (-Infinity when none). */
  readonly maxTime: number
}

/**
 * The leaders of a block of whole lines, read by a source's LineTimes (which first learns the
 * source's format from the block when it has none yet). Pure but for `times`' own state.
 */
export function findLeaders(buf: Buffer, lineTimes: LineTimes): Leaders {
  lineTimes.learn(buf)
  const n = buf.length
  let capacity = Math.ceil(n / GUESSED_LINE_BYTES) + 2
  let starts = new Int32Array(capacity)
  let times = new Float64Array(capacity)
  let count = 1
  let maxTime = Number.NEGATIVE_INFINITY
  let p = 0
  while (p < n) {
    const nl = buf.indexOf(NEWLINE, p)
    const t = lineTimes.scan(buf, p, nl)
    if (!Number.isNaN(t)) {
      if (count === capacity) {
        capacity *= 2
        starts = grown(starts, new Int32Array(capacity))
        times = grown(times, new Float64Array(capacity))
      }
      starts[count] = p
      times[count] = t
      count++
      if (t > maxTime) maxTime = t
    }
    p = nl + 1
  }
  return { starts, times, count, maxTime }
}

/** `to` (larger) with `from` copied to its start. */
function grown<T extends Int32Array | Float64Array>(from: T, to: T): T {
  to.set(from)
  return to
}
