/**
 * The four engines: the two migration paths of the notes' BetterWay62 side by side.
 *   top-down:  threads -> top-down -> async
 *   bottom-up: threads -> bottom-up -> async
 * Each is only an arrangement of the same reader core, shells and writers.
 */
import type { EngineName } from '../config.js'
import { runAsync } from './async.js'
import type { Engine } from './engine.js'
import { threadedEngine } from './threaded.js'

export const engines: Record<EngineName, Engine> = {
  /** run_threads: blocking readers in threads, writing under a lock. */
  threads: threadedEngine({ style: 'sync', writer: 'locked' }),
  /** run_tasks_mixed: blocking readers in threads, the async main thread owns the writer. */
  'top-down': threadedEngine({ style: 'sync', writer: 'loop' }),
  /** tail_file wrapping tail_async: the threads unchanged, each running the async reader. */
  'bottom-up': threadedEngine({ style: 'async', writer: 'locked' }),
  /** run_tasks: one event loop, no threads, no lock. */
  async: runAsync,
}
