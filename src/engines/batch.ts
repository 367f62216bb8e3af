/**
 * `--once --order time` on the async and top-down engines: the pull merge of batch/merge.ts
 * around the event-loop writer and its checkpoints. A module of its own, which engines/index.ts
 * loads instead of the engine's, so that such a run loads neither the follower (tail-async,
 * the file table, p-limit) nor the reader threads' pool: start-up is part of a --once run's
 * time (docs/time-order.md).
 */

import { readBytesFor, readerThreadChoice } from '../batch/arena-layout.js'
import { OnceTimeMerge, type PlanSource } from '../batch/merge.js'
import { PartThreads } from '../batch/part-threads.js'
import { mergePartitioned, partBytesFor, partitionThreadsFor } from '../batch/partitioned.js'
import type { Plan } from '../batch/plan.js'
import { releasePrestarted } from '../batch/prestart.js'
import type { Config } from '../config.js'
import { Labels } from '../format/labels.js'
import { collectGarbage } from '../gc.js'
import type { Logger } from '../log.js'
import { ProgressBar, wantsProgress } from '../progress/bar.js'
import type { LoopWriter } from '../sink/loop-writer.js'
import { recover } from '../state/recover.js'
import { scanInputs } from '../tail/inputs.js'
import type { SourceState } from '../tail/source-state.js'
import type { EngineContext, EngineResult } from './engine.js'
import { timestampOptions } from './output-chain.js'
import { openLoopOutput } from './output-wiring.js'

/**
 * The batch merge's run, from the state file to the last checkpoint. Its steps are in the
 * order that exactly-once and the reader thread depend on: the merge opens and the first
 * checkpoint is saved before a byte is merged, the partitions go first, the prestarted reader
 * thread is released after the merge closes.
 */
export async function runOnceTime({
  config,
  log,
  stop,
  events,
}: EngineContext): Promise<EngineResult> {
  const recovered = await recover(config.statePath, config.output, log)
  const output = await openLoopOutput(config, log)
  const writer = output.writer
  const paths = await scanInputs(config.inputs, config.output === '-' ? undefined : config.output)
  // After the scan: the bar's clock starts here, so its rate is the merge's.
  const progress = wantsProgress(config) ? new ProgressBar() : null
  /** Both merges report input bytes done of the total, and records written. */
  const onProgress = progress
    ? (done: number, total: number, records: number) => {
        progress.total = total
        progress.update(done, records)
      }
    : undefined
  const merge = newMerge(config, log, paths, recovered.sources, onProgress)
  const checkpoints = output.checkpointer(config, (offsets) => merge.checkpoint(offsets), log)
  const stopReopening = output.reopenOnRequest(events, config.output, log)
  let late = 0
  try {
    try {
      merge.open(writer)
      await checkpoints?.save()
      checkpoints?.start(config.checkpointIntervalMs) // a long --once that is killed resumes
      // The merge stops on SIGTERM/SIGINT, and when the output has failed for good (nothing
      // more can be written: merging on would only waste the time until it is reported).
      const signal = AbortSignal.any([stop, output.failed])
      const parts = await mergeInPartitions(merge, writer, config, log, signal, onProgress)
      late = parts.late
      const finished = parts.finished ?? (await merge.run(writer, signal))
      if (!finished && !output.fatal) stoppedEarly(config.statePath, log)
    } finally {
      await merge.close()
      // The merge did not want the reader thread started for it (small, partitioned, stopped).
      if (await releasePrestarted()) {
        log.debug('--once --order time: the reader thread started with the process was not needed')
      }
    }
    progress?.finish()
    reportLate(late + merge.late, log)
    await writer.drain()
    if (!output.fatal) await checkpoints?.stop()
  } finally {
    stopReopening()
    await writer.close()
  }
  if (output.fatal) throw output.fatal
  return { unreadable: merge.unreadable }
}

/** The merge of `paths` (what the inputs name now, the output excluded), not opened yet. */
function newMerge(
  config: Config,
  log: Logger,
  paths: readonly string[],
  resume: readonly SourceState[],
  onProgress: ((done: number, total: number, records: number) => void) | undefined,
): OnceTimeMerge {
  const labels = new Labels(config.labels ?? {})
  labels.addInitial(paths)
  return new OnceTimeMerge({
    paths,
    from: config.from,
    maxLineBytes: config.maxLineBytes,
    readChunkBytes: config.readChunkBytes,
    format: config.format ?? 'raw',
    labels,
    timestampFormat: config.timestampFormat,
    zone: timestampOptions(config).zone,
    resume,
    log,
    readerThread: readerThreadChoice(),
    onProgress,
  })
}

/** Records written after a later one (both merges count them), said once at the end. */
function reportLate(late: number, log: Logger): void {
  if (late > 0) {
    log.info(
      `--order time: ${late} records came after a later one (their file's own times go back)`,
    )
  }
}

