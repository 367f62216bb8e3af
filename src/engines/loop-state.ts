/**
 * The output, checkpoints and SIGHUP of the runs whose event loop owns the writer (the async
 * engine, and `--once --order time` on async and top-down): the writer takes the snapshot and
 * the fsync, the readers (or the merge) name the sources.
 */
import type { EventEmitter } from 'node:events'
import type { Config } from '../config.js'
import type { Publisher } from '../fleet/publisher.js'
import type { Logger } from '../log.js'
import { LoopWriter } from '../sink/loop-writer.js'
import { Checkpointer } from '../state/checkpointer.js'
import type { SourceState } from '../tail/source-state.js'

/**
 * What the engines use of their event-loop writer: the file writer, or the fleet publisher of
 * a nats:// output (the same sink interface, with checkpoints of what the stream acknowledged).
 */
export type OutputWriter = LoopWriter | Publisher

/** The event-loop writer of config.output, and what its failure and checkpoints need. */
export class LoopOutput {
  /** The checkpointer, once the engine made it (loopCheckpointer). */
  checkpoints: Checkpointer | null = null
  /** The output failed for good: the run ends and throws this. */
  fatal: Error | null = null
  readonly #failed = new AbortController()
  #writer: OutputWriter | null = null

  private constructor() {}

  get writer(): OutputWriter {
    if (this.#writer === null) throw new Error('LoopOutput: not open')
    return this.#writer
  }

  /** The writer of an output file (--once --order time writes only to files). */
  get fileWriter(): LoopWriter {
    const w = this.writer
    if (!(w instanceof LoopWriter)) throw new Error('LoopOutput: the output is not a file')
    return w
  }

  /** Aborted when the output has failed for good (nothing more can be written). */
  get failed(): AbortSignal {
    return this.#failed.signal
  }

  static async open(config: Config, log: Logger): Promise<LoopOutput> {
    const out = new LoopOutput()
    const onFatal = (err: Error) => {
      out.fatal = err
      out.#failed.abort()
    }
    out.#writer = await openOutputWriter(config, log, onFatal, () => out.checkpoints)
    return out
  }
}

/**
 * The event-loop writer of config.output: a file (LoopWriter), or for a nats:// output the
 * fleet publisher (loaded only then). `checkpoints` is the engine's, once it made it.
 */
export async function openOutputWriter(
  config: Config,
  log: Logger,
  onFatal: (err: Error) => void,
  checkpoints: () => { save(): Promise<void> } | null,
  highWaterBytes = config.highWaterBytes,
): Promise<OutputWriter> {
  if (config.fleet?.role === 'host') {
    const { Publisher } = await import('../fleet/publisher.js')
    return Publisher.open(config, {
      log,
      onFatal,
      onNewSource: () => void checkpoints()?.save(),
      ...(config.statePath && { persist: async () => checkpoints()?.save() }),
    })
  }
  return LoopWriter.open(config.output, {
    highWaterBytes,
    log,
    onFatal,
    // A file opened while running is recorded at once, not at the next interval.
    onNewSource: () => void checkpoints()?.save(),
    // An output deleted or replaced meanwhile is opened again; its checkpoint comes first.
    watchMs: config.pollIntervalMs,
    onSwitch: () => checkpoints()?.save(),
  })
}

/** The checkpointer of `writer` (null without a state file). */
export function loopCheckpointer(
  config: Config,
  writer: OutputWriter,
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
  writer: OutputWriter,
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
