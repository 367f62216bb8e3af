/**
 * The main thread's side of the three engines with reader threads (threads, top-down,
 * bottom-up). A fixed number of worker threads from worker-threads-pool (never one per file:
 * the notes' BetterWay57), each owning a shard of the names (reader-threads.ts). Discovery
 * stays here (chokidar) and hands names to their thread. The writer, its checkpoints and SIGHUP
 * are wired as for the async engines (output-wiring.ts). A thread that fails is reported with
 * the file it was at, the others are drained and stopped, and the run ends with an error: never
 * a silent stall.
 */
import { once } from 'node:events'
import { MessageChannel } from 'node:worker_threads'
import Pool from 'worker-threads-pool'
import { Labels } from '../format/labels.js'
import { settleHeap } from '../gc.js'
import { ProgressBar, totalSize, wantsProgress } from '../progress/bar.js'
import { LockedWriter } from '../sink/locked-writer.js'
import { sourcesAt, toldLines } from '../state/checkpointer.js'
import { type Recovered, recover, resumeMark } from '../state/recover.js'
import { Discovery } from '../tail/discovery.js'
import { inputFileBudget, openFileLimit } from '../tail/fd-budget.js'
import { SWEEP_NAMES_PER_SECOND } from '../tail/file-table.js'
import { scanInputs } from '../tail/inputs.js'
import { prescan, resumePoints } from '../tail/prescan.js'
import type { SourceState } from '../tail/source-state.js'
import type { Engine, EngineContext, EngineResult } from './engine.js'
import { EventBatches } from './event-batches.js'
import { type OutputChain, outputChain, timestampOptions } from './output-chain.js'
import { type EventLoopWriter, openFollowOutput, WriterOutput } from './output-wiring.js'
import { PostedBlocks } from './posted-blocks.js'
import type { WorkerInit } from './protocol.js'
import { type Shard, send, startShard, type ThreadEvents } from './reader-threads.js'
import { shardOf } from './shard.js'
import { ThreadSources } from './thread-sources.js'
import { ReaderSummaries, threadedView } from './view.js'

/** A following reader thread's young generation (MiB; see gc.ts). */
const FOLLOW_YOUNG_MB = 4
/**
 * Descriptors one thread's module loader may hold at once (it reads its ~100 modules' files
 * concurrently), with room to spare: threads load together only when the soft ulimit -n has
 * this many for each thread and the main thread.
 */
const LOADER_FDS = 128

export interface ThreadedShape {
  /** The reader shell inside each thread. */
  readonly style: 'sync' | 'async'
  /** locked: every thread writes under the shared lock; loop: threads post to this thread. */
  readonly writer: 'locked' | 'loop'
}

export function threadedEngine(shape: ThreadedShape): Engine {
  return (ctx) => runThreaded(ctx, shape)
}

async function runThreaded(ctx: EngineContext, shape: ThreadedShape): Promise<EngineResult> {
  // top-down --once --order time does not come here: the merge pulls from every file in turn
  // on the main thread, as on the async engine (engines/index.ts, batch.ts).
  const { config } = ctx
  const recovered = await recover(config.statePath, config.output, ctx.log)
  const output = await openThreadedOutput(ctx, shape)
  return new ThreadedRun(ctx, shape, output).run(recovered)
}

type ThreadedOutput = WriterOutput<LockedWriter> | WriterOutput<EventLoopWriter>

/**
 * locked: the writer every thread writes to under the lock. loop (top-down): the event-loop
 * writer; the threads' own post budget is in front of it, so a small queue is enough, and the
 * threads' 'source' messages ask for the checkpoint of a new file (see ThreadedRun.#source).
 * A nats:// output (a fleet host) is always this thread's: the threads post their blocks to
 * its publisher, whatever the engine's writer.
 */
function openThreadedOutput(
  { config, log }: EngineContext,
  shape: ThreadedShape,
): Promise<ThreadedOutput> {
  if (shape.writer === 'loop' || config.fleet?.role === 'host') {
    return openFollowOutput(config, log, {
      highWaterBytes: postBudgetOf(config.maxLineBytes),
      checkpointNewSources: false,
    })
  }
  return WriterOutput.open(
    (hooks) =>
      LockedWriter.open(config.output, config.threads, (m) => log.warnOnce('output-retry', m), {
        log,
        intervalMs: config.pollIntervalMs,
        onSwitch: hooks.checkpoint,
      }),
    (writer) => writer.sync(),
  )
}

