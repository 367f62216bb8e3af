/**
 * A reader thread: follows its shard of the input names with the blocking shell (threads,
 * top-down) or the event-loop shell (bottom-up), and writes through the locked writer or posts
 * blocks to the main thread. New names reach it as messages on its port; the main thread bumps
 * a shared counter so a sleeping blocking reader wakes at once.
 */
import { type MessagePort, receiveMessageOnPort, workerData } from 'node:worker_threads'
import pLimit from 'p-limit'
import { serializeError } from '../errors.js'
import { ArrivalFormatter } from '../format/arrival.js'
import { Labels } from '../format/labels.js'
import { GarbageWatch, settleHeap } from '../gc.js'
import { levelLogger } from '../log.js'
import { LockedWriter } from '../sink/locked-writer.js'
import type { SourceMark, SyncSink } from '../sink/sink.js'
import { toRemembered } from '../state/recover.js'
import { ReadBuffers } from '../tail/read-buffers.js'
import { base64Of, sourceRecord } from '../tail/source-state.js'
import { AsyncFollower } from '../tail/tail-async.js'
import { SyncFollower } from '../tail/tail-sync.js'
import type { Tracked } from '../tail/tracked.js'
import {
  ASLEEP,
  type FromWorker,
  LENT_MIN_BYTES,
  postBufferBytes,
  type ToWorker,
  WAKE,
  type WorkerInit,
} from './protocol.js'

const init = workerData as WorkerInit
const port = init.port
const post = (msg: FromWorker, transfer?: ArrayBuffer[]) => port.postMessage(msg, transfer)
const log = levelLogger(init.logLevel, (level, message) => post({ code: 'log', level, message }))

/**
 * Test-only fault injection: LOGMERGE_FAULT=throw:<text> makes the thread throw when it is told
 * about a path containing <text>, to prove a failing reader thread is reported, not silent.
 */
const fault = process.env.LOGMERGE_FAULT?.match(/^throw:(.+)$/)?.[1]
function checkFault(path: string): void {
  if (fault !== undefined && path.includes(fault))
    throw new Error(`injected fault while reading ${path}`)
}

/** The path a thread that fails is said to have been at (see 'failed'). */
let at: string | null = null

/**
 * top-down: hand each block to the main thread; wait (Atomics.wait) while it is behind.
 *
 * A block is copied into memory of its own, whose ArrayBuffer is transferred with the message
 * (transferring a view would hand over, and detach, the whole buffer under it, which may be
 * Node's shared pool). A big block (catching up) goes into memory the main thread sent back
 * once it wrote an earlier block (`returns`), kept in a ReadBuffers pool: a new ArrayBuffer for
 * every megabyte paid a page fault and the kernel's zeroing for every 4 KiB of it, the cost
 * tail/read-buffers.ts measured for the event-loop reader. A writer that does not say when a
 * block is written (the --format and --order time stages) sends nothing back, and each big
 * block then gets new memory, as before.
 */
class PostSink implements SyncSink {
  readonly #inflight: Int32Array
  readonly #highWater: number
  readonly #returns: MessagePort
  readonly #buffers: ReadBuffers
  readonly #bufferBytes: number

  constructor(sink: Extract<WorkerInit['sink'], { kind: 'post' }>, readChunkBytes: number) {
    this.#inflight = new Int32Array(sink.inflight)
    this.#highWater = sink.highWaterBytes
    this.#returns = sink.returns
    this.#bufferBytes = postBufferBytes(readChunkBytes)
    this.#buffers = new ReadBuffers(this.#bufferBytes)
  }

