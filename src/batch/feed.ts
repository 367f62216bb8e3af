/**
 * Where `--once --order time` gets each input's next block from: read on the main thread when
 * it asks (InlineFeed), or found by a reader thread that reads, frames and parses ahead while
 * the main thread merges (ThreadFeed). The merge asks for a source's next block only when it
 * needs it (TimeOrder.needsMore), in each source's order.
 *
 * Slots. A source's blocks go into its arena slots in turn. When the merge asks for a source's
 * next block it holds at most one of its records, which lies in the block delivered last or in
 * a joined copy outside the arena: every earlier block's slot is free. The inline feed needs two
 * slots a source; the reader thread, which works up to DEPTH blocks ahead, DEPTH + 2.
 *
 * The reader thread reads each file into memory of its own, frames and parses it there, then
 * copies each block into the source's next slot of the arena, which is shared memory (a
 * WebAssembly memory on a SharedArrayBuffer, arena-memory.ts), and posts where it is with its
 * leaders and times. Parsing happens in the thread's own memory because Buffer.indexOf is 2.4x
 * slower on shared memory; the main thread only copies runs out of the slots, with
 * WebAssembly's memory.copy, which is as fast on shared memory. The copy into the slot costs
 * the thread ~55 ms per 512 MiB, against ~90 ms per 512 MiB on the main thread (the one that
 * sets the pace) for reading each block from the file a second time there.
 */
import { fileURLToPath } from 'node:url'
import { MessageChannel, type MessagePort, receiveMessageOnPort, Worker } from 'node:worker_threads'
import { LogmergeError, rebuildError, type SerializedError } from '../errors.js'
import type { CopyArena } from './arena.js'
import { takePrestarted } from './prestart.js'
import type { ReaderInit, ReadResult } from './source-reader.js'
import { SourceReader } from './source-reader.js'

export interface Feed {
  /** Source `i`'s next read (in its order). Call it again only once the last one was pushed. */
  next(i: number): ReadResult | Promise<ReadResult>
  /** Stops reading; resolves once no thread can touch the files or the arena any more. */
  close(): Promise<void>
}

/** Slots a source in the arena, with the inline feed: the block read last, and the other. */
export const INLINE_SLOTS = 2

/** Reads on the main thread, when asked. */
export class InlineFeed implements Feed {
  readonly #readers: SourceReader[]
  readonly #arena: CopyArena
  readonly #reads: number[]

  constructor(arena: CopyArena, readers: readonly ReaderInit[]) {
    this.#arena = arena
    this.#readers = readers.map((init) => new SourceReader(init))
    this.#reads = readers.map(() => 0)
  }

