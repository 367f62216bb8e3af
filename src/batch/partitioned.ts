/**
 * The partitioned `--once --order time` merge: the time range is cut into partitions
 * (plan.ts), partition threads merge them side by side (part-thread.ts), and the main
 * thread writes their outputs in partition order, each block with the checkpoint marks the
 * thread's merge gave it. The output is byte for byte the single merge's: a partition is
 * written only once its merge shows that it held no time after its bound; the first one that
 * did (a file not sorted after all), or that failed, is left with everything after it to the
 * single merge, which goes on from that partition's start (`fallback`).
 *
 * Memory: a partition's output is held until it is checked, and partitions are handed out at
 * most `threads + AHEAD` ahead of the one being written.
 */
import { availableParallelism } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { rebuildError, type SerializedError } from '../errors.js'
import type { OutputFormat } from '../format/formats.js'
import type { Logger } from '../log.js'
import type { SourceMark } from '../sink/sink.js'
import type { TimestampOptions } from '../time/timestamps.js'
import { busyCoresNow } from './busy-cores.js'
import type { OnceWriter, PartSource, PlanSource } from './merge.js'
import type { Plan } from './plan.js'

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

export interface PartitionedOptions {
  readonly plan: Plan
  readonly sources: readonly PlanSource[]
  readonly threads: PartThreads
  readonly log: Logger
  readonly stop?: AbortSignal
  /** After each partition written: input bytes done, of the total, and records written. */
  readonly onProgress?: (done: number, total: number, records: number) => void
}

export interface PartitionedResult {
  /**
   * `finished`: every partition is written. `stopped`: the stop came (what is written is whole
   * blocks with their marks). `fallback`: partitions before `at` are written; the single merge
   * is to go on from partition `at`'s start.
   */
  readonly outcome: 'finished' | 'stopped' | 'fallback'
  readonly at: number
  readonly maxWritten: number
  readonly late: number
  readonly records: number
}

const THREAD = fileURLToPath(new URL('./part-thread.js', import.meta.url))
/** Partitions handed out beyond one per thread, ahead of the one being written. */
const AHEAD = 2
/** A partition's input bytes. */
export const PART_BYTES = 8 * 1024 * 1024

/**
 * A partition's input bytes: PART_BYTES, or LOGMERGE_PART_BYTES (tests make partitions small,
 * so that small files cut into many).
 */
export function partBytesFor(env = process.env): number {
  const n = Number(env.LOGMERGE_PART_BYTES)
  return Number.isInteger(n) && n >= 1024 ? n : PART_BYTES
}
/**
 * Below this many bytes to merge, starting the threads costs about what they save: each
 * thread loads its modules and warms up its own compiled code (~0.3 s of CPU), and the plan
 * takes ~60 ms. Measured on 2 cores (docs/time-order.md), output to a file: 128 MiB 0.6 s in
 * one thread against 0.9 s in partitions; 1.4 times faster than the main-thread reader at
 * 2 GiB. The reader thread's pipeline beats partitions on 2 cores at any size: see
 * MIN_FREE_CORES.
 */
export const PARTITIONED_MIN_BYTES = 1024 * 1024 * 1024
/**
 * Partitions only with this many cores free. On 2 cores the reader thread's pipeline (a
 * reader thread and the merge, feed.ts) merges 2 GiB in 2.66-2.73 s against 3.10-3.22 s in
 * two partition threads. With three or more free cores, three or four partition threads
 * should overtake it (each merges ~330 MB/s on this machine, the pipeline ~770 MiB/s in all),
 * but no machine here has them: not measured.
 */
const MIN_FREE_CORES = 3
/** At most this many partition threads (the main thread writes). */
const MAX_THREADS = 4

/**
 * How many partition threads to merge `totalBytes` with on `cores` of which `load` are busy
 * with other work (busy-cores.ts): 0 (the single merge) unless there are enough bytes and at least
 * MIN_FREE_CORES cores left.
 */
export function partitionThreads(totalBytes: number, cores: number, load: number): number {
  if (totalBytes < PARTITIONED_MIN_BYTES) return 0
  const free = Math.floor(cores - load + 0.5)
  return free >= MIN_FREE_CORES ? Math.min(free, MAX_THREADS) : 0
}

/**
 * LOGMERGE_PARTITIONS=off (the single merge), on (two threads at least), or a number of
 * threads; unset: partitionThreads for this machine.
 */
export function partitionThreadsFor(totalBytes: number, env = process.env): number {
  const value = env.LOGMERGE_PARTITIONS
  if (value === 'off') return 0
  const cores = availableParallelism()
  if (value === 'on') return Math.max(2, Math.min(cores, MAX_THREADS))
  const n = Number(value)
  if (value !== undefined && value !== '' && Number.isInteger(n) && n >= 0) return n
  return partitionThreads(totalBytes, cores, busyCoresNow())
}