/**
 * top-down: bytes the threads may have posted and not yet handed to the writer. Small, since
 * the writer has its own queue behind it (two 16 MiB queues in a row doubled the memory).
 */
const postBudgetOf = (maxLineBytes: number) => Math.max(4 * 1024 * 1024, 2 * maxLineBytes)

/** One run of a thread engine: its output, its threads, and what they told it. */
class ThreadedRun {
  readonly #ctx: EngineContext
  /** Before prescan's first look: the readers' start (see ReaderOptions.startedAt). */
  readonly #startedAt = Date.now()
  readonly #shape: ThreadedShape
  readonly #output: ThreadedOutput
  readonly #locked: LockedWriter | null
  readonly #loop: EventLoopWriter | null
  /** top-down: what stands before the writer (--order time, --format), and the progress bar. */
  readonly #chain: OutputChain | null
  readonly #labels: Labels
  readonly #progress: ProgressBar | null
  /** What the threads told us about each file they opened, for checkpoints (see thread-sources.ts). */
  readonly #sources: ThreadSources
  /** top-down: the blocks the threads post to the writer (see posted-blocks.ts). */
  readonly #posted: PostedBlocks | null
  readonly #failed = new AbortController()
  #failure: Error | null = null
  readonly #pool: Pool
  readonly #shards: Shard[] = []
  /** The threads were sent 'stop' (each then ends by itself). */
  #stopping = false
  /** Metrics (when on): the threads' table summaries, asked for on a slow timer. */
  readonly #summaries: ReaderSummaries