  next(i: number): ReadResult {
    const reads = this.#reads[i] as number
    this.#reads[i] = reads + 1
    const slot = this.#arena.slot(INLINE_SLOTS * i + (reads % INLINE_SLOTS))
    return (this.#readers[i] as SourceReader).next(slot)
  }

  async close(): Promise<void> {}
}

/** The reader thread's setup (workerData). */
export interface ReaderThreadInit {
  readonly readers: readonly ReaderInit[]
  /** Blocks the thread may post for a source ahead of what the merge took. */
  readonly depth: number
  /** The arena's memory: block `seq` of source `i` goes to slot `i * slotsPerSource + seq % slotsPerSource`. */
  readonly arena: SharedArrayBuffer
  readonly slotBytes: number
  readonly slotsPerSource: number
  /** Int32: [WAKE] bumped by the main thread after it took blocks, [STOP], [TAKEN + i]. */
  readonly control: SharedArrayBuffer
  readonly port: MessagePort
}

/** To a prestarted reader thread (prestart.ts), which has no workerData: its work, or to end. */
export type ToReaderThread =
  | { readonly code: 'init'; readonly init: ReaderThreadInit }
  | { readonly code: 'exit' }

export const WAKE = 0
export const STOP = 1
/** control[TAKEN + i]: how many of source i's blocks the merge has taken. */
export const TAKEN = 2

/** Reader thread -> main thread. */
export type FromReaderThread =
  | {
      readonly code: 'read'
      readonly source: number
      readonly seq: number
      /**
       * The block: `slot` when it is in its slot, `bytes` when it did not fit there (then it
       * comes with the message), `none` when the read finished no line.
       */
      readonly kind: 'slot' | 'bytes' | 'none'
      readonly length: number
      readonly bytes: Uint8Array | null
      readonly fileStart: number
      readonly inserted: readonly number[]
      readonly starts: Int32Array | null
      readonly times: Float64Array | null
      readonly count: number
      readonly maxTime: number
      readonly readTo: number
      readonly end: boolean
      readonly failure: ReadResult['failure']
    }
  | { readonly code: 'failed'; readonly error: SerializedError }

const THREAD = fileURLToPath(new URL('./reader-thread.js', import.meta.url))
/** Blocks read ahead of the merge, per source. */
const DEPTH = 3
/** Slots a source in the arena, with the reader thread (see Slots above). */
export const THREAD_SLOTS = DEPTH + 2
/** How long close() lets the thread end by itself before terminating it. */
const STOP_GRACE_MS = 2000

/** Reads, frames and parses in a reader thread, ahead of the merge. */
export class ThreadFeed implements Feed {
  readonly #arena: CopyArena
  /** The thread was started with the process (prestart.ts), not by this feed. */
  readonly prestarted: boolean
  readonly #worker: Worker
  readonly #port: MessagePort
  readonly #control: Int32Array
  readonly #queues: FromReaderThread[][]
  readonly #taken: number[]
  #failure: Error | null = null
  #exited = false
  readonly #ended: Promise<void>
  #ending: 'running' | 'by itself' | 'terminated' = 'running'
  #wake: (() => void) | null = null
  #closed: Promise<void> | null = null

  /** `arena`: shared memory (CopyArenaOptions.shared), THREAD_SLOTS slots a source. */
  constructor(arena: CopyArena, readers: readonly ReaderInit[]) {
    const memory = arena.memory.bytes.buffer
    if (!(memory instanceof SharedArrayBuffer) || arena.slots < THREAD_SLOTS * readers.length) {
      throw new Error('the reader thread needs an arena in shared memory with its slots')
    }
    this.#arena = arena
    this.#queues = readers.map(() => [])
    this.#taken = readers.map(() => 0)
    const control = new SharedArrayBuffer(4 * (TAKEN + readers.length))
    this.#control = new Int32Array(control)
    const { port1, port2 } = new MessageChannel()
    this.#port = port1
    const init: ReaderThreadInit = {
      readers,
      depth: DEPTH,
      arena: memory,
      slotBytes: arena.slotBytes,
      slotsPerSource: THREAD_SLOTS,
      control,
      port: port2,
    }
    // Started at the process's start when the command line promised a big merge (prestart.ts).
    const prestarted = takePrestarted()
    this.prestarted = prestarted !== null
    if (prestarted) prestarted.postMessage({ code: 'init', init }, [port2])
    this.#worker = prestarted ?? new Worker(THREAD, { workerData: init, transferList: [port2] })
    port1.on('message', (msg: FromReaderThread) => this.#accept(msg))
    this.#worker.on('error', (err) => this.#fail(threadFailed(`crashed: ${err.message}`, err)))
    this.#ended = new Promise((resolve) => this.#worker.once('exit', () => resolve()))
    this.#worker.on('exit', (code) => {
      // 'exit' and the port's messages travel apart: take what is still queued first.
      this.#drainPort()
      this.#exited = true
      if (code !== 0 && !this.#closed) this.#fail(threadFailed(`exited with code ${code}`))
      this.#wake?.()
    })
  }

  /** How the thread ended on close(): by itself once told to stop, or terminated (debug). */
  get ending(): 'running' | 'by itself' | 'terminated' {
    return this.#ending
  }

  next(i: number): ReadResult | Promise<ReadResult> {
    const queue = this.#queues[i] as FromReaderThread[]
    if (queue.length === 0) this.#drainPort()
    const msg = queue.shift()
    if (msg !== undefined) return this.#deliver(i, msg)
    return this.#waitFor(i)
  }

