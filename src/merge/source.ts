/**
 * One input of the time-order merge: its queue of pushed blocks, split into records, and what
 * the merge needs to know about it (its next record, its watermark, how much it holds).
 *
 * A record is a line with a timestamp (its leader) and the lines after it without one; it
 * moves as one piece. Records are kept as offsets into the blocks the caller pushed: nothing
 * is copied, except when a record's continuation lines arrive in a later block while the
 * record is still held (then the two pieces are joined into one small buffer).
 */

import { Fifo } from './fifo.js'
import type { LineTimes } from './timestamps.js'

const NEWLINE = 0x0a

/**
 * Continuation lines that arrive in a later block than their leader are copied next to it
 * (one record, one buffer) up to this size; a longer record is written in pieces.
 */
export const JOIN_LIMIT_BYTES = 1024 * 1024

/** A block of whole lines as pushed, with the records found in it. */
export interface Block {
  readonly buf: Buffer
  /** The caller's offset of buf[0] (by default the bytes pushed to the source before it). */
  readonly offset: number
  /** Added to the end offset of the block's last record (a joined record ends in another block). */
  readonly endAdjust: number
  /** When the block was pushed (the caller's clock, ms). */
  readonly arrival: number
  /** Start of each record in buf; record i ends where record i+1 starts, the last at `limit`. */
  readonly starts: number[]
  readonly times: number[]
  /** Each record's tie-breaker when following; null with --once (the tie is the source rank). */
  readonly ties: number[] | null
  /** End of the last record (buf.length unless its last record moved into a joined block). */
  limit: number
  /** Record 0 is continuation lines whose leader was written already, or came before any. */
  readonly continuationFirst: boolean
  /** Index of the next record to emit. */
  next: number
}

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
   * leaders' ties when following (null with --once). Returns how many ties it used.
   */
  push(buf: Buffer, arrival: number, offset: number, tieBase: number | null): number {
    this.times.learn(buf)
    const starts: number[] = []
    const times: number[] = []
    this.#findLeaders(buf, starts, times)
    const headEnd = starts[0] ?? buf.length
    let continuationFirst = false
    if (headEnd > 0 && !this.#joinToHeld(buf, headEnd, offset)) {
      // Lines without a time of their own that cannot join their record: a record of their own.
      starts.unshift(0)
      times.unshift(this.lastLeaderTime)
      continuationFirst = true
    }
    if (starts.length === 0) return 0
    const ties = tieBase === null ? null : this.#ties(starts.length, continuationFirst, tieBase)
    if (continuationFirst && Number.isNaN(times[0] as number)) {
      // Lines before the source's first timestamp: they go first, whenever the rules allow.
      times[0] = Number.NEGATIVE_INFINITY
    }
    if (starts.length > 1 || !continuationFirst) {
      this.lastLeaderTime = times[times.length - 1] as number
      this.lastLeaderTie = ties === null ? this.rank : (ties[ties.length - 1] as number)
    }
    this.blocks.push({
      buf,
      offset,
      endAdjust: 0,
      arrival,
      starts,
      times,
      ties,
      limit: buf.length,
      continuationFirst,
      next: 0,
    })
    this.records += starts.length
    this.bytes += buf.length - (starts[0] as number)
    return continuationFirst ? starts.length - 1 : starts.length
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
    if (block.next === block.starts.length) this.blocks.shift()
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

  /** Where the block's leader lines (those with a timestamp) start, and their times. */
  #findLeaders(buf: Buffer, starts: number[], times: number[]): void {
    const lineTimes = this.times
    const n = buf.length
    let watermark = this.watermark
    let p = 0
    while (p < n) {
      const nl = buf.indexOf(NEWLINE, p)
      const t = lineTimes.scan(buf, p, nl)
      if (!Number.isNaN(t)) {
        starts.push(p)
        times.push(t)
        if (t > watermark) watermark = t
      }
      p = nl + 1
    }
    this.watermark = watermark
  }

  /** Ties for a new block's records: numbered from tieBase; continuation lines take their leader's. */
  #ties(count: number, continuationFirst: boolean, tieBase: number): number[] {
    const ties: number[] = new Array(count)
    let next = tieBase
    for (let i = 0; i < count; i++) {
      ties[i] = i === 0 && continuationFirst ? this.lastLeaderTie : next++
    }
    return ties
  }

  /**
   * Lines without a timestamp at the start of a block continue the source's last record; when
   * that record is still held (and small), they are copied next to it so it stays one record.
   */
  #joinToHeld(buf: Buffer, headEnd: number, blockOffset: number): boolean {
    const tail = this.blocks.back
    if (tail === undefined || this.records === 0) return false
    const i = tail.starts.length - 1
    const start = tail.starts[i] as number
    if (tail.limit - start + headEnd > JOIN_LIMIT_BYTES) return false
    const joined = Buffer.concat([tail.buf.subarray(start, tail.limit), buf.subarray(0, headEnd)])
    const offset = tail.offset + start
    const replacement: Block = {
      buf: joined,
      offset,
      endAdjust: blockOffset + headEnd - (offset + joined.length),
      arrival: tail.arrival,
      starts: [0],
      times: [tail.times[i] as number],
      ties: tail.ties === null ? null : [tail.ties[i] as number],
      limit: joined.length,
      continuationFirst: i === 0 && tail.continuationFirst,
      next: 0,
    }
    tail.starts.pop()
    tail.times.pop()
    tail.ties?.pop()
    tail.limit = start
    if (tail.next >= tail.starts.length) this.blocks.pop()
    this.blocks.push(replacement)
    this.bytes += headEnd
    return true
  }
}