  constructor(ctx: EngineContext, shape: ThreadedShape, output: ThreadedOutput) {
    const { config, log, observe } = ctx
    this.#ctx = ctx
    this.#shape = shape
    this.#output = output
    const writer = output.writer
    this.#locked = writer instanceof LockedWriter ? writer : null
    this.#loop = writer instanceof LockedWriter ? null : writer
    const loop = this.#loop
    this.#chain = loop ? outputChain(config, loop) : null
    const chain = this.#chain
    this.#sources = new ThreadSources({
      forget: loop ? (key) => loop.forget(key) : undefined,
      note: loop ? (mark) => loop.note(mark) : undefined,
      opened: chain ? (key, path) => chain.opened(key, path) : undefined,
      save: () => void this.#output.checkpoints?.save(),
    })
    if (this.#locked) this.#locked.ownerOf = (key) => this.#sources.ownerOf(key)
    this.#labels = this.#chain?.labels ?? new Labels(config.labels ?? {})
    this.#progress = this.#loop && wantsProgress(config) ? new ProgressBar() : null
    this.#posted = this.#chain ? new PostedBlocks(this.#chain.sink, this.#progress) : null
    // The loop writer failing for good ends the run as a thread's failure does.
    if (output.failed.aborted) this.#fail(output.fatal as Error)
    else output.failed.addEventListener('abort', () => this.#fail(output.fatal as Error))
    const locked = this.#locked
    const lines = toldLines(this.#sources.states)
    const checkpoints = output.checkpointer(
      config,
      (offsets) => sourcesAt(this.#sources.states, offsets),
      log,
      () => this.#sources.seen,
      locked ? () => locked.stateLines(lines) : undefined,
    )
    this.#pool = new Pool({ max: config.threads })
    this.#summaries = new ReaderSummaries(() => {
      if (this.#stopping) return 0
      for (const shard of this.#shards) send(shard, { code: 'summary' })
      return this.#shards.length
    })
    observe?.(
      threadedView(
        writer,
        this.#sources.states,
        () => this.#sources.seen,
        checkpoints,
        this.#summaries,
      ),
    )
  }

  #fail(err: Error): void {
    if (this.#failure) return
    this.#failure = err // reported once, by the daemon, when the run ends
    this.#failed.abort()
  }

  async run(recovered: Recovered): Promise<EngineResult> {
    const { config, log, events } = this.#ctx
    const stopReopening = this.#output.reopenOnRequest(events, config.output, log)
    let discovery: Discovery | null = null
    try {
      // The threads load their modules together when descriptors allow (LOADER_FDS each and
      // the main thread's), while the main thread finds the inputs and decides where each
      // starts (prescan opens one file at a time): waiting for the threads first put their
      // start-up and the main thread's one after the other (4 threads: spawn to the first
      // byte of a catch-up 0.50-0.67 s; 10,000 files took the main thread's ~0.3 s more).
      // Under a low ulimit -n they load one at a time, and no input is opened before all
      // have (see 'loaded'): the module loader reads many files at once, and two threads
      // doing so beside the main thread's descriptors ran out under ulimit -n 64 (EMFILE on
      // a module); one at a time, 4 threads took 0.5-1.5 s more to start.
      const together = openFileLimit() >= LOADER_FDS * (config.threads + 1)
      for (let id = 0; id < config.threads && !this.#failed.signal.aborted; id++) {
        const shard = await this.#startShard(id)
        this.#shards.push(shard)
        if (!together) await Promise.race([shard.loaded, once(this.#failed.signal, 'abort')])
      }
      // Each thread's heap, once made, lets the young generation of this one grow again
      // (capYoungAgain, gc.ts): its start-up work begins once they are all made (10,000 files:
      // 134 MiB resident after ready instead of 151-155, ready no later).
      const online = Promise.all(this.#shards.map((s) => s.online))
      await Promise.race([online, once(this.#failed.signal, 'abort')])
      if (this.#failure) throw this.#failure
      const batches = new EventBatches((path) => this.#route(path))
      discovery = await this.#discover(batches)
      await this.#startUp(recovered)
      if (together && !this.#failed.signal.aborted) {
        const loaded = Promise.all(this.#shards.map((s) => s.loaded))
        await Promise.race([loaded, once(this.#failed.signal, 'abort')])
      }
      if (this.#failure) throw this.#failure
      batches.start()
      this.#output.checkpoints?.start(config.checkpointIntervalMs) // also --once: a long one that is killed resumes
      if (!config.once) {
        await this.#followUntilStopped()
        log.debug('stopping: closing discovery')
        await discovery?.close()
      }
      batches.stop() // events seen before the stop, ahead of it
      return await this.#finish()
    } finally {
      // Thrown before the threads were told to stop (a bug, or an error on the way): they would
      // wait for 'stop' forever, and this for them. Their unwritten lines are after the last
      // checkpoint, so the next start reads them again.
      if (!this.#stopping) for (const shard of this.#shards) void shard.worker.terminate()
      // A failure after discovery started (a reader thread failing in its start-up pass)
      // skips the close above: its watchers then kept the process alive, and a daemon whose
      // job failed exited only at the shutdown timeout, with its code (the multi-job test: 6,
      // not 5, 1 run in 30 under load).
      await discovery?.close()
      stopReopening()
      await this.#loop?.close()
      this.#locked?.close()
      log.debug('stopping: output closed; waiting for the threads to exit')
      // Threads end on their own after 'done'; one that does not (it failed) is terminated.
      // (pool.destroy would use the deprecated callback form of worker.terminate.)
      await Promise.all(this.#shards.map((s) => s.exited))
    }
  }

  #route(path: string): Shard {
    return this.#shards[shardOf(path, this.#shards.length)] as Shard
  }

  /** Discovery's events, for the threads (none for --once). */
  #discover(batches: EventBatches): Promise<Discovery | null> {
    const { config, log } = this.#ctx
    if (config.once) return Promise.resolve(null)
    const exclude = config.output === '-' ? undefined : config.output
    return Discovery.start(
      config.inputs,
      {
        changedName: (path) => batches.add('resolve', path),
        changedData: (path) => batches.add('changed', path),
      },
      { exclude, log, pollMs: config.pollIntervalMs },
    )
  }

  /**
   * Every file present now starts where the state says, or where --from says: decided and
   * checkpointed before any thread reads, so no crash can leave unaccounted bytes. Then each
   * thread gets its names and their resume points.
   */
  async #startUp(recovered: Recovered): Promise<void> {
    const { config } = this.#ctx
    const exclude = config.output === '-' ? undefined : config.output
    const paths = new Map<Shard, string[]>(this.#shards.map((s) => [s, []]))
    const found = await scanInputs(config.inputs, exclude)
    for (const path of found) paths.get(this.#route(path))?.push(path)
    this.#labels.addInitial(found)
    if (this.#progress) this.#progress.total = await totalSize(found)
    let remembered = recovered.sources
    const checkpoints = this.#output.checkpoints
    if (checkpoints) {
      const { sources: had, previousStart } = recovered
      remembered = resumePoints(
        had,
        await prescan([...paths.values()].flat(), had, config.from, previousStart, undefined, (m) =>
          this.#ctx.log.debug(m),
        ),
      )
      for (const s of remembered) {
        this.#sources.started(s)
        // With the fingerprint of its offset (see async.ts): the threads' 'source' messages
        // carry the current one, which may already be a truncated file's new first bytes.
        this.#output.writer.note(resumeMark(s))
      }
      await checkpoints.save()
    }
    const resume = new Map<Shard, SourceState[]>(this.#shards.map((s) => [s, []]))
    for (const source of remembered) resume.get(this.#route(source.path))?.push(source)
    for (const shard of this.#shards) {
      send(shard, {
        code: 'start',
        paths: paths.get(shard) ?? [],
        remembered: resume.get(shard) ?? [],
        labels: this.#labels.table(),
      })
    }
  }

  /** Says ready once every thread follows its files, then waits for the stop or a failure. */
  async #followUntilStopped(): Promise<void> {
    const ended = AbortSignal.any([this.#ctx.stop, this.#failed.signal])
    // Ready once every thread follows its files (see 'started'): said when only the threads
    // had been told to start, a file a thread had not looked at yet began at whatever size
    // it had grown to by then (--from end), and lines written after "ready" were skipped.
    const allStarted = Promise.all(this.#shards.map((s) => s.started))
    if (!ended.aborted) await Promise.race([allStarted, once(ended, 'abort')])
    // Where the start-up pass left every file, saved before "ready" (see settleHeap in gc.ts).
    if (!ended.aborted) await this.#output.checkpoints?.save()
    this.#ctx.events.emit('ready')
    settleHeap() // the start-up's garbage, before following (gc.ts)
    if (!ended.aborted) await once(ended, 'abort')
  }

  /** Stops the threads (they read what is left), then writes and checkpoints the rest. */
  async #finish(): Promise<EngineResult> {
    this.#stopping = true
    for (const shard of this.#shards) send(shard, { code: 'stop', flush: this.#ctx.config.once })
    this.#ctx.log.debug(`stopping: ${this.#shards.length} reader thread(s) told to stop`)
    const unreadable = (await Promise.all(this.#shards.map((s) => s.done.catch(() => [])))).flat()
    this.#ctx.log.debug('stopping: every reader thread done')
    this.#chain?.finish() // what the time order holds, before the final checkpoint
    this.#progress?.finish()
    await this.#loop?.drain()
    if (this.#failure) throw this.#failure
    await this.#output.checkpoints?.stop()
    return { unreadable }
  }

  #startShard(id: number): Promise<Shard> {
    const { config, log } = this.#ctx
    // top-down: the written blocks' memory goes back to the thread (see PostSink in worker.ts).
    const posted = this.#posted
    const returns = posted ? new MessageChannel() : null
    returns?.port1.unref()
    const init: Omit<WorkerInit, 'control' | 'port'> = {
      id,
      style: this.#shape.style,
      sink: !posted
        ? { kind: 'locked', share: (this.#locked as LockedWriter).share }
        : {
            kind: 'post',
            inflight: posted.inflight.buffer as SharedArrayBuffer,
            highWaterBytes: postBudgetOf(config.maxLineBytes),
            returns: (returns as MessageChannel).port2,
          },
      follow: !config.once,
      from: config.from,
      startedAt: this.#startedAt,
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
    const events: ThreadEvents = {
      log,
      block: (bytes, mark) => posted?.accept(bytes, mark, returns?.port1 ?? null),
      source: (key, source) => this.#sources.told(key, source, id),
      forget: (key) => this.#sources.forgot(key, id),
      released: (key) => this.#chain?.released(key),
      summary: (thread, summary) => this.#summaries.answer(thread, summary),
      fail: (err) => this.#fail(err),
    }
    // A following reader's young generation stays small (see gc.ts): 32 MiB each that V8 grew
    // at start-up and kept was most of a thread's resident memory.
    return startShard(this.#pool, init, config.once ? null : FOLLOW_YOUNG_MB, events)
  }
}
