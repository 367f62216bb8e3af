/** What the daemon needs from an engine: run until done (--once) or until stopped. */
import type { EventEmitter } from 'node:events'
import type { Config } from '../config.js'
import type { Logger } from '../log.js'

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
}

export interface EngineResult {
  /** Input names that could not be read at the end (--once reports them). */
  readonly unreadable: readonly string[]
}

export type Engine = (ctx: EngineContext) => Promise<EngineResult>
