/**
 * What the engines show the metrics (EngineView): their writer's snapshot and health, the
 * path of each source, the checkpointer, and their readers' table summaries. Built here, so an
 * engine only names its parts: the engines are rearranged often, the metrics should not care.
 */
import type { LockedWriter } from '../sink/locked-writer.js'
import type { Checkpointer } from '../state/checkpointer.js'
import type { SourceState } from '../tail/source-state.js'
import type { TableSummary } from '../tail/tracked.js'
import { type EngineView, pathsOf } from './engine.js'
import type { EventLoopWriter } from './output-wiring.js'

/** How long a scrape waits for a reader thread's summary before it uses the last one. */
const ANSWER_MS = 1000

/** One event loop owns writer and readers (async): everything is at hand. */
export function loopView(
  writer: EventLoopWriter,
  follower: {
    checkpoint(offsets: ReadonlyMap<string, number>): SourceState[]
    summary(): TableSummary
  },
  checkpoints: Checkpointer | null,
): EngineView {
  return {
    snapshot: () => writer.snapshot(),
    changes: () => writer.changes,
    paths: (keys) => pathsOf(follower.checkpoint(keys)),
    health: () => writer.health(),
    checkpoints,
    readers: async () => [follower.summary()],
  }
}

/**
 * Reader threads (threads, top-down, bottom-up): the writer is here (locked or event-loop), the
 * paths come with the threads' 'source' messages, the summaries are asked for (ReaderSummaries).
 */
export function threadedView(
  writer: LockedWriter | EventLoopWriter,
  sources: ReadonlyMap<string, SourceState>,
  sourcesSeen: () => number,
  checkpoints: Checkpointer | null,
  summaries: ReaderSummaries,
): EngineView {
  return {
    snapshot: () => writer.snapshot(),
    changes: () => writer.changes + sourcesSeen(),
    paths: (keys) => {
      const out = new Map<string, string>()
      for (const key of keys.keys()) {
        const path = sources.get(key)?.path
        if (path !== undefined) out.set(key, path)
      }
      return out
    },
    health: () => writer.health(),
    checkpoints,
    readers: () => summaries.get(),
  }
}

/**
 * The reader threads' table summaries: asked for with a message to every thread, answered by
 * each with a 'summary' message. A thread busy in a long read, or held by a full disk, answers
 * late: its last summary stands meanwhile, and the asker does not wait for it.
 */
export class ReaderSummaries {
  readonly #last = new Map<number, TableSummary>()
  /** Sends the question to every thread still running; how many were asked. */
  readonly #ask: () => number
  #answered: (() => void) | null = null

  constructor(ask: () => number) {
    this.#ask = ask
  }

  /** Thread `thread` answered. */
  answer(thread: number, summary: TableSummary): void {
    this.#last.set(thread, summary)
    this.#answered?.()
  }

  async get(): Promise<TableSummary[]> {
    if (this.#answered === null) {
      let left = this.#ask()
      const all = new Promise<void>((resolve) => {
        this.#answered = () => {
          if (--left <= 0) resolve()
        }
        if (left === 0) resolve()
      })
      const timer = new AbortController()
      const late = new Promise<void>((resolve) => {
        const t = setTimeout(resolve, ANSWER_MS)
        t.unref()
        timer.signal.addEventListener('abort', () => clearTimeout(t))
      })
      await Promise.race([all, late])
      timer.abort()
      this.#answered = null
    }
    return [...this.#last.values()]
  }
}
