/**
 * The main thread's side of the three engines with reader threads (threads, top-down,
 * bottom-up). A fixed number of worker threads from worker-threads-pool (never one per file:
 * the notes' BetterWay57), each owning a shard of the names. Discovery stays here (chokidar)
 * and hands names to their thread. A thread that fails is reported with the file it was at,
 * the others are drained and stopped, and the run ends with an error: never a silent stall.
 */
import { once } from 'node:events'
import { stat } from 'node:fs/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import {
  MessageChannel,
  type MessagePort,
  receiveMessageOnPort,
  type Worker,
} from 'node:worker_threads'
import Pool from 'worker-threads-pool'
import { LogmergeError, rebuildError } from '../errors.js'
import { Labels } from '../format/labels.js'
import { settleHeap } from '../gc.js'
import { ProgressBar, wantsProgress } from '../progress/bar.js'
import { LockedWriter } from '../sink/locked-writer.js'
import type { SourceMark } from '../sink/sink.js'
import { Checkpointer, sourcesAt } from '../state/checkpointer.js'
import { recover, resumeMark } from '../state/recover.js'
import { countLines, identityKey } from '../tail/cursor.js'
import { Discovery, scanInputs } from '../tail/discovery.js'
import { inputFileBudget } from '../tail/fd-budget.js'
import { SWEEP_NAMES_PER_SECOND } from '../tail/file-table.js'
import { prescan, resumePoints } from '../tail/prescan.js'
import type { SourceState } from '../tail/source-state.js'
import type { Engine, EngineContext, EngineResult } from './engine.js'
import { type OutputWriter, openOutputWriter } from './loop-state.js'
import { outputChain, timestampOptions } from './output-chain.js'
import {
  ASLEEP,
  CONTROL_BYTES,
  type FromWorker,
  type ToWorker,
  WAKE,
  type WorkerInit,
} from './protocol.js'
import { shardOf } from './shard.js'
import { ReaderSummaries, threadedView } from './view.js'

const WORKER = fileURLToPath(new URL('./worker.js', import.meta.url))
/** A following reader thread's young generation (MiB; see gc.ts). */
const FOLLOW_YOUNG_MB = 4

export interface ThreadedShape {
  /** The reader shell inside each thread. */
  readonly style: 'sync' | 'async'
  /** locked: every thread writes under the shared lock; loop: threads post to this thread. */
  readonly writer: 'locked' | 'loop'
}

interface Shard {
  readonly id: number
  readonly worker: Worker
  readonly port: MessagePort
  readonly control: Int32Array
  readonly done: Promise<readonly string[]>
  /** Resolves once the thread has made its start-up pass ('started'). */
  readonly started: Promise<void>
  /** Resolves once the thread's modules are loaded ('loaded'). */
  readonly loaded: Promise<void>
  /** Resolves once the thread has exited (terminating it if it has not within a moment). */
  readonly exited: Promise<void>
}

export function threadedEngine(shape: ThreadedShape): Engine {
  return (ctx) => runThreaded(ctx, shape)
}

