/**
 * The event-loop writer's queue: the blocks handed to write() and not yet taken into a batch,
 * each with its source marks and its `done` callback, in three parallel lists, and a note
 * queued behind them as a block of no bytes. Apart from loop-writer.ts so that the writer reads
 * as "take a batch, write it, count it"; the byte count the readers wait on (queuedBytes) is
 * the writer's, since it includes the batch being written.
 */
import { batchLength } from './batches.js'
import type { SourceMark } from './sink.js'
import type { Marks } from './written-state.js'

/** Called once a queued block is out (see BlockSink.write). */
export type Done = (() => void) | undefined

/** Blocks taken from the queue for one writev, with their marks and dones (parallel). */
export interface Batch {
  readonly batch: Buffer[]
  readonly marks: Marks[]
  readonly dones: Done[]
}

/** The block queued with a note: no bytes (see LoopWriter.note()). */
const NOTHING = Buffer.alloc(0)

export class BlockQueue {
  #blocks: Buffer[] = []
  /** Parallel to #blocks: the source mark(s) of each block, if any. */
  #marks: Marks[] = []
  /** Parallel to #blocks: what to call once a block is out (see BlockSink.write's `done`). */
  #dones: Done[] = []

  get length(): number {
    return this.#blocks.length
  }

  push(block: Buffer, marks: Marks, done: Done): void {
    this.#blocks.push(block)
    this.#marks.push(marks)
    this.#dones.push(done)
  }

  /** A note waits its turn behind the blocks queued before it (made once they are out). */
  pushNote(mark: SourceMark): void {
    this.push(NOTHING, { note: mark }, undefined)
  }

  /** Takes the next batch from the front (batches.ts's batchLength says how many blocks). */
  take(): Batch {
    const batch = this.#blocks.splice(0, batchLength(this.#blocks))
    const marks = this.#marks.splice(0, batch.length)
    const dones = this.#dones.splice(0, batch.length)
    return { batch, marks, dones }
  }

  /** Drops every block (the output failed for good): the lent memory goes to the collector. */
  clear(): void {
    this.#blocks = []
    this.#marks = []
    this.#dones = []
  }
}
