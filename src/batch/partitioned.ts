/**
 * The partitioned `--once --order time` merge: the time range is cut into partitions
 * (plan.ts), partition threads merge them side by side (part-thread.ts, started and stopped
 * by part-threads.ts), and the main thread writes their outputs in partition order, each
 * block with the checkpoint marks the thread's merge gave it. The output is byte for byte the single merge's: a partition is
 * written only once its merge shows that it held no time after its bound; the first one that
 * did (a file not sorted after all), or that failed, is left with everything after it to the
 * single merge, which goes on from that partition's start (`fallback`).
 *
 * Memory: a partition's output is held until it is checked, and partitions are handed out at
 * most `threads + AHEAD` ahead of the one being written.
 *
 * Also here: when a merge is partitioned at all, in how many threads (partitionThreadsFor),
 * and how large a partition is (partBytesFor).
 */
import { availableParallelism } from 'node:os'
import type { Worker } from 'node:worker_threads'
import { rebuildError } from '../errors.js'
import type { Logger } from '../log.js'
import { busyCoresNow } from './busy-cores.js'
import type { OnceWriter, PartSource, PlanSource } from './merge.js'
import type { FromPartThread, PartThreads, ToPartThread } from './part-threads.js'
import type { Partition, Plan } from './plan.js'

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
export function mergePartitioned(
  writer: OnceWriter,
  opts: PartitionedOptions,
): Promise<PartitionedResult> {
  return new PartitionedRun(writer, opts).run()
}

/** A partition's output as its thread sent it, and the thread (its buffer goes back there). */
type MergedPart = Extract<FromPartThread, { code: 'done' }> & { readonly worker: Worker }

/**
 * One partitioned merge: hands partitions to idle threads (handOut), keeps their outputs as
 * they come, and writes them in partition order (run). The threads' events and the writing
 * loop share its state; the loop sleeps until an event wakes it.
 */
class PartitionedRun {
  readonly #writer: OnceWriter
  readonly #opts: PartitionedOptions
  readonly #partitions: readonly Partition[]
  /** Outputs of partitions merged and not written yet, by partition. */
  readonly #done = new Map<number, MergedPart>()
  readonly #idle: Worker[] = []
  /** The first failure of a thread: the single merge goes on from the next partition to write. */
  #failure: Error | null = null
  #wake: (() => void) | null = null
  readonly #wakeUp = () => this.#wake?.()
  /** Partitions handed out, and written (the next to write is #written). */
  #handed = 0
  #written = 0
  /** Set once run returns: a thread that answers then gets nothing more (close waits for it). */
  #ended = false
  readonly #result = { maxWritten: Number.NEGATIVE_INFINITY, late: 0, records: 0 }
  #doneBytes = 0
  /**
   * Output buffers with the writer, given back to their thread once written (writes go in
   * order: every byte handed over before the last queuedBytes is written).
   */
  #handedBytes = 0
  readonly #lent: { buffer: ArrayBuffer; until: number; worker: Worker }[] = []

  constructor(writer: OnceWriter, opts: PartitionedOptions) {
    this.#writer = writer
    this.#opts = opts
    this.#partitions = opts.plan.partitions
    for (const worker of opts.threads.workers) this.#listen(worker)
  }

