/**
 * What the time-order merge hands out: records as objects (MergedRecord, for release/flush),
 * or runs of consecutive records from one block (RunSink, for releaseRuns/flushRuns), and the
 * two collectors that turn the merge's records into either.
 */

import type { Block } from './source.js'

/** One record to write, in output order. */
export interface MergedRecord<K> {
  readonly key: K
  /** The block the record lies in (as pushed, or a joined copy); do not modify it. */
  readonly block: Buffer
  /** The record is block[start, end): whole lines, the last ending in a newline. */
  readonly start: number
  readonly end: number
  /** ms since the epoch (fraction: microseconds); -Infinity before the source's first time. */
  readonly time: number
  /** Offset of the record's first byte, counted as the caller's push offsets. */
  readonly offset: number
  /**
   * Offset just past the record: once it is written, the source's bytes up to here are all in
   * the output (a source's records are written in order), so a checkpoint may resume here.
   */
  readonly endOffset: number
  /** Written after a record with a later time (see the class comment). */
  readonly late: boolean
  /** Lines without a timestamp whose leader was written before them, or never seen. */
  readonly continuation: boolean
}

/** Bytes and checkpoint position of a run of records (see TimeOrder.releaseRuns). */
export type RunSink<K> = (
  key: K,
  block: Buffer,
  start: number,
  end: number,
  endOffset: number,
) => void

/** Where #take hands each record. */
export interface RecordVisitor<K> {
  record(
    key: K,
    block: Block,
    start: number,
    end: number,
    endOffset: number,
    time: number,
    late: boolean,
    continuation: boolean,
  ): void
}

/** Collects records as objects (release, flush). */
export class RecordList<K> implements RecordVisitor<K> {
  readonly records: MergedRecord<K>[] = []

  record(
    key: K,
    block: Block,
    start: number,
    end: number,
    endOffset: number,
    time: number,
    late: boolean,
    continuation: boolean,
  ): void {
    const offset = block.offset + start
    this.records.push({
      key,
      block: block.buf,
      start,
      end,
      time,
      offset,
      endOffset,
      late,
      continuation,
    })
  }
}

/** Joins consecutive records from one block into runs for a RunSink (releaseRuns, flushRuns). */
export class RunJoiner<K> implements RecordVisitor<K> {
  readonly #sink: RunSink<K>
  #key: K | undefined
  #buf: Buffer | null = null
  #start = 0
  #end = 0
  #endOffset = 0
  #records = 0

  constructor(sink: RunSink<K>) {
    this.#sink = sink
  }

  record(key: K, block: Block, start: number, end: number, endOffset: number): void {
    this.#records++
    if (block.buf === this.#buf && start === this.#end) {
      this.#end = end
      this.#endOffset = endOffset
      return
    }
    this.#send()
    this.#key = key
    this.#buf = block.buf
    this.#start = start
    this.#end = end
    this.#endOffset = endOffset
  }

  /** Sends the last run; returns the records seen. */
  finish(): number {
    this.#send()
    return this.#records
  }

  #send(): void {
    if (this.#buf === null) return
    this.#sink(this.#key as K, this.#buf, this.#start, this.#end, this.#endOffset)
    this.#buf = null
  }
}
