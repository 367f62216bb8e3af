/** What the daemon needs from an engine: run until done (--once) or until stopped. */
import type { EventEmitter } from 'node:events'
import type { Config } from '../config.js'
import type { Logger } from '../log.js'
import type { OutputHealth, Snapshot } from '../sink/sink.js'
import type { Checkpointer } from '../state/checkpointer.js'
import { identityKey } from '../tail/cursor.js'
import type { SourceState } from '../tail/source-state.js'
import type { TableSummary } from '../tail/tracked.js'

export interface EngineContext {
  readonly config: Config
  readonly log: Logger
  /** Aborted when the daemon wants the engine to drain and stop (SIGTERM, SIGINT). */
  readonly stop: AbortSignal
  /**
   * The daemon emits 'reopen' when the output should be opened again (SIGHUP after logrotate).
   * The engine emits 'ready' once it follows its inputs (output open, state recovered, files
   * opened where the state or --from says): the daemon tells systemd (READY=1) when every job is.
   */
  readonly events: EventEmitter
  /**
   * With metrics on (--metrics-listen, --metrics-file): the engine shows what its writer and
   * readers know, once both exist. Read-only, and only when a scrape or a timer asks.
   */
  readonly observe?: (view: EngineView) => void
}

/** What an engine shows the metrics (docs/service.md, "Monitoring"). */
export interface EngineView {
  /** The writer's per-source offsets and stats and the output size, at one instant. */
  snapshot(): Snapshot
  /** Moves whenever snapshot() would differ: an idle sample costs one comparison. */
  changes(): number
  /** The name each of these sources (identity keys) was last seen under, where known. */
  paths(keys: ReadonlyMap<string, number>): ReadonlyMap<string, string>
  /** What the writer wrote, its failed writes and its pauses. */
  health(): OutputHealth
  /** The job's checkpoints (null without a state file). */
  readonly checkpoints: Checkpointer | null
  /** Each reader's files open, parked and missing and events per name; late answers left out. */
  readers(): Promise<readonly TableSummary[]>
}

export interface EngineResult {
  /** Input names that could not be read at the end (--once reports them). */
  readonly unreadable: readonly string[]
}

export type Engine = (ctx: EngineContext) => Promise<EngineResult>

/** Identity key -> path of the sources a checkpoint lists (EngineView.paths). */
export const pathsOf = (sources: readonly SourceState[]): Map<string, string> =>
  new Map(sources.map((s) => [identityKey(s), s.path]))