  /**
   * Tells the thread to stop and waits for it to end by itself: it looks at STOP between two
   * reads, a few ms apart. Terminated only if it has not ended after STOP_GRACE_MS (a read
   * stuck on a slow disk): terminating a thread at work once aborted Node 20 (see
   * part-threads.ts).
   */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      Atomics.store(this.#control, STOP, 1)
      this.#bump()
      let timer: NodeJS.Timeout | undefined
      const late = new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), STOP_GRACE_MS)
      })
      const tooLate = await Promise.race([this.#ended.then(() => false), late])
      clearTimeout(timer)
      if (tooLate) {
        this.#ending = 'terminated'
        await this.#worker.terminate()
      } else this.#ending = 'by itself'
      this.#port.close()
    })()
    return this.#closed
  }

  async #waitFor(i: number): Promise<ReadResult> {
    const queue = this.#queues[i] as FromReaderThread[]
    while (queue.length === 0) {
      if (this.#failure) throw this.#failure
      if (this.#closed) throw new Error('the time-order reader thread was closed')
      if (this.#exited) throw threadFailed(`ended before reading source ${i} to its end`)
      await new Promise<void>((resolve) => {
        this.#wake = resolve
      })
      this.#wake = null
    }
    return this.#deliver(i, queue.shift() as FromReaderThread)
  }

  /** Hands block `msg` of source `i` to the merge (its bytes in the source's slot for it). */
  #deliver(i: number, msg: FromReaderThread): ReadResult {
    if (this.#failure) throw this.#failure
    if (msg.code !== 'read') throw new Error(`unexpected message ${msg.code}`)
    const seq = this.#taken[i] as number
    if (msg.seq !== seq) throw threadFailed(`sent block ${msg.seq} of source ${i}, expected ${seq}`)
    this.#taken[i] = seq + 1
    Atomics.store(this.#control, TAKEN + i, seq + 1)
    this.#bump()
    const result = {
      block: null,
      fileStart: msg.fileStart,
      inserted: msg.inserted,
      leaders:
        msg.starts === null || msg.times === null
          ? null
          : { starts: msg.starts, times: msg.times, count: msg.count, maxTime: msg.maxTime },
      readTo: msg.readTo,
      end: msg.end,
      failure: msg.failure,
    }
    if (msg.kind === 'bytes' && msg.bytes !== null) {
      return { ...result, block: Buffer.from(msg.bytes.buffer, msg.bytes.byteOffset, msg.length) }
    }
    if (msg.kind !== 'slot') return result
    const slot = this.#arena.slot(THREAD_SLOTS * i + (seq % THREAD_SLOTS))
    return { ...result, block: slot.subarray(0, msg.length) }
  }

  #accept(msg: FromReaderThread): void {
    if (msg.code === 'failed') {
      const cause = rebuildError(msg.error)
      this.#fail(threadFailed(`failed: ${cause.message}`, cause))
      return
    }
    if (msg.code !== 'read') {
      this.#fail(threadFailed(`sent unknown message code ${(msg as { code: string }).code}`))
      return
    }
    const queue = this.#queues[msg.source]
    if (queue === undefined) {
      this.#fail(threadFailed(`sent a block of unknown source ${msg.source}`))
      return
    }
    queue.push(msg)
    this.#wake?.()
  }

  #drainPort(): void {
    for (let m = receiveMessageOnPort(this.#port); m; m = receiveMessageOnPort(this.#port)) {
      this.#accept(m.message as FromReaderThread)
    }
  }

  #bump(): void {
    Atomics.add(this.#control, WAKE, 1)
    Atomics.notify(this.#control, WAKE)
  }

  #fail(err: Error): void {
    this.#failure ??= err
    this.#wake?.()
  }
}

function threadFailed(what: string, cause?: Error): LogmergeError {
  return new LogmergeError('ETHREAD', `the time-order reader thread ${what}`, {
    cause,
    hint: 'this is a bug or a fault of the disk, see the message',
  })
}