  write(block: Buffer, mark?: SourceMark): void {
    const bytes = this.#copy(block)
    Atomics.add(this.#inflight, 0, bytes.length)
    post({ code: 'block', bytes, mark }, [bytes.buffer as ArrayBuffer])
    for (;;) {
      const queued = Atomics.load(this.#inflight, 0)
      if (queued <= this.#highWater) return
      Atomics.wait(this.#inflight, 0, queued, 100)
    }
  }

  forget(key: string): void {
    post({ code: 'forget', key })
  }

  /** `block` in memory of its own: kept memory for a big block, new memory otherwise. */
  #copy(block: Buffer): Uint8Array {
    const now = Date.now()
    for (let m = receiveMessageOnPort(this.#returns); m; m = receiveMessageOnPort(this.#returns)) {
      const memory = m.message as ArrayBuffer
      if (memory.byteLength === this.#bufferBytes) this.#buffers.give(Buffer.from(memory), now)
    }
    this.#buffers.trim(now)
    const kept = block.length > LENT_MIN_BYTES ? this.#buffers.take(block.length, now) : null
    const bytes = kept ? new Uint8Array(kept.buffer, 0, block.length) : new Uint8Array(block.length)
    bytes.set(block)
    return bytes
  }
}

/**
 * Locked writers, --format prefix|json: each block is formatted here, before the locked write
 * (no single place sees every line; the formatting is per line, so it needs none).
 */
const labels = new Labels(init.labels)
const formatter =
  init.sink.kind === 'locked' && init.format !== 'raw'
    ? new ArrivalFormatter({
        format: init.format,
        labels,
        timestampFormat: init.timestampFormat,
        timestamps: init.timestamps,
      })
    : null

function makeSink(): SyncSink {
  const s = init.sink
  if (s.kind === 'post') return new PostSink(s, init.readChunkBytes)
  const locked = LockedWriter.attach(s.share, init.id, (message) =>
    log.warnOnce('output-retry', message),
  )
  return {
    write: (block, mark) => locked.write(formatter ? formatter.format(block, mark) : block, mark),
    note: (mark) => locked.note(mark),
    // The slot is freed here; the main thread drops what the thread told it about the file.
    forget: (key) => {
      locked.forget(key)
      post({ code: 'forget', key })
    },
  }
}

const quietMs = 2 * init.pollIntervalMs

/** top-down: a file let go ends its source in the main thread's time order. */
function onRelease(file: Tracked<unknown>): void {
  if (init.sink.kind === 'post') post({ code: 'released', key: file.key })
}

/** Tells the main thread about each file opened, for its checkpoints. */
function onSource(file: Tracked<unknown>): void {
  formatter?.open(file.key, file.path)
  const head = base64Of(file.cursor.head)
  const source = sourceRecord(file.cursor.identity, file.path, head, file.cursor.committedOffset)
  post({ code: 'source', key: file.key, source })
}

/**
 * The notes' `tail_file` loop: look, read, sleep; sleep ends early when the main thread calls.
 * Kept whole (about 70 lines) for docs/migration.md, which sets it beside runEventLoop: the
 * loop's shape is the point of the comparison.
 */
function runBlocking(sink: SyncSink): void {
  const control = new Int32Array(init.control)
  const follower = new SyncFollower({
    ...init,
    quietMs,
    pollMs: init.pollIntervalMs,
    sink,
    log,
    onSource,
    onRelease,
  })
  let nextSweep = Date.now() + init.pollIntervalMs
  try {
    for (;;) {
      const seen = Atomics.load(control, WAKE)
      for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) {
        const msg = m.message as ToWorker
        at = null
        switch (msg.code) {
          case 'start':
            for (const p of msg.paths) checkFault(p)
            labels.addTable(msg.labels)
            follower.remember(toRemembered(msg.remembered))
            follower.findRotated(msg.paths)
            follower.start(msg.paths)
            if (init.follow) settleHeap() // the start-up's garbage, before following (gc.ts)
            post({ code: 'started' })
            break
          case 'events':
            for (const p of msg.resolve) {
              at = p
              checkFault(p)
              follower.resolve(p)
            }
            for (const p of msg.changed) {
              at = p
              checkFault(p)
              follower.changed(p)
            }
            break
          case 'summary':
            post({ code: 'summary', summary: follower.summary() })
            break
          case 'stop':
            follower.catchUp()
            follower.close(msg.flush)
            post({ code: 'done', unreadable: follower.unreadable })
            return
          default:
            throw new Error(`unknown message code ${(msg as { code: string }).code}`)
        }
      }
      follower.readDue()
      if (Date.now() >= nextSweep) {
        follower.sweep()
        if (init.follow) garbage.check()
        nextSweep = Date.now() + init.pollIntervalMs
      }
      // Until the next message, the next folded read, or the next sweep.
      const due = follower.nextDueIn()
      const sweepIn = Math.max(1, nextSweep - Date.now())
      Atomics.store(control, ASLEEP, 1)
      Atomics.wait(control, WAKE, seen, due === null ? sweepIn : Math.min(due, sweepIn))
      Atomics.store(control, ASLEEP, 0)
    }
  } catch (err) {
    post({ code: 'failed', error: serializeError(err), path: follower.current ?? at })
  }
}

/** The injected fault's path, from its message (bottom-up handles a batch of paths at once). */
const faultPath = (err: unknown): string | null =>
  /^injected fault while reading (.+)$/.exec((err as Error)?.message ?? '')?.[1] ?? null

/**
 * bottom-up: the thread's structure is unchanged, but inside it runs the event-loop reader.
 * Kept whole (about 80 lines) for the same reason as runBlocking: docs/migration.md compares
 * the two loops step for step.
 */
async function runEventLoop(sink: SyncSink): Promise<void> {
  const follower = new AsyncFollower({
    ...init,
    quietMs,
    pollMs: init.pollIntervalMs,
    sink: {
      write: (block, mark, done) => {
        sink.write(block, mark) // blocking: the lock and the disk are the backpressure
        done?.() // written under the lock, or copied into the message to the main thread
        return undefined
      },
      note: (mark) => sink.note?.(mark),
      forget: (key) => sink.forget?.(key),
    },
    onSource,
    onRelease,
    limit: pLimit(init.readConcurrency),
    log,
  })
  const sweep = setInterval(() => follower.sweep(), init.pollIntervalMs)
  if (init.follow) garbage.start() // unref'd: ends with the thread
  const fail = (err: unknown, path: string | null) => {
    clearInterval(sweep)
    post({ code: 'failed', error: serializeError(err), path })
    port.close()
  }
  // Every promise the follower starts is awaited somewhere, or ends here.
  process.on('unhandledRejection', (err) => fail(err, null))
  const handle = async (msg: ToWorker): Promise<void> => {
    switch (msg.code) {
      case 'start':
        for (const p of msg.paths) checkFault(p)
        labels.addTable(msg.labels)
        follower.remember(toRemembered(msg.remembered))
        await follower.findRotated(msg.paths)
        await follower.start(msg.paths)
        if (init.follow) settleHeap() // the start-up's garbage, before following (gc.ts)
        post({ code: 'started' })
        return
      case 'events': {
        // Side by side: the follower keeps each name's and each file's work in order itself.
        const work: Promise<void>[] = []
        for (const p of msg.resolve) {
          checkFault(p)
          work.push(follower.resolve(p))
        }
        for (const p of msg.changed) {
          checkFault(p)
          work.push(follower.changed(p))
        }
        await Promise.all(work)
        return
      }
      case 'summary':
        return post({ code: 'summary', summary: follower.summary() })
      case 'stop':
        clearInterval(sweep)
        await follower.catchUp()
        await follower.close(msg.flush)
        post({ code: 'done', unreadable: follower.unreadable })
        port.close()
        return
      default:
        throw new Error(`unknown message code ${(msg as { code: string }).code}`)
    }
  }
  // Messages are handled in order: each waits for the one before (start before stop).
  let chain = Promise.resolve()
  /** The start-up pass is over (a summary before it would count no file). */
  let started = false
  port.on('message', (msg: ToWorker) => {
    // Read-only: once started, answered at once, not behind a burst of changes.
    if (msg.code === 'summary' && started) {
      void handle(msg)
      return
    }
    chain = chain
      .then(() => handle(msg))
      .then(() => {
        if (msg.code === 'start') started = true
      })
      .catch((err) => fail(err, faultPath(err)))
  })
}

/** A following thread's heap (see gc.ts). */
const garbage = new GarbageWatch()

function main(): void {
  post({ code: 'loaded' }) // every module is loaded by now (static imports only)
  const sink = makeSink()
  if (init.style === 'sync') {
    runBlocking(sink)
    port.close()
  } else {
    void runEventLoop(sink)
  }
}

main()
