/**
 * Where `--once --order time` gets each input's next block from: read on the main thread when
 * it asks (InlineFeed), or found by a reader thread that reads, frames and parses ahead while
 * the main thread merges (ThreadFeed). The merge asks for a source's next block only when it
 * needs it (TimeOrder.needsMore), in each source's order.
 *
 * Slots. A source's blocks go into its two arena slots in turn. When the merge asks for a
 * source's next block it holds at most one of its records (needsMore), which lies in the block
 * delivered last or in a joined copy outside the arena: the other slot is free.
 *
 * The reader thread reads each file into memory of its own and posts, per block, where it lies
 * in the file with its leaders and times; the main thread then reads those bytes again, into
 * its slot. Reading twice looks wasteful, but it is what keeps the merge's copies fast: a
 * block in shared memory (a SharedArrayBuffer, so both threads could use one copy) makes
 * V8's copyWithin and Buffer.indexOf take their slow, shared-memory-safe paths (measured: the
 * main thread's copies 4x slower), and a block the other thread wrote is cold in this core's
 * cache anyway. A page-cache read costs about a quarter of a millisecond a MiB; parsing, which
 * the thread takes over, costs several times that.
 */
import { readSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { MessageChannel, type MessagePort, receiveMessageOnPort, Worker } from 'node:worker_threads'
import { LogmergeError } from '../errors.js'
import type { CopyArena } from '../merge/arena.js'
import type { ReaderInit, ReadResult } from './once-read.js'
import { SourceReader } from './once-read.js'
import { rebuildError, type SerializedError } from './protocol.js'

export interface Feed {
  /** Source `i`'s next read (in its order). Call it again only once the last one was pushed. */
  next(i: number): ReadResult | Promise<ReadResult>
  /** Stops reading; resolves once no thread can touch the files or the arena any more. */
  close(): Promise<void>
}

/** Slots a source in the arena (both feeds): the block read last, and the other. */
export const SLOTS_PER_SOURCE = 2

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
    const slot = this.#arena.slot(SLOTS_PER_SOURCE * i + (reads % SLOTS_PER_SOURCE))
    return (this.#readers[i] as SourceReader).next(slot)
  }

  async close(): Promise<void> {}
}

/** The reader thread's setup (workerData). */
export interface ReaderThreadInit {
  readonly readers: readonly ReaderInit[]
  /** Blocks the thread may post for a source ahead of what the merge took. */
  readonly depth: number
  /** Int32: [WAKE] bumped by the main thread after it took blocks, [STOP], [TAKEN + i]. */
  readonly control: SharedArrayBuffer
  readonly port: MessagePort
}

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
       * The block: `file` when it is the file's bytes [fileStart, fileStart + length) as they
       * are (the main thread reads them again), `bytes` when the framer made it (split lines,
       * the last line's added newline), `none` when the read finished no line.
       */
      readonly kind: 'file' | 'bytes' | 'none'
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

const THREAD = fileURLToPath(new URL('./once-thread.js', import.meta.url))
/** Blocks read ahead of the merge, per source. */
const DEPTH = 3
const NEWLINE = 0x0a

/** Reads, frames and parses in a reader thread, ahead of the merge. */
export class ThreadFeed implements Feed {
  readonly #arena: CopyArena
  readonly #fds: number[]
  readonly #worker: Worker
  readonly #port: MessagePort
  readonly #control: Int32Array
  readonly #queues: FromReaderThread[][]
  readonly #taken: number[]
  #failure: Error | null = null
  #exited = false
  #wake: (() => void) | null = null
  #closed: Promise<void> | null = null

  constructor(arena: CopyArena, readers: readonly ReaderInit[]) {
    this.#arena = arena
    this.#fds = readers.map((r) => r.fd)
    this.#queues = readers.map(() => [])
    this.#taken = readers.map(() => 0)
    const control = new SharedArrayBuffer(4 * (TAKEN + readers.length))
    this.#control = new Int32Array(control)
    const { port1, port2 } = new MessageChannel()
    this.#port = port1
    const init: ReaderThreadInit = { readers, depth: DEPTH, control, port: port2 }
    this.#worker = new Worker(THREAD, { workerData: init, transferList: [port2] })
    port1.on('message', (msg: FromReaderThread) => this.#accept(msg))
    this.#worker.on('error', (err) => this.#fail(threadFailed(`crashed: ${err.message}`, err)))
    this.#worker.on('exit', (code) => {
      // 'exit' and the port's messages travel apart: take what is still queued first.
      this.#drainPort()
      this.#exited = true
      if (code !== 0 && !this.#closed) this.#fail(threadFailed(`exited with code ${code}`))
      this.#wake?.()
    })
  }

  next(i: number): ReadResult | Promise<ReadResult> {
    const queue = this.#queues[i] as FromReaderThread[]
    if (queue.length === 0) this.#drainPort()
    const msg = queue.shift()
    if (msg !== undefined) return this.#deliver(i, msg)
    return this.#waitFor(i)
  }

  close(): Promise<void> {
    this.#closed ??= (async () => {
      Atomics.store(this.#control, STOP, 1)
      this.#bump()
      await this.#worker.terminate()
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

  /** Hands block `msg` of source `i` to the merge, its bytes read into the source's next slot. */
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
    if (msg.kind !== 'file') return result
    const slot = this.#arena.slot(SLOTS_PER_SOURCE * i + (seq % SLOTS_PER_SOURCE))
    const block = readBlockAgain(this.#fds[i] as number, slot, msg.fileStart, msg.length)
    if (typeof block === 'string') {
      // The file changed between the two reads (it is not at rest): stop at what was merged.
      return { ...result, leaders: null, end: true, failure: { code: undefined, message: block } }
    }
    return { ...result, block }
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

/**
 * A block the reader thread found, read again from the file into `slot`: the block, or why
 * these bytes are not the block (the file was truncated or rewritten between the two reads;
 * files at rest do not change, but --once may be run on live ones).
 */
export function readBlockAgain(
  fd: number,
  slot: Buffer,
  fileStart: number,
  length: number,
): Buffer | string {
  if (length > slot.length) return `a block of ${length} bytes does not fit its slot` // a bug
  let n: number
  try {
    n = readSync(fd, slot, 0, length, fileStart)
  } catch (err) {
    return (err as Error).message
  }
  if (n !== length || slot[length - 1] !== NEWLINE) {
    return 'it changed while it was read (truncated or rewritten)'
  }
  return slot.subarray(0, length)
}

function threadFailed(what: string, cause?: Error): LogmergeError {
  return new LogmergeError('ETHREAD', `the time-order reader thread ${what}`, {
    cause,
    hint: 'this is a bug or a fault of the disk, see the message',
  })
}
