/**
 * The `async` engine (the notes' `run_tasks`, where both migration paths end): every reader runs
 * on the main event loop, chokidar wakes them, p-limit bounds the reads in flight, and the
 * event-loop writer owns the output. No threads, no lock.
 */
import { once } from 'node:events'
import pLimit from 'p-limit'
import type { Config } from '../config.js'
import { settleHeap } from '../gc.js'
import type { Logger } from '../log.js'
import { ProgressBar, totalSize, wantsProgress } from '../progress/bar.js'
import type { BlockSink } from '../sink/sink.js'
import type { Checkpointer } from '../state/checkpointer.js'
import { recover, resumeMark, toRemembered } from '../state/recover.js'
import { countLines } from '../tail/cursor.js'
import { Discovery } from '../tail/discovery.js'
import { scanInputs } from '../tail/inputs.js'
import { type KeepOpen, prescan, resumePoints } from '../tail/prescan.js'
import { AsyncFollower } from '../tail/tail-async.js'
import type { EngineContext, EngineResult } from './engine.js'
import { type OutputChain, outputChain } from './output-chain.js'
import { openFollowOutput } from './output-wiring.js'
import { loopView } from './view.js'

/**
 * The async engine's run, from the state file to the last checkpoint. Longer than most
 * functions here (about 65 lines) because it is the one place that shows the order of the
 * start-up (state, output, follower, checkpoints, resume points) and of the end (drain, time
 * order, final checkpoint), which exactly-once depends on; the two ways through it are
 * readOnce and followUntilStopped.
 */
export async function runAsync({
  config,
  log,
  stop,
  events,
  observe,
}: EngineContext): Promise<EngineResult> {
  const recovered = await recover(config.statePath, config.output, log)
  const output = await openFollowOutput(config, log)
  const writer = output.writer
  const chain = outputChain(config, writer)
  const progress = wantsProgress(config) ? new ProgressBar() : null
  const follower = asyncFollower(config, log, chain, progress)
  const checkpoints = output.checkpointer(config, (offsets) => follower.checkpoint(offsets), log)
  observe?.(loopView(writer, follower, checkpoints))
  const stopReopening = output.reopenOnRequest(events, config.output, log)
  const exclude = config.output === '-' ? undefined : config.output
  /** Files prescan leaves open for the start-up pass (see KeepOpen). */
  const kept: KeepOpen = { max: follower.openBudget, files: new Map() }
  /**
   * Every file present now starts where the state says, or where --from says: decided and
   * checkpointed before the first byte is written, so no crash can leave unaccounted bytes.
   */
  const resumeFrom = async (paths: readonly string[]) => {
    if (!checkpoints) return
    const { sources, previousStart } = recovered
    const found = await prescan(paths, sources, config.from, previousStart, kept, (m) =>
      log.debug(m),
    )
    const all = resumePoints(sources, found)
    follower.remember(toRemembered(all))
    // Each with the fingerprint of its offset: a checkpoint must not pair this offset with the
    // reader's newer fingerprint (after a truncation) before a block moves it.
    for (const s of all) writer.note(resumeMark(s))
    await checkpoints.save()
  }
  const run: AsyncRun = {
    config,
    follower,
    chain,
    progress,
    checkpoints,
    exclude,
    kept,
    resumeFrom,
  }
  try {
    if (config.once) await readOnce(run)
    else await followUntilStopped(run, log, events, AbortSignal.any([stop, output.failed]))
    if (!config.once) {
      if (!output.fatal) await follower.catchUp() // drain: what was appended before the signal
      await follower.close(false)
      chain.finish() // what the time order holds, before the final checkpoint
    }
    progress?.finish()
    if (chain.late > 0) log.info(`--order time: ${chain.late} lines came later than the window`)
    await writer.drain()
    if (!output.fatal) await checkpoints?.stop()
  } finally {
    stopReopening()
    await writer.close()
  }
  if (output.fatal) throw output.fatal
  return { unreadable: follower.unreadable }
}

/** The event-loop reader of every input, writing to `chain` (counted for the progress bar). */
function asyncFollower(
  config: Config,
  log: Logger,
  chain: OutputChain,
  progress: ProgressBar | null,
): AsyncFollower {
  return new AsyncFollower({
    follow: !config.once,
    from: config.from,
    maxLineBytes: config.maxLineBytes,
    readChunkBytes: config.readChunkBytes,
    quietMs: 2 * config.pollIntervalMs,
    pollMs: config.pollIntervalMs,
    sink: progress ? countingSink(chain.sink, progress) : chain.sink,
    limit: pLimit(config.readConcurrency),
    log,
    onSource: (file) => chain.opened(file.key, file.path),
    onRelease: (file) => chain.released(file.key),
  })
}

/** What the two ways through runAsync (--once, following) share. */
interface AsyncRun {
  readonly config: Config
  readonly follower: AsyncFollower
  readonly chain: OutputChain
  readonly progress: ProgressBar | null
  readonly checkpoints: Checkpointer | null
  readonly exclude: string | undefined
  readonly kept: KeepOpen
  /** Where each file present now starts, checkpointed before the first byte is written. */
  readonly resumeFrom: (paths: readonly string[]) => Promise<void>
}

/** --once: every file read to its end, the rotated ones first. */
async function readOnce(run: AsyncRun): Promise<void> {
  const { config, follower, chain, progress } = run
  const paths = await scanInputs(config.inputs, run.exclude)
  chain.labels.addInitial(paths)
  if (progress) progress.total = await totalSize(paths)
  await run.resumeFrom(paths)
  run.checkpoints?.start(config.checkpointIntervalMs) // a long --once that is killed resumes
  await follower.findRotated(paths)
  await follower.start(paths, run.kept.files)
  await follower.catchUp()
  await follower.close(true)
  chain.finish()
}

/** Following: discovery wakes the readers, the sweep goes round, until `ended`. */
async function followUntilStopped(
  run: AsyncRun,
  log: Logger,
  events: EngineContext['events'],
  ended: AbortSignal,
): Promise<void> {
  const { config, follower, chain } = run
  const discovery = await Discovery.start(
    config.inputs,
    {
      changedName: (p) => void follower.resolve(p),
      changedData: (p) => void follower.changed(p),
    },
    { exclude: run.exclude, log, pollMs: config.pollIntervalMs },
  )
  try {
    const paths = await scanInputs(config.inputs, run.exclude)
    chain.labels.addInitial(paths)
    await run.resumeFrom(paths)
    // Files rotated while we were down are finished first, then the names are followed.
    await follower.findRotated(paths)
    await follower.start(paths, run.kept.files)
    // Where the start-up pass left every file, saved before "ready" (see settleHeap in gc.ts).
    if (!ended.aborted) await run.checkpoints?.save()
    run.checkpoints?.start(config.checkpointIntervalMs)
    events.emit('ready')
    settleHeap() // the start-up's garbage, before following (gc.ts)
    const sweep = setInterval(() => follower.sweep(), config.pollIntervalMs)
    try {
      if (!ended.aborted) await once(ended, 'abort')
    } finally {
      clearInterval(sweep)
    }
  } finally {
    await discovery.close()
  }
}

/** Arrival order with a progress bar: counts the bytes and lines on their way to the writer. */
function countingSink(sink: BlockSink, progress: ProgressBar): BlockSink {
  let bytes = 0
  let lines = 0
  return {
    write: (block, mark, done) => {
      bytes += block.length
      lines += countLines(block)
      progress.update(bytes, lines)
      return sink.write(block, mark, done)
    },
    note: (mark) => sink.note?.(mark),
    forget: (key) => sink.forget?.(key),
  }
}
