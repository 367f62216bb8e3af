/**
 * The main thread's side of the partition threads (part-thread.ts) of a partitioned
 * `--once --order time` merge (partitioned.ts): the messages between them, and the pool that
 * starts the threads, hands them work and stops them. Apart from the writing of partitions in
 * order because stopping a thread safely is a rule of its own (see PartThreads).
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import type { SerializedError } from '../errors.js'
import type { OutputFormat } from '../format/formats.js'
import type { SourceMark } from '../sink/sink.js'
import type { TimestampOptions } from '../time/timestamps.js'
import type { PartSource } from './merge.js'

const THREAD = fileURLToPath(new URL('./part-thread.js', import.meta.url))

/** A partition thread's setup (workerData). */
export interface PartThreadInit {
  /** Int32: [0] is set when the merges in progress are to stop (PartThreads.close). */
  readonly control?: SharedArrayBuffer
  readonly format: OutputFormat
  readonly maxLineBytes: number
  readonly readChunkBytes: number
  readonly zone?: TimestampOptions['zone']
}

export type ToPartThread =
  | {
      readonly code: 'part'
      readonly index: number
      readonly parts: readonly PartSource[]
      /** The partition's input bytes (the output buffer's first size). */
      readonly bytes: number
    }
  /** An output buffer written: the thread uses it again. */
  | { readonly code: 'buffer'; readonly buffer: ArrayBuffer }

export type FromPartThread =
  | {
      readonly code: 'done'
      readonly index: number
      /** The output: blocks ending at `ends` in `buffer`, each with its marks. */
      readonly buffer: ArrayBuffer
      readonly ends: readonly number[]
      readonly marks: readonly (readonly SourceMark[])[]
      /** The latest time the partition's merge wrote: at most its bound, or it is not used. */
      readonly maxWritten: number
      readonly late: number
      readonly records: number
      /** A read failed: the single merge reads the partition again and reports it. */
      readonly failed: boolean
    }
  | { readonly code: 'failed'; readonly error: SerializedError }

/**
 * The partition threads.
 *
 * Closing stops them in two steps. `worker.terminate()` on a thread in the middle of a merge
 * crashed the process once in a test run (Node 20 aborts in NodePlatform::ForIsolate: a
 * background compile of the thread's hot code asked for its isolate while it was being torn
 * down). So a thread at work is first told to stop (a shared flag its merge looks at between
 * rounds, milliseconds apart) and waited for; only an idle thread is terminated, after a short
 * pause for compiles still running.
 */
export class PartThreads {
  readonly workers: readonly Worker[]
  /** Int32: [0] set to 1 to stop the merges in progress (part-thread.ts). */
  readonly #control: Int32Array
  /** Workers with a partition not answered yet, and how to learn when they answer. */
  readonly #busy = new Map<Worker, Promise<void>>()
  readonly #answered = new Map<Worker, () => void>()

  constructor(count: number, init: PartThreadInit) {
    const control = new SharedArrayBuffer(4)
    this.#control = new Int32Array(control)
    this.workers = Array.from({ length: count }, () => {
      const worker = new Worker(THREAD, { workerData: { ...init, control } })
      const settle = () => {
        this.#busy.delete(worker)
        this.#answered.get(worker)?.()
        this.#answered.delete(worker)
      }
      worker.on('message', settle)
      worker.on('exit', settle)
      return worker
    })
  }

  /** Hands `worker` a partition (it answers with one message). */
  send(worker: Worker, msg: ToPartThread, transfer?: ArrayBuffer[]): void {
    if (msg.code === 'part') {
      this.#busy.set(worker, new Promise<void>((resolve) => this.#answered.set(worker, resolve)))
    }
    worker.postMessage(msg, transfer)
  }

  async close(): Promise<void> {
    Atomics.store(this.#control, 0, 1)
    const busy = [...this.#busy.values()]
    if (busy.length > 0) {
      await Promise.race([Promise.all(busy), sleep(CLOSE_WAIT_MS)])
    }
    await sleep(COMPILE_GRACE_MS)
    await Promise.all(this.workers.map((w) => w.terminate()))
  }
}

/** How long close() waits for threads to stop their merges before terminating them anyway. */
const CLOSE_WAIT_MS = 2000
/** The pause before terminating idle threads (background compiles still running). */
const COMPILE_GRACE_MS = 20
