/**
 * Checkpoints and SIGHUP for the runs whose event loop owns the writer (the async engine, and
 * `--once --order time` on async and top-down): the writer takes the snapshot and the fsync,
 * the readers (or the merge) name the sources.
 */
import type { EventEmitter } from 'node:events'
import type { Config } from '../config.js'
import type { Logger } from '../log.js'
import type { LoopWriter } from '../sink/loop-writer.js'
import type { SourceState } from '../state/checkpoint.js'
import { Checkpointer } from '../state/checkpointer.js'

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
