/**
 * The main thread's side of one reader thread (threads, top-down, bottom-up): taking a worker
 * from the pool with its WorkerInit, waking it for each message, and turning what it sends into
 * calls on the engine (ThreadEvents). A thread that fails, crashes, exits before 'done' or sends
 * an unknown code is reported with the file it was at: never a silent stall.
 */
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import {
  MessageChannel,
  type MessagePort,
  receiveMessageOnPort,
  type Worker,
} from 'node:worker_threads'
import type Pool from 'worker-threads-pool'
import { LogmergeError, rebuildError } from '../errors.js'
import { capYoungAgain } from '../gc.js'
import type { Logger } from '../log.js'
import type { SourceMark } from '../sink/sink.js'
import type { SourceState } from '../tail/source-state.js'
import type { TableSummary } from '../tail/tracked.js'
import {
  ASLEEP,
  CONTROL_BYTES,
  type FromWorker,
  type ToWorker,
  WAKE,
  type WorkerInit,
} from './protocol.js'

const WORKER = fileURLToPath(new URL('./worker.js', import.meta.url))

/** One reader thread, as the main thread holds it. */
export interface Shard {
  readonly id: number
  readonly worker: Worker
  readonly port: MessagePort
  readonly control: Int32Array
  readonly done: Promise<readonly string[]>
  /** Resolves once the thread has made its start-up pass ('started'). */
  readonly started: Promise<void>
  /** Resolves once the thread runs (its heap is made: see capYoungAgain). */
  readonly online: Promise<void>
  /** Resolves once the thread's modules are loaded ('loaded'). */
  readonly loaded: Promise<void>
  /** Resolves once the thread has exited (terminating it if it has not within a moment). */
  readonly exited: Promise<void>
}

/** What the engine does with a reader thread's messages. */
export interface ThreadEvents {
  readonly log: Logger
  /** top-down: a block for the main thread's writer. */
  block(bytes: Uint8Array, mark: SourceMark | undefined): void
  /** A file was opened: what a checkpoint needs of it. */
  source(key: string, source: SourceState): void
  /** A finished file is gone from disk. */
  forget(key: string): void
  /** top-down: a file was read to its end and let go. */
  released(key: string): void
  summary(thread: number, summary: TableSummary): void
  /** The thread failed: the run ends with `err` (the first one reported wins). */
  fail(err: Error): void
}

/** Sends `msg` to the thread and wakes it if it sleeps. */
export function send(shard: Shard, msg: ToWorker): void {
  shard.port.postMessage(msg)
  Atomics.add(shard.control, WAKE, 1)
  // A thread that is awake sees the count move before it sleeps (see worker.ts): only a
  // sleeping one needs the futex call, which costs a wake-up each (thousands a second).
  if (Atomics.load(shard.control, ASLEEP) === 1) Atomics.notify(shard.control, WAKE)
}

/** A promise and the function that resolves it. */
function signal(): { promise: Promise<void>; resolve: () => void } {
  let resolve = () => {}
  const promise = new Promise<void>((r) => {
    resolve = r
  })
  return { promise, resolve }
}

/**
 * Starts reader thread `init.id` from `pool`; `youngMb`, when set, caps its young generation
 * (see gc.ts). `init` gets the control cells and the port here.
 */
export async function startShard(
  pool: Pool,
  init: Omit<WorkerInit, 'control' | 'port'>,
  youngMb: number | null,
  events: ThreadEvents,
): Promise<Shard> {
  const { port1, port2 } = new MessageChannel()
  const control = new SharedArrayBuffer(CONTROL_BYTES)
  const workerData: WorkerInit = { ...init, control, port: port2 }
  const worker = await new Promise<Worker>((resolve, reject) =>
    pool.acquire(
      WORKER,
      {
        workerData,
        transferList: init.sink.kind === 'post' ? [port2, init.sink.returns] : [port2],
        ...(youngMb === null ? {} : { resourceLimits: { maxYoungGenerationSizeMb: youngMb } }),
      },
      (err, w) => (err ? reject(err) : resolve(w)),
    ),
  )
  const online = once(worker, 'online').then(() => capYoungAgain())
  const started = signal()
  const loaded = signal()
  const done = listen(init.id, worker, port1, events, started.resolve, loaded.resolve)
  done.catch(() => {}) // observed through events.fail
  const gone = once(worker, 'exit').then(() => undefined)
  const exited = done
    .catch(() => undefined)
    .then(() => Promise.race([gone, sleep(2000, undefined, { ref: false })]))
    .then(() => worker.terminate())
    .then(() => port1.close())
  return {
    id: init.id,
    worker,
    port: port1,
    control: new Int32Array(control),
    done,
    started: started.promise,
    loaded: loaded.promise,
    online,
    exited,
  }
}

/** The thread's messages and end: resolves with its unreadable names at 'done'. */
function listen(
  id: number,
  worker: Worker,
  port: MessagePort,
  events: ThreadEvents,
  started: () => void,
  loaded: () => void,
): Promise<readonly string[]> {
  return new Promise<readonly string[]>((resolve, reject) => {
    let finished = false
    const die = (err: Error) => {
      finished = true
      events.fail(err)
      reject(err)
    }
    const handle = (msg: FromWorker) => {
      if (msg.code === 'done') {
        finished = true
        resolve(msg.unreadable)
      } else if (msg.code === 'started') started()
      else if (msg.code === 'loaded') loaded()
      else {
        const err = dispatch(id, msg, events)
        if (err) die(err)
      }
    }
    port.on('message', handle)
    worker.on('error', (err) =>
      die(threadFailed(`reader thread ${id} crashed: ${err.message}`, err)),
    )
    worker.on('exit', (code) => {
      // 'exit' and the port's messages travel apart: take what is still queued first.
      for (let m = receiveMessageOnPort(port); m && !finished; m = receiveMessageOnPort(port)) {
        handle(m.message as FromWorker)
      }
      if (!finished) die(threadFailed(`reader thread ${id} exited (code ${code}) before finishing`))
    })
  })
}

/** Hands a message to the engine; returns the error that ends the thread, if it is one. */
function dispatch(
  id: number,
  msg: Exclude<FromWorker, { code: 'done' | 'started' | 'loaded' }>,
  events: ThreadEvents,
): Error | null {
  switch (msg.code) {
    case 'log':
      events.log[msg.level](msg.message)
      return null
    case 'block':
      events.block(msg.bytes, msg.mark)
      return null
    case 'source':
      events.source(msg.key, msg.source)
      return null
    case 'forget':
      events.forget(msg.key)
      return null
    case 'released':
      events.released(msg.key)
      return null
    case 'summary':
      events.summary(id, msg.summary)
      return null
    case 'failed': {
      const where = msg.path ? ` while reading ${msg.path}` : ''
      const cause = rebuildError(msg.error)
      // The output failing in a thread is an output error, not a reader thread's fault.
      if (msg.error.code === 'EOUTPUT_CLOSED' || msg.error.code === 'EOUTPUT_WRITE') {
        return new LogmergeError(msg.error.code, cause.message, { cause })
      }
      return threadFailed(`reader thread ${id} failed${where}: ${cause.message}`, cause)
    }
    default:
      return new Error(
        `reader thread ${id} sent unknown message code ${(msg as { code: string }).code}`,
      )
  }
}

function threadFailed(message: string, cause?: Error): LogmergeError {
  return new LogmergeError('ETHREAD', message, {
    cause,
    hint: 'the other files were drained; this is a bug or a fault of the disk, see the message',
  })
}
