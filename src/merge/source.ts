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
  /** Tie-breakers for equal times (see TimeOrder: arrival order or source order). */
  readonly ties: number[]
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
  /** Positions in the merge's heaps (-1: not in that heap). */
  headPosition = -1
  arrivalPosition = -1
  watermarkPosition = -1

  /** The next record's time, tie and arrival, in fields: the heaps compare them often. */
  headTime = Number.NaN
  headTie = 0
  headArrival = Number.NaN

  constructor(key: K, rank: number, times: LineTimes) {
    this.key = key
    this.rank = rank
    this.times = times
  }

  /** The block holding the next record (the source must hold a record). */
  get headBlock(): Block {
    return this.blocks.front as Block
  }

  /** Reloads the head fields after the next record changed (the source holds a record). */
  refreshHead(): void {
    const b = this.headBlock
    this.headTime = b.times[b.next] as number
    this.headTie = b.ties[b.next] as number
    this.headArrival = b.arrival
  }
}