  async run(): Promise<PartitionedResult> {
    const { stop, log } = this.#opts
    const total = this.#partitions.reduce((n, p) => n + p.bytes, 0)
    stop?.addEventListener('abort', this.#wakeUp)
    try {
      this.#handOut()
      while (this.#written < this.#partitions.length) {
        if (stop?.aborted) return this.#end('stopped')
        const part = this.#done.get(this.#written)
        if (part === undefined) {
          if (this.#failure) {
            log.warn(
              `a partition thread failed (${this.#failure.message}); merging the rest in one thread`,
            )
            return this.#end('fallback')
          }
          await new Promise<void>((resolve) => {
            this.#wake = resolve
          })
          this.#wake = null
          continue
        }
        this.#done.delete(this.#written)
        if (!this.#usable(part)) return this.#end('fallback')
        if (!(await this.#write(part))) return this.#end('stopped')
        if (part.maxWritten > this.#result.maxWritten) this.#result.maxWritten = part.maxWritten
        this.#result.late += part.late
        this.#result.records += part.records
        this.#doneBytes += (this.#partitions[this.#written] as Partition).bytes
        this.#written++
        this.#handOut()
        this.#opts.onProgress?.(this.#doneBytes, total, this.#result.records)
      }
      return this.#end('finished')
    } finally {
      this.#ended = true
      stop?.removeEventListener('abort', this.#wakeUp)
      await this.#opts.threads.close()
    }
  }

  #end(outcome: PartitionedResult['outcome']): PartitionedResult {
    return { outcome, at: this.#written, ...this.#result }
  }

  /** Takes `worker`'s answers and failures; it starts idle. */
  #listen(worker: Worker): void {
    worker.on('message', (msg: FromPartThread) => {
      if (msg.code === 'done') this.#done.set(msg.index, { ...msg, worker })
      else this.#failure ??= rebuildError(msg.error)
      this.#idle.push(worker)
      this.#handOut()
      this.#wakeUp()
    })
    worker.on('error', (err) => {
      this.#failure ??= err
      this.#wakeUp()
    })
    worker.on('exit', (code) => {
      if (code !== 0) this.#failure ??= new Error(`a partition thread exited with code ${code}`)
      this.#wakeUp()
    })
    this.#idle.push(worker)
  }

  /** Hands the next partitions to idle threads, at most threads + AHEAD past the one to write. */
  #handOut(): void {
    const threads = this.#opts.threads
    while (
      !this.#ended &&
      this.#idle.length > 0 &&
      this.#handed < this.#partitions.length &&
      this.#handed - this.#written < threads.workers.length + AHEAD
    ) {
      const worker = this.#idle.pop() as Worker
      const msg: ToPartThread = {
        code: 'part',
        index: this.#handed,
        parts: this.#partsOf(this.#handed),
        bytes: (this.#partitions[this.#handed] as Partition).bytes,
      }
      threads.send(worker, msg)
      this.#handed++
    }
  }

  /** Partition `index` as its thread merges it: each source's range of it. */
  #partsOf(index: number): PartSource[] {
    const p = this.#partitions[index]
    if (p === undefined) throw new Error(`no partition ${index}`)
    const formats = this.#opts.plan.formats
    return this.#opts.sources.map((s, i) => ({
      fd: s.fd,
      key: s.key,
      path: s.path,
      label: s.label,
      start: p.starts[i] as number,
      end: p.ends[i] as number,
      format: formats[i] ?? 'auto',
      mtimeMs: s.mtimeMs,
    }))
  }

  /** Whether the next partition's output is the single merge's there (see the header). */
  #usable(part: MergedPart): boolean {
    const bound = (this.#partitions[this.#written] as Partition).bound
    if (!part.failed && part.maxWritten <= bound) return true
    this.#opts.log.debug(
      `--once --order time: partition ${this.#written} ${part.failed ? 'could not be read' : 'holds times after its bound (a file is not sorted)'}; the single merge goes on from there`,
    )
    return false
  }

  /** Writes a partition's blocks with their marks; false when the stop came between two. */
  async #write(part: MergedPart): Promise<boolean> {
    const stop = this.#opts.stop
    let from = 0
    for (let i = 0; i < part.ends.length; i++) {
      if (stop?.aborted) return false
      const to = part.ends[i] as number
      const wait = this.#writer.write(
        Buffer.from(part.buffer, from, to - from),
        part.marks[i] ?? [],
      )
      this.#handedBytes += to - from
      from = to
      if (wait) await wait
    }
    this.#lent.push({ buffer: part.buffer, until: this.#handedBytes, worker: part.worker })
    this.#giveBack()
    return true
  }

  /** Gives the output buffers the writer is done with back to their threads. */
  #giveBack(): void {
    const writtenBytes = this.#handedBytes - this.#writer.queuedBytes
    const lent = this.#lent
    while (lent.length > 0 && (lent[0] as (typeof lent)[number]).until <= writtenBytes) {
      const { buffer, worker } = lent.shift() as (typeof lent)[number]
      const msg: ToPartThread = { code: 'buffer', buffer }
      this.#opts.threads.send(worker, msg, [buffer])
    }
  }
}
