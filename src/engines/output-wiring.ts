/**
 * The writer's wiring that every engine shares: whichever writer it opens (the event-loop
 * writer, or the locked writer of the thread engines), its fatal failure ends the run, its
 * checkpointer takes the writer's snapshot and fsync while the engine names the sources, a
 * switch to a new output file is checkpointed before a byte goes to it, and SIGHUP opens the
 * output path again. One copy, so the engines cannot drift apart on exactly-once. A fleet
 * host's output (nats://) is the fleet publisher in the event-loop writer's place (openFollowOutput).
 */
import type { EventEmitter } from 'node:events'
import type { Config } from '../config.js'
import type { Publisher } from '../fleet/publisher.js'
import type { Logger } from '../log.js'
import { LoopWriter } from '../sink/loop-writer.js'
import type { Snapshot, StateLines } from '../sink/sink.js'
import { Checkpointer } from '../state/checkpointer.js'
import type { SourceState } from '../tail/source-state.js'

/** What checkpoints and SIGHUP need of a writer (LoopWriter and LockedWriter both offer it). */
export interface CheckpointedWriter {
  snapshot(): Snapshot
  /** A count that moves with every change a checkpoint would record. */
  readonly changes: number
  /** Opens the output path again: at once (locked writer) or once switched (event loop). */
  reopen(): Promise<void> | void
}

/** What a writer being opened is given to call (see WriterOutput.open). */
export interface WriterHooks {
  /** The output failed for good: nothing more can be written. */
  fatal(err: Error): void
  /** A checkpoint now (after a switch to a new file, for a new source); none before there is a checkpointer. */
  checkpoint(): Promise<void> | undefined
}

/** The writer of config.output, its checkpointer, and its failure. */
export class WriterOutput<W extends CheckpointedWriter> {
  /** The checkpointer, once the engine made it (see checkpointer()). */
  checkpoints: Checkpointer | null = null
  /** The output failed for good: the run ends and throws this. */
  fatal: Error | null = null
  readonly #failed = new AbortController()
  #writer: W | null = null
  #fsync: () => Promise<void> = async () => {}

  private constructor() {}

  get writer(): W {
    if (this.#writer === null) throw new Error('WriterOutput: not open')
    return this.#writer
  }

  /** Aborted when the output has failed for good (nothing more can be written). */
  get failed(): AbortSignal {
    return this.#failed.signal
  }

  /**
   * Opens a writer with `open`, which gets the hooks to pass it; `fsync` makes what it has
   * written durable (without waiting for what is queued: a snapshot covers written bytes only).
   */
  static async open<W extends CheckpointedWriter>(
    open: (hooks: WriterHooks) => W | Promise<W>,
    fsync: (writer: W) => Promise<void>,
  ): Promise<WriterOutput<W>> {
    const out = new WriterOutput<W>()
    const writer = await open({
      fatal: (err) => {
        out.fatal = err
        out.#failed.abort()
      },
      checkpoint: () => out.checkpoints?.save(),
    })
    out.#writer = writer
    out.#fsync = () => fsync(writer)
    return out
  }

  /**
   * The checkpointer of this writer (null without a state file), kept in `checkpoints`:
   * `sources` names the sources at the writer's offsets; `moreChanges` counts changes the
   * writer does not see (the thread engines' 'source' messages); `stateLines`, when given,
   * takes a checkpoint's lines in place of snapshot and sources (Checkpointable.stateLines).
   */
  checkpointer(
    config: Config,
    sources: (offsets: ReadonlyMap<string, number>) => SourceState[] | null,
    log: Logger,
    moreChanges: () => number = () => 0,
    stateLines?: () => StateLines | null,
  ): Checkpointer | null {
    if (!config.statePath) return null
    const writer = this.writer
    this.checkpoints = new Checkpointer(
      config.statePath,
      config.output,
      {
        snapshot: () => writer.snapshot(),
        sources,
        fsync: this.#fsync,
        changes: () => writer.changes + moreChanges(),
        ...(stateLines && { stateLines }),
      },
      log,
    )
    return this.checkpoints
  }

  /**
   * On the daemon's 'reopen' (SIGHUP after logrotate `create`): opens the output path again and
   * checkpoints the new file's identity and size at once. Returns what stops listening.
   */
  reopenOnRequest(events: EventEmitter, output: string, log: Logger): () => void {
    const failed = (err: Error) => log.error(`reopening ${output}: ${err.message}`)
    const reopen = () => {
      let switched: Promise<void> | void
      try {
        switched = this.writer.reopen()
      } catch (err) {
        failed(err as Error)
        return
      }
      if (switched) switched.then(() => this.checkpoints?.save()).catch(failed)
      else void this.checkpoints?.save()
    }
    events.on('reopen', reopen)
    return () => events.off('reopen', reopen)
  }
}

/** How the event-loop writer is opened (see openLoopOutput). */
export interface LoopOutputHow {
  /** Queued bytes past which write() returns a promise (default: config.highWaterBytes). */
  readonly highWaterBytes?: number
  /** A file opened while running is checkpointed at once (default true; the thread engines ask themselves). */
  readonly checkpointNewSources?: boolean
}

/** The event-loop writer of config.output (async, top-down, --once --order time). */
export function openLoopOutput(
  config: Config,
  log: Logger,
  how: LoopOutputHow = {},
): Promise<WriterOutput<LoopWriter>> {
  return WriterOutput.open(
    (hooks) =>
      LoopWriter.open(config.output, {
        highWaterBytes: how.highWaterBytes ?? config.highWaterBytes,
        log,
        onFatal: hooks.fatal,
        // A file opened while running is recorded at once, not at the next interval.
        ...(how.checkpointNewSources === false
          ? {}
          : { onNewSource: () => void hooks.checkpoint() }),
        // An output deleted or replaced meanwhile is opened again; its checkpoint comes first.
        watchMs: config.pollIntervalMs,
        onSwitch: hooks.checkpoint,
      }),
    (writer) => writer.fsync(),
  )
}

/**
 * What a following run writes to on the main event loop: the output file, or for a nats://
 * output the fleet publisher (the same sink interface, with checkpoints of what the stream
 * acknowledged: docs/fleet.md).
 */
export type EventLoopWriter = LoopWriter | Publisher

/**
 * The event-loop output of a run that is not --once --order time (async; top-down; and every
 * thread engine of a fleet host, whose threads then post their blocks to this thread): for a
 * nats:// output the fleet publisher, loaded only then; otherwise openLoopOutput's file.
 * (--order time with a nats:// output is refused by the options, so the batch merge never
 * meets a publisher.)
 */
export async function openFollowOutput(
  config: Config,
  log: Logger,
  how: LoopOutputHow = {},
): Promise<WriterOutput<EventLoopWriter>> {
  if (config.fleet?.role !== 'host') return openLoopOutput(config, log, how)
  const { Publisher } = await import('../fleet/publisher.js')
  return WriterOutput.open(
    (hooks) =>
      Publisher.open(config, {
        log,
        onFatal: hooks.fatal,
        ...(how.checkpointNewSources !== false && { onNewSource: () => void hooks.checkpoint() }),
        // A new generation's id is in a saved checkpoint before its first byte is published.
        ...(config.statePath && { persist: async () => hooks.checkpoint() }),
      }),
    (writer) => writer.fsync(),
  )
}