/** More files than this: no partitions (see partitionThreadsWanted). */
const PARTITION_MAX_FILES = 64

/** What each partition thread's reads ask for (its slots: 2 per file, made per partition). */
const PART_READ_BYTES = 256 * 1024

/**
 * The partitioned merge (batch/partitioned.ts), when the machine and the inputs allow it: returns
 * `finished` (true: all written; false: stopped), or undefined when the single merge is to do
 * the rest (no plan, or a partition it could not take), set to go on where the partitions
 * ended.
 */
async function mergeInPartitions(
  merge: OnceTimeMerge,
  writer: LoopWriter,
  config: Config,
  log: Logger,
  stop: AbortSignal,
  onProgress: ((done: number, total: number, records: number) => void) | undefined,
): Promise<{ finished?: boolean; late: number }> {
  const sources = merge.planSources
  const total = sources.reduce((n, s) => n + Math.max(0, s.size - s.start), 0)
  const threads = partitionThreadsWanted(sources.length, total, config, log)
  if (threads === 0) return { late: 0 }
  const planStart = performance.now()
  const plan = await planFor(sources, config, log)
  if (plan === null) return { late: 0 }
  // Only now: a thread terminated while it still loads its modules risks the crash that
  // PartThreads.close avoids for threads at work (and without a plan none is needed).
  const zone = timestampOptions(config).zone
  const pool = new PartThreads(threads, {
    format: config.format ?? 'raw',
    maxLineBytes: config.maxLineBytes,
    readChunkBytes: PART_READ_BYTES,
    ...(zone === undefined ? {} : { zone }),
  })
  log.debug(
    `--once --order time: ${total} bytes in ${plan.partitions.length} partitions, ${threads} threads (planned in ${Math.round(performance.now() - planStart)} ms)`,
  )
  const result = await mergePartitioned(writer, {
    plan,
    sources,
    threads: pool,
    log,
    stop,
    onProgress,
  })
  if (result.outcome === 'fallback') {
    const at = plan.partitions[result.at]
    if (at !== undefined) merge.resumeAt(at.starts, plan.formats, result.maxWritten)
    return { late: result.late }
  }
  collectGarbage() // gc.ts
  return { finished: result.outcome === 'finished', late: result.late }
}

/**
 * How many partition threads to merge `total` bytes of `files` files with: 0 (one merge) when
 * the machine or the inputs do not allow partitions; each reason that is not plain from the
 * sizes is said in the debug log.
 */
function partitionThreadsWanted(files: number, total: number, config: Config, log: Logger): number {
  const threads = partitionThreadsFor(total)
  if (threads < 2 || files < 2) return 0
  // json writes a record longer than the merge joins (1 MiB) or holds (8 MiB) as several
  // objects, cut where its reads happen to end: partitions read from other places.
  // Many files: each thread's read slots would take as much memory as the single merge's.
  if (config.format === 'json' || files > PARTITION_MAX_FILES) {
    log.debug(
      `--once --order time: no partitions (${config.format === 'json' ? '--format json' : `more than ${PARTITION_MAX_FILES} files`}); one merge`,
    )
    return 0
  }
  return threads
}

/** The plan of the partitions (batch/plan.ts, loaded only now), or null: one merge. */
async function planFor(
  sources: readonly PlanSource[],
  config: Config,
  log: Logger,
): Promise<Plan | null> {
  const zone = timestampOptions(config).zone
  let plan: Plan | null
  try {
    const { planPartitions } = await import('../batch/plan.js')
    plan = planPartitions(sources, {
      readBytes: readBytesFor(config.readChunkBytes, sources.length),
      maxLineBytes: config.maxLineBytes,
      ...(config.timestampFormat === undefined ? {} : { timestampFormat: config.timestampFormat }),
      ...(zone === undefined ? {} : { zone }),
      partBytes: partBytesFor(),
    })
  } catch (err) {
    // A read error while planning: the single merge reads and reports it.
    log.debug(`--once --order time: no partitions (${(err as Error).message}); one merge`)
    plan = null
  }
  if (plan === null || plan.partitions.length < 2) {
    log.debug('--once --order time: no partitions (see batch/plan.ts); one merge')
    return null
  }
  return plan
}

/**
 * Stopped by SIGTERM/SIGINT before the end: the output holds a prefix of the merge, in whole
 * records. With a state file a rerun with the same one writes the rest (the final checkpoint
 * records exactly what was written); without, the user should know the output is partial.
 */
function stoppedEarly(statePath: string | null, log: Logger): void {
  if (statePath) {
    log.info(
      `stopped before the end of the merge; run again with --state ${statePath} to finish it`,
    )
  } else {
    log.warn(
      'stopped before the end of the merge: the output holds only its beginning (with --state FILE a rerun would finish it)',
    )
  }
}