/** Merges the plan's partitions in `threads` threads and writes them, in order, to `writer`. */
export async function mergePartitioned(
  writer: OnceWriter,
  opts: PartitionedOptions,
): Promise<PartitionedResult> {
  const { plan, sources, stop } = opts
  const partitions = plan.partitions
  const total = partitions.reduce((n, p) => n + p.bytes, 0)
  const done = new Map<number, Extract<FromPartThread, { code: 'done' }> & { worker: Worker }>()
  const idle: Worker[] = []
  // In an object: set by the threads' events, which TypeScript's narrowing does not see.
  const thrown = { failure: null as Error | null }
  let wake: (() => void) | null = null
  const wakeUp = () => wake?.()
  let handed = 0
  let written = 0
  /** Set once this returns: a thread that answers then gets nothing more (close waits for it). */
  let ended = false
  const result = { maxWritten: Number.NEGATIVE_INFINITY, late: 0, records: 0 }
  let doneBytes = 0

  const partsOf = (index: number): PartSource[] => {
    const p = partitions[index]
    if (p === undefined) throw new Error(`no partition ${index}`)
    return sources.map((s, i) => ({
      fd: s.fd,
      key: s.key,
      path: s.path,
      label: s.label,
      start: p.starts[i] as number,
      end: p.ends[i] as number,
      format: plan.formats[i] ?? 'auto',
      mtimeMs: s.mtimeMs,
    }))
  }
  const handOut = () => {
    while (
      !ended &&
      idle.length > 0 &&
      handed < partitions.length &&
      handed - written < opts.threads.workers.length + AHEAD
    ) {
      const worker = idle.pop() as Worker
      const msg: ToPartThread = {
        code: 'part',
        index: handed,
        parts: partsOf(handed),
        bytes: (partitions[handed] as Plan['partitions'][number]).bytes,
      }
      opts.threads.send(worker, msg)
      handed++
    }
  }
  // Output buffers with the writer, given back to their thread once written (writes go in
  // order: every byte handed over before the last queuedBytes is written).
  let handedBytes = 0
  const lent: { buffer: ArrayBuffer; until: number; worker: Worker }[] = []
  const giveBack = () => {
    const writtenBytes = handedBytes - writer.queuedBytes
    while (lent.length > 0 && (lent[0] as (typeof lent)[number]).until <= writtenBytes) {
      const { buffer, worker } = lent.shift() as (typeof lent)[number]
      const msg: ToPartThread = { code: 'buffer', buffer }
      opts.threads.send(worker, msg, [buffer])
    }
  }
  for (const worker of opts.threads.workers) {
    worker.on('message', (msg: FromPartThread) => {
      if (msg.code === 'done') done.set(msg.index, { ...msg, worker })
      else thrown.failure ??= rebuildError(msg.error)
      idle.push(worker)
      handOut()
      wakeUp()
    })
    worker.on('error', (err) => {
      thrown.failure ??= err
      wakeUp()
    })
    worker.on('exit', (code) => {
      if (code !== 0) thrown.failure ??= new Error(`a partition thread exited with code ${code}`)
      wakeUp()
    })
    idle.push(worker)
  }
  stop?.addEventListener('abort', wakeUp)
  const end = (outcome: PartitionedResult['outcome']): PartitionedResult => ({
    outcome,
    at: written,
    ...result,
  })
  try {
    handOut()
    while (written < partitions.length) {
      if (stop?.aborted) return end('stopped')
      const part = done.get(written)
      if (part === undefined) {
        if (thrown.failure) {
          opts.log.warn(
            `a partition thread failed (${thrown.failure.message}); merging the rest in one thread`,
          )
          return end('fallback')
        }
        await new Promise<void>((resolve) => {
          wake = resolve
        })
        wake = null
        continue
      }
      done.delete(written)
      const bound = (partitions[written] as Plan['partitions'][number]).bound
      if (part.failed || part.maxWritten > bound) {
        opts.log.debug(
          `--once --order time: partition ${written} ${part.failed ? 'could not be read' : 'holds times after its bound (a file is not sorted)'}; the single merge goes on from there`,
        )
        return end('fallback')
      }
      let from = 0
      for (let i = 0; i < part.ends.length; i++) {
        if (stop?.aborted) return end('stopped')
        const to = part.ends[i] as number
        const wait = writer.write(Buffer.from(part.buffer, from, to - from), part.marks[i] ?? [])
        handedBytes += to - from
        from = to
        if (wait) await wait
      }
      lent.push({ buffer: part.buffer, until: handedBytes, worker: part.worker })
      giveBack()
      if (part.maxWritten > result.maxWritten) result.maxWritten = part.maxWritten
      result.late += part.late
      result.records += part.records
      doneBytes += (partitions[written] as Plan['partitions'][number]).bytes
      written++
      handOut()
      opts.onProgress?.(doneBytes, total, result.records)
    }
    return end('finished')
  } finally {
    ended = true
    stop?.removeEventListener('abort', wakeUp)
    await opts.threads.close()
  }
}

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
