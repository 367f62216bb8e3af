/**
 * A reader thread: follows its shard of the input names with the blocking shell (threads,
 * top-down) or the event-loop shell (bottom-up), and writes through the locked writer or posts
 * blocks to the main thread. New names reach it as messages on its port; the main thread bumps
 * a shared counter so a sleeping blocking reader wakes at once.
 */
import { receiveMessageOnPort, workerData } from 'node:worker_threads'
import pLimit from 'p-limit'
import { levelLogger } from '../log.js'
import { ArrivalFormatter, Labels } from '../sink/format-sink.js'
import { LockedWriter } from '../sink/locked-writer.js'
import type { SourceMark } from '../sink/sink.js'
import { toRemembered } from '../state/recover.js'
import type { Tracked } from '../tail/file-table.js'
import { AsyncFollower } from '../tail/tail-async.js'
import { SyncFollower, type SyncSink } from '../tail/tail-sync.js'
import { type FromWorker, serializeError, type ToWorker, type WorkerInit } from './protocol.js'

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

/** top-down: hand each block to the main thread; wait (Atomics.wait) while it is behind. */
class PostSink implements SyncSink {
  readonly #inflight: Int32Array
  readonly #highWater: number

  constructor(inflight: SharedArrayBuffer, highWater: number) {
    this.#inflight = new Int32Array(inflight)
    this.#highWater = highWater
  }

  write(block: Buffer, mark?: SourceMark): void {
    // A copy in its own ArrayBuffer: transferring a view would hand over (and detach) the
    // whole underlying buffer, which may be Node's shared pool.
    const bytes = new Uint8Array(block.length)
    bytes.set(block)
    Atomics.add(this.#inflight, 0, bytes.length)
    post({ code: 'block', bytes, mark }, [bytes.buffer])
    for (;;) {
      const queued = Atomics.load(this.#inflight, 0)
      if (queued <= this.#highWater) return
      Atomics.wait(this.#inflight, 0, queued, 100)
    }
  }

  forget(key: string): void {
    post({ code: 'forget', key })
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
  if (s.kind === 'post') return new PostSink(s.inflight, s.highWaterBytes)
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
  const { dev, ino } = file.cursor.identity
  const head = file.cursor.head.toString('base64')
  const source = { path: file.path, dev, ino, head, offset: file.cursor.committedOffset }
  post({ code: 'source', key: file.key, source })
}

/** The notes' `tail_file` loop: look, read, sleep; sleep ends early when the main thread calls. */
function runBlocking(sink: SyncSink): void {
  const control = new Int32Array(init.control)
  const follower = new SyncFollower({ ...init, quietMs, sink, log, onSource, onRelease })
  let nextSweep = Date.now() + init.pollIntervalMs
  let at: string | null = null
  try {
    for (;;) {
      const seen = Atomics.load(control, 0)
      for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) {
        const msg = m.message as ToWorker
        at = 'path' in msg ? msg.path : null
        switch (msg.code) {
          case 'start':
            for (const p of msg.paths) checkFault(p)
            labels.addTable(msg.labels)
            follower.remember(toRemembered(msg.remembered))
            follower.findRotated(msg.paths)
            follower.start(msg.paths)
            break
          case 'resolve':
            checkFault(msg.path)
            follower.resolve(msg.path)
            break
          case 'changed':
            checkFault(msg.path)
            follower.changed(msg.path)
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
      if (Date.now() >= nextSweep) {
        follower.sweep()
        nextSweep = Date.now() + init.pollIntervalMs
      }
      Atomics.wait(control, 0, seen, Math.max(1, nextSweep - Date.now()))
    }
  } catch (err) {
    post({ code: 'failed', error: serializeError(err), path: follower.current ?? at })
  }
}

/** bottom-up: the thread's structure is unchanged, but inside it runs the event-loop reader. */
async function runEventLoop(sink: SyncSink): Promise<void> {
  const follower = new AsyncFollower({
    ...init,
    quietMs,
    sink: {
      write: (block, mark) => {
        sink.write(block, mark) // blocking: the lock and the disk are the backpressure
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
        return follower.start(msg.paths)
      case 'resolve':
        checkFault(msg.path)
        return follower.resolve(msg.path)
      case 'changed':
        checkFault(msg.path)
        return follower.changed(msg.path)
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
    const path = 'path' in msg ? msg.path : null
    chain = chain
      .then(() => handle(msg))
      .then(() => {
        if (msg.code === 'start') started = true
      })
      .catch((err) => fail(err, path))
  })
}

function main(): void {
  const sink = makeSink()
  if (init.style === 'sync') {
    runBlocking(sink)
    port.close()
  } else {
    void runEventLoop(sink)
  }
}

main()
