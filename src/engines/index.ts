/**
 * The four engines: the two migration paths of the notes' BetterWay62 side by side.
 *   top-down:  threads -> top-down -> async
 *   bottom-up: threads -> bottom-up -> async
 * Each is only an arrangement of the same reader core, shells and writers. Loaded on demand,
 * so a run pays only for the engine it uses; `--once --order time` on the two engines that
 * take it (async, top-down) is the pull merge of batch.ts, loaded without either engine.
 */
import type { EngineName } from '../config.js'
import type { Engine } from './engine.js'

const threaded = async (style: 'sync' | 'async', writer: 'locked' | 'loop'): Promise<Engine> =>
  (await import('./threaded.js')).threadedEngine({ style, writer })

/** `engine`, except for --once --order time, which runs the merge of batch.ts. */
const orOnceTime =
  (engine: () => Promise<Engine>): (() => Promise<Engine>) =>
  async () =>
  async (ctx) => {
    if (ctx.config.once && ctx.config.order === 'time') {
      return (await import('./batch.js')).runOnceTime(ctx)
    }
    return (await engine())(ctx)
  }

export const engines: Record<EngineName, () => Promise<Engine>> = {
  /** run_threads: blocking readers in threads, writing under a lock. */
  threads: () => threaded('sync', 'locked'),
  /** run_tasks_mixed: blocking readers in threads, the async main thread owns the writer. */
  'top-down': orOnceTime(() => threaded('sync', 'loop')),
  /** tail_file wrapping tail_async: the threads unchanged, each running the async reader. */
  'bottom-up': () => threaded('async', 'locked'),
  /** run_tasks: one event loop, no threads, no lock. */
  async: orOnceTime(async () => (await import('./async.js')).runAsync),
}
