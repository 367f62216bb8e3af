/**
 * One input of `--once --order time` read front to back: read a chunk into a slot, frame it
 * into whole lines (LineFramer), find its records' leaders and times (findLeaders). The same
 * code runs on the main thread (small inputs) and in the reader thread (reader-thread.ts), which
 * is what lets the merge on the main thread do nothing but merge.
 */
import { readSync } from 'node:fs'
import { findLeaders, type Leaders } from '../order/source.js'
import {
  type LineFormat,
  LineTimes,
  type TimestampFormat,
  type TimestampOptions,
} from '../time/timestamps.js'
import { LineFramer } from './frame.js'

/** What a reader needs to know about its file (plain data: it crosses to the reader thread). */
export interface ReaderInit {
  readonly fd: number
  /** Where reading starts (a line start: the checkpoint's offset, 0, or the last line). */
  readonly offset: number
  /**
   * Where reading stops (a line start), as if the file ended there; default: the file's end.
   * A partitioned merge (partitioned.ts) reads each file's part of the time range this way.
   */
  readonly end?: number
  readonly maxLineBytes: number
  /** Bytes a read asks for (at most what is left of the slot after a held partial line). */
  readonly readBytes: number
  readonly format: TimestampFormat
  readonly timestamps: TimestampOptions
}

/** A read failed: the file is merged up to there (what the warning says), as plain data. */
export interface ReadFailure {
  readonly code: string | undefined
  readonly message: string
}

/** The result of one read. */
export interface ReadResult {
  /** Whole lines (a view of the slot, or a buffer of their own), or null when none. */
  readonly block: Buffer | null
  /** The file offset of block[0]. */
  readonly fileStart: number
  /** Where in `block` the framer added newlines (see Cursor.inserted). */
  readonly inserted: readonly number[]
  readonly leaders: Leaders | null
  /** The file offset read up to (for progress). */
  readonly readTo: number
  /** The file has been read to its end (or failed): nothing more will come. */
  readonly end: boolean
  readonly failure: ReadFailure | null
}

/** Reads below this much room left in a slot go to a buffer of their own. */
const MIN_READ = 16 * 1024

export class SourceReader {
  readonly #fd: number
  readonly #readBytes: number
  readonly #end: number
  readonly #framer: LineFramer
  readonly #times: LineTimes
  #offset: number
  #ended = false

  constructor(init: ReaderInit) {
    this.#fd = init.fd
    this.#readBytes = init.readBytes
    this.#offset = init.offset
    this.#end = init.end ?? Number.POSITIVE_INFINITY
    this.#framer = new LineFramer(init.maxLineBytes)
    this.#times = new LineTimes(init.format, init.timestamps)
  }

  get ended(): boolean {
    return this.#ended
  }

  /** The timestamp format in use: given, or found in the first block (null until then). */
  get format(): LineFormat | null {
    return this.#times.format
  }

  /**
   * Reads the next chunk into `slot` (the held partial line first), or at the end of the file
   * flushes the partial line with a newline and ends. Read errors end the file too (failure).
   *
   * A read that finishes no line (a line longer than a read, shorter than --max-line-bytes)
   * is followed by the next at once: every result but the last holds a block. The feeds count
   * on it: a source's blocks take its slots in turn, and a slot is read into again once the
   * merge has asked for the block two after it (feed.ts), which says the slot is free only if
   * each of those blocks brought lines. An empty result in between would leave the merge
   * holding a record in a slot that is then overwritten: corrupt output for lines longer than
   * a read, on both feeds.
   */
  next(slot: Buffer): ReadResult {
    if (this.#ended) throw new Error('SourceReader.next: the file has ended')
    const fileStart = this.#offset - this.#framer.pendingBytes
    let n: number
    let failure: ReadFailure | null = null
    let framed: ReturnType<LineFramer['frame']>
    do {
      const { buf, start, want } = this.#framer.readBuffer(slot, this.#readBytes, MIN_READ)
      try {
        const left = this.#end - this.#offset
        // Not `left <= 0`: a range after a file's end is [Infinity, Infinity) (plan.ts).
        n = left > 0 ? readSync(this.#fd, buf, start, Math.min(want, left), this.#offset) : 0
      } catch (err) {
        const e = err as NodeJS.ErrnoException
        failure = { code: e.code, message: e.message }
        n = 0
      }
      this.#offset += n
      framed = n === 0 ? this.#framer.flush() : this.#framer.frame(buf, start, n)
    } while (framed === null && n > 0)
    if (n === 0) this.#ended = true
    return {
      block: framed?.block ?? null,
      fileStart,
      inserted: framed?.inserted ?? [],
      leaders: framed === null ? null : findLeaders(framed.block, this.#times),
      readTo: this.#offset,
      end: n === 0,
      failure,
    }
  }
}
