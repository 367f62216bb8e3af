/**
 * The output, checkpoints and SIGHUP of the runs whose event loop owns the writer (the async
 * engine, and `--once --order time` on async and top-down): the writer takes the snapshot and
 * the fsync, the readers (or the merge) name the sources.
 */
import type { EventEmitter } from 'node:events'
import type { Config } from '../config.js'
import type { Logger } from '../log.js'
import { LoopWriter } from '../sink/loop-writer.js'
import { Checkpointer } from '../state/checkpointer.js'
import type { SourceState } from '../tail/source-state.js'

/** The event-loop writer of config.output, and what its failure and checkpoints need. */
export class LoopOutput {
  /** The checkpointer, once the engine made it (loopCheckpointer). */
  checkpoints: Checkpointer | null = null
  /** The output failed for good: the run ends and throws this. */
  fatal: Error | null = null
  readonly #failed = new AbortController()
  #writer: LoopWriter | null = null

  private constructor() {}

  get writer(): LoopWriter {
    if (this.#writer === null) throw new Error('LoopOutput: not open')
    return this.#writer
  }

  /** Aborted when the output has failed for good (nothing more can be written). */
  get failed(): AbortSignal {
    return this.#failed.signal
  }

  static async open(config: Config, log: Logger): Promise<LoopOutput> {
    const out = new LoopOutput()
    out.#writer = await LoopWriter.open(config.output, {
      highWaterBytes: config.highWaterBytes,
      log,
      onFatal: (err) => {
        out.fatal = err
        out.#failed.abort()
      },
      // A file opened while running is recorded at once, not at the next interval.
      onNewSource: () => void out.checkpoints?.save(),
      // An output deleted or replaced meanwhile is opened again; its checkpoint comes first.
      watchMs: config.pollIntervalMs,
      onSwitch: () => out.checkpoints?.save(),
    })
    return out
  }
}

/** The checkpointer of `writer` (null without a state file). */
export function loopCheckpointer(
  config: Config,
  writer: LoopWriter,
  sources: (offsets: ReadonlyMap<string, number>) => SourceState[] | null,
  log: Logger,
): Checkpointer | null {
  if (!config.statePath) return null
  return new Checkpointer(
    config.statePath,
    config.output,
    {
      snapshot: () => writer.snapshot(),
      sources,
      fsync: () => writer.fsync(),
      changes: () => writer.changes,
    },
    log,
  )
}

/**
 * On the daemon's 'reopen' (SIGHUP after logrotate `create`): opens the output path again and
 * checkpoints the new file's identity and size at once. Returns what stops listening.
 */
export function reopenOnRequest(
  events: EventEmitter,
  writer: LoopWriter,
  checkpoints: Checkpointer | null,
  output: string,
  log: Logger,
): () => void {
  const reopen = () => {
    writer
      .reopen()
      .then(() => checkpoints?.save())
      .catch((err: Error) => log.error(`reopening ${output}: ${err.message}`))
  }
  events.on('reopen', reopen)
  return () => events.off('reopen', reopen)
}