async function runThreaded(ctx: EngineContext, shape: ThreadedShape): Promise<EngineResult> {
  const { config, log, stop, events, observe } = ctx
  // top-down --once --order time does not come here: the merge pulls from every file in turn
  // on the main thread, as on the async engine (engines/index.ts, batch.ts).
  const failed = new AbortController()
  let failure: Error | null = null
  const fail = (err: Error) => {
    if (failure) return
    failure = err // reported once, by the daemon, when the run ends
    failed.abort()
  }

  const recovered = config.statePath
    ? await recover(config.statePath, config.output, log)
    : { sources: [], previousStart: null }
  // A nats:// output (a fleet host): the threads post their blocks to this thread's publisher.
  const fleetHost = config.fleet?.role === 'host'
  const locked =
    shape.writer === 'locked' && !fleetHost
      ? LockedWriter.open(config.output, config.threads, (m) => log.warnOnce('output-retry', m), {
          log,
          intervalMs: config.pollIntervalMs,
          onSwitch: (): Promise<void> | undefined => checkpoints?.save(),
        })
      : null
  const loop: OutputWriter | null =
    shape.writer === 'loop' || fleetHost
      ? await openOutputWriter(
          config,
          log,
          fail,
          (): Checkpointer | null => checkpoints,
          // Behind the threads' own budget (postBudget): a small queue here is enough.
          Math.max(4 * 1024 * 1024, 2 * config.maxLineBytes),
        )
      : null
  /** top-down: what stands before the writer (--order time, --format), and the progress bar. */
  const chain = loop ? outputChain(config, loop) : null
  const labels = chain?.labels ?? new Labels(config.labels ?? {})
  const progress = loop && wantsProgress(config) ? new ProgressBar() : null
  const counted = { bytes: 0, lines: 0 }
  /** What the threads told us about each file they opened, for checkpoints. */
  const sources = new Map<string, SourceState>()
  let sourcesSeen = 0
  const checkpoints = config.statePath
    ? new Checkpointer(
        config.statePath,
        config.output,
        {
          snapshot: () => (locked ?? (loop as OutputWriter)).snapshot(),
          sources: (offsets) => sourcesAt(sources, offsets),
          fsync: async () => (locked ? locked.sync() : loop?.fsync()),
          changes: () => (locked ?? (loop as OutputWriter)).changes + sourcesSeen,
        },
        log,
      )
    : null
  const reopen = () => {
    try {
      locked?.reopen()
      if (locked) void checkpoints?.save()
    } catch (err) {
      log.error(`reopening ${config.output}: ${(err as Error).message}`)
    }
    loop
      ?.reopen()
      .then(() => checkpoints?.save())
      .catch((err: Error) => log.error(`reopening ${config.output}: ${err.message}`))
  }
  events.on('reopen', reopen)

  /**
   * top-down: bytes the threads may have posted and not yet handed to the writer. Small, since
   * the writer has its own queue behind it (two 16 MiB queues in a row doubled the memory).
   */
  const postBudget = Math.max(4 * 1024 * 1024, 2 * config.maxLineBytes)
  const inflight = new SharedArrayBuffer(4)
  const inflightCells = new Int32Array(inflight)
  const pool = new Pool({ max: config.threads })
  const shards: Shard[] = []
  /** The threads were sent 'stop' (each then ends by itself). */
  let stopping = false
  /** Metrics (when on): the threads' table summaries, asked for on a slow timer. */
  const summaries = new ReaderSummaries(() => {
    if (stopping) return 0
    for (const shard of shards) send(shard, { code: 'summary' })
    return shards.length
  })
  observe?.(
    threadedView(
      locked ?? (loop as OutputWriter),
      sources,
      () => sourcesSeen,
      checkpoints,
      summaries,
    ),
  )
  const send = (shard: Shard, msg: ToWorker) => {
    shard.port.postMessage(msg)
    Atomics.add(shard.control, WAKE, 1)
    // A thread that is awake sees the count move before it sleeps (see worker.ts): only a
    // sleeping one needs the futex call, which costs a wake-up each (thousands a second).
    if (Atomics.load(shard.control, ASLEEP) === 1) Atomics.notify(shard.control, WAKE)
  }

  try {
    for (let id = 0; id < config.threads; id++) {
      shards.push(await startShard(id))
    }
    // No input is opened before the threads' modules are loaded (see 'loaded').
    if (!failed.signal.aborted)
      await Promise.race([Promise.all(shards.map((s) => s.loaded)), once(failed.signal, 'abort')])
    if (failure) throw failure
    const exclude = config.output === '-' ? undefined : config.output
    const route = (path: string) => shards[shardOf(path, shards.length)] as Shard
    // Events are gathered per thread and sent once a turn of this event loop (see 'events'),
    // and only once every thread has its 'start' (with the resume points).
    const pending = new Map<Shard, { resolve: Set<string>; changed: Set<string> }>()
    let started = false
    let flushing: NodeJS.Immediate | null = null
    const flush = () => {
      flushing = null
      for (const [shard, { resolve, changed }] of pending) {
        for (const p of resolve) changed.delete(p) // a look at the name reads the file too
        send(shard, { code: 'events', resolve: [...resolve], changed: [...changed] })
      }
      pending.clear()
    }
    const deliver = (kind: 'resolve' | 'changed', path: string) => {
      const shard = route(path)
      let events = pending.get(shard)
      if (!events) {
        events = { resolve: new Set(), changed: new Set() }
        pending.set(shard, events)
      }
      events[kind].add(path)
      if (started && flushing === null) flushing = setImmediate(flush)
    }
    const discovery = config.once
      ? null
      : await Discovery.start(
          config.inputs,
          {
            changedName: (path) => deliver('resolve', path),
            changedData: (path) => deliver('changed', path),
          },
          { exclude, log, pollMs: config.pollIntervalMs },
        )
    const paths = new Map<Shard, string[]>(shards.map((s) => [s, []]))
    const found = await scanInputs(config.inputs, exclude)
    for (const path of found) paths.get(route(path))?.push(path)
    labels.addInitial(found)
    if (progress) progress.total = await totalSize(found)
    // Every file present now starts where the state says, or where --from says: decided and
    // checkpointed before any thread reads, so no crash can leave unaccounted bytes.
    let remembered = recovered.sources
    if (checkpoints) {
      const { sources: had, previousStart } = recovered
      remembered = resumePoints(
        had,
        await prescan([...paths.values()].flat(), had, config.from, previousStart),
      )
      for (const s of remembered) {
        const key = identityKey(s)
        sources.set(key, s)
        // With the fingerprint of its offset (see async.ts): the threads' 'source' messages
        // carry the current one, which may already be a truncated file's new first bytes.
        ;(locked ?? (loop as OutputWriter)).note(resumeMark(s))
      }
      await checkpoints.save()
    }
    const resume = new Map<Shard, SourceState[]>(shards.map((s) => [s, []]))
    for (const source of remembered) resume.get(route(source.path))?.push(source)
    for (const shard of shards) {
      send(shard, {
        code: 'start',
        paths: paths.get(shard) ?? [],
        remembered: resume.get(shard) ?? [],
        labels: labels.table(),
      })
    }
    started = true
    flush()
    checkpoints?.start(config.checkpointIntervalMs) // also --once: a long one that is killed resumes
    if (!config.once) {
      const ended = AbortSignal.any([stop, failed.signal])
      // Ready once every thread follows its files (see 'started'): said when only the threads
      // had been told to start, a file a thread had not looked at yet began at whatever size
      // it had grown to by then (--from end), and lines written after "ready" were skipped.
      const allStarted = Promise.all(shards.map((s) => s.started))
      if (!ended.aborted) await Promise.race([allStarted, once(ended, 'abort')])
      events.emit('ready')
      settleHeap() // the start-up's garbage, before following (gc.ts)
      if (!ended.aborted) await once(ended, 'abort')
      await discovery?.close()
    }
    if (flushing !== null) clearImmediate(flushing)
    flush() // events seen before the stop, ahead of it
    stopping = true
    for (const shard of shards) send(shard, { code: 'stop', flush: config.once })
    const unreadable = (await Promise.all(shards.map((s) => s.done.catch(() => [])))).flat()
    chain?.finish() // what the time order holds, before the final checkpoint
    progress?.finish()
    await loop?.drain()
    if (failure) throw failure
    await checkpoints?.stop()
    return { unreadable }
  } finally {
    // Thrown before the threads were told to stop (a bug, or an error on the way): they would
    // wait for 'stop' forever, and this for them. Their unwritten lines are after the last
    // checkpoint, so the next start reads them again.
    if (!stopping) for (const shard of shards) void shard.worker.terminate()
    events.off('reopen', reopen)
    await loop?.close()
    locked?.close()
    // Threads end on their own after 'done'; one that does not (it failed) is terminated.
    // (pool.destroy would use the deprecated callback form of worker.terminate.)
    await Promise.all(shards.map((s) => s.exited))
  }

  async function startShard(id: number): Promise<Shard> {
    const { port1, port2 } = new MessageChannel()
    const control = new SharedArrayBuffer(CONTROL_BYTES)
    const init: WorkerInit = {
      id,
      style: shape.style,
      sink: locked
        ? { kind: 'locked', share: locked.share }
        : { kind: 'post', inflight, highWaterBytes: postBudget },
      control,
      port: port2,
      follow: !config.once,
      from: config.from,
      maxLineBytes: config.maxLineBytes,
      readChunkBytes: config.readChunkBytes,
      pollIntervalMs: config.pollIntervalMs,
      readConcurrency: config.readConcurrency,
      maxOpenFiles: inputFileBudget(config.threads),
      sweepPerSecond: Math.ceil(SWEEP_NAMES_PER_SECOND / config.threads),
      logLevel: config.logLevel,
      format: config.format ?? 'raw',
      labels: config.labels ?? {},
      timestampFormat: config.timestampFormat,
      timestamps: timestampOptions(config),
    }
    const worker = await new Promise<Worker>((resolve, reject) =>
      pool.acquire(
        WORKER,
        {
          workerData: init,
          transferList: [port2],
          // A following reader's young generation stays small (see gc.ts): 32 MiB each
          // that V8 grew at start-up and kept was most of a thread's resident memory.
          ...(config.once ? {} : { resourceLimits: { maxYoungGenerationSizeMb: FOLLOW_YOUNG_MB } }),
        },
        (err, w) => (err ? reject(err) : resolve(w)),
      ),
    )
    let finished = false
    let markStarted = () => {}
    const started = new Promise<void>((resolve) => {
      markStarted = resolve
    })
    let markLoaded = () => {}
    const loaded = new Promise<void>((resolve) => {
      markLoaded = resolve
    })
    const done = new Promise<readonly string[]>((resolve, reject) => {
      const die = (err: Error) => {
        finished = true
        fail(err)
        reject(err)
      }
      const handle = (msg: FromWorker) => {
        switch (msg.code) {
          case 'log':
            log[msg.level](msg.message)
            return
          case 'block':
            return accept(msg.bytes, msg.mark)
          case 'source': {
            const isNew = !sources.has(msg.key)
            sources.set(msg.key, msg.source)
            sourcesSeen++
            loop?.note(resumeMark(msg.source))
            chain?.opened(msg.key, msg.source.path)
            // A file new to the state is recorded at once, not at the next interval (one the
            // start-up checkpoint has already recorded can wait: 10,000 files opened at start
            // asked for a checkpoint of 10,000 sources each).
            if (isNew) void checkpoints?.save()
            return
          }
          case 'forget':
            sources.delete(msg.key)
            loop?.forget(msg.key)
            return
          case 'released':
            chain?.released(msg.key)
            return
          case 'started':
            return markStarted()
          case 'loaded':
            return markLoaded()
          case 'summary':
            return summaries.answer(id, msg.summary)
          case 'done':
            finished = true
            return resolve(msg.unreadable)
          case 'failed': {
            const where = msg.path ? ` while reading ${msg.path}` : ''
            const cause = rebuildError(msg.error)
            // The output failing in a thread is an output error, not a reader thread's fault.
            if (msg.error.code === 'EOUTPUT_CLOSED' || msg.error.code === 'EOUTPUT_WRITE') {
              return die(new LogmergeError(msg.error.code, cause.message, { cause }))
            }
            return die(threadFailed(`reader thread ${id} failed${where}: ${cause.message}`, cause))
          }
          default:
            return die(
              new Error(
                `reader thread ${id} sent unknown message code ${(msg as { code: string }).code}`,
              ),
            )
        }
      }
      port1.on('message', handle)
      worker.on('error', (err) =>
        die(threadFailed(`reader thread ${id} crashed: ${err.message}`, err)),
      )
      worker.on('exit', (code) => {
        // 'exit' and the port's messages travel apart: take what is still queued first.
        for (let m = receiveMessageOnPort(port1); m && !finished; m = receiveMessageOnPort(port1)) {
          handle(m.message as FromWorker)
        }
        if (!finished)
          die(threadFailed(`reader thread ${id} exited (code ${code}) before finishing`))
      })
    })
    done.catch(() => {}) // observed through `failure`
    const gone = once(worker, 'exit').then(() => undefined)
    const exited = done
      .catch(() => undefined)
      .then(() => Promise.race([gone, sleep(2000, undefined, { ref: false })]))
      .then(() => worker.terminate())
      .then(() => port1.close())
    return {
      id,
      worker,
      port: port1,
      control: new Int32Array(control),
      done,
      started,
      loaded,
      exited,
    }
  }

  /** top-down: a block from a thread goes to this thread's writer; the thread waits while it is behind. */
  function accept(bytes: Uint8Array, mark: SourceMark | undefined): void {
    const release = () => {
      Atomics.sub(inflightCells, 0, bytes.length)
      Atomics.notify(inflightCells, 0)
    }
    const block = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    if (progress) {
      counted.bytes += block.length
      counted.lines += countLines(block)
      progress.update(counted.bytes, counted.lines)
    }
    const full = chain?.sink.write(block, mark)
    if (full) full.then(release, release)
    else release()
  }
}

/** The bytes of `paths` now (the progress bar's total); a file gone meanwhile counts 0. */
async function totalSize(paths: readonly string[]): Promise<number> {
  const sizes = await Promise.all(
    paths.map((p) =>
      stat(p).then(
        (st) => st.size,
        () => 0,
      ),
    ),
  )
  return sizes.reduce((a, b) => a + b, 0)
}

function threadFailed(message: string, cause?: Error): LogmergeError {
  return new LogmergeError('ETHREAD', message, {
    cause,
    hint: 'the other files were drained; this is a bug or a fault of the disk, see the message',
  })
}
