/**
 * The reader thread of a big `--once --order time` run, started first thing (bin/logmerge
 * calls prestartReaderThread before the CLI's modules load), so that the thread's start-up
 * overlaps the main thread's instead of following it.
 *
 * Why: on the benchmark machine the main thread reaches the merge ~130 ms after the process
 * starts (70 ms Node, the rest loading the CLI), and a reader thread started then needs
 * another ~57 ms (an isolate, its own modules) before its first block: ~6% of a 512 MiB merge
 * that takes ~0.95 s in all, spent waiting. Started at ~75 ms, it is waiting for its work by
 * the time the merge asks.
 *
 * The guess comes from the command line alone, before it is parsed: `--once`, `--order time`,
 * and the files among the arguments (those that stat as regular files; an option's value that
 * happens to be one only makes the guess larger) adding up to what wantsReaderThread wants.
 * The merge takes the thread if it chooses a reader thread after all (takePrestarted);
 * whatever did not take it lets it go before the process ends (releasePrestarted): the thread
 * is asked to end and ends by itself, never terminated while it may still be loading (see
 * part-threads.ts for what terminating a busy thread once did to Node 20).
 */
import { statSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { busyCoresNow } from './busy-cores.js'

const THREAD = fileURLToPath(new URL('./reader-thread.js', import.meta.url))

/** Below this many bytes to read, starting a thread (~40 ms) costs more than it saves. */
export const THREAD_MIN_BYTES = 64 * 1024 * 1024

/**
 * Whether a reader thread should read and parse `totalBytes`: enough bytes, and room for both
 * threads (`cores` minus the `load` other work keeps busy, busy-cores.ts, leaves 1.5 cores). The thread saves
 * the main thread a third of its work but costs more CPU in all; on a machine whose cores are
 * busy it only competes with the main thread (4 x 128 MiB on 2 shared
 * cores, median wall time with and without it: 2.11 s and 1.52 s at load 3.8; 1.66 s and
 * 1.79 s at load 1.8).
 */
export function wantsReaderThread(totalBytes: number, cores: number, load: number): boolean {
  return totalBytes >= THREAD_MIN_BYTES && cores - load >= 1.5
}

/** The prestarted thread, until taken or released. */
let waiting: { worker: Worker; failed: boolean; exited: Promise<void> } | null = null

/**
 * Starts the reader thread if `argv` (process.argv) looks like a --once --order time run big
 * enough for one; `env.LOGMERGE_READER_THREAD` (on/off, see readerThreadChoice) decides first.
 */
export function prestartReaderThread(
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): boolean {
  if (waiting !== null || !wantsPrestart(argv.slice(2), env)) return false
  const worker = new Worker(THREAD, { workerData: null })
  // Not waited for: an idle prestarted thread must not keep the process alive.
  worker.unref()
  const entry = {
    worker,
    failed: false,
    exited: new Promise<void>((resolve) => worker.once('exit', () => resolve())),
  }
  // Until taken, a failure only means the merge starts a thread of its own.
  worker.on('error', () => {
    entry.failed = true
  })
  void entry.exited.then(() => {
    entry.failed = true
  })
  waiting = entry
  return true
}

/** The prestarted thread, now the caller's (its listeners, ref() and init), or null. */
export function takePrestarted(): Worker | null {
  const entry = waiting
  waiting = null
  if (entry === null) return null
  if (entry.failed) return null
  entry.worker.removeAllListeners('error')
  entry.worker.ref()
  return entry.worker
}

/**
 * Lets a prestarted thread nobody took go: it ends by itself. Resolves once it has, with
 * whether there was one.
 */
export async function releasePrestarted(): Promise<boolean> {
  const entry = waiting
  waiting = null
  if (entry === null) return false
  entry.worker.ref() // else the process may end first, and Node then stops it
  entry.worker.postMessage({ code: 'exit' })
  await entry.exited
  return true
}

/** The arguments (without node and the script) ask for a merge worth a prestarted thread. */
export function wantsPrestart(args: readonly string[], env: NodeJS.ProcessEnv): boolean {
  const choice = env.LOGMERGE_READER_THREAD
  if (choice === 'off' || !args.includes('--once')) return false
  const ordered = args.some(
    (a, i) => a === '--order=time' || (a === '--order' && args[i + 1] === 'time'),
  )
  if (!ordered) return false
  if (choice === 'on') return true
  return wantsReaderThread(fileBytes(args), availableParallelism(), busyCoresNow())
}

/** Options whose value is a path that is not an input. */
const NOT_INPUTS = new Set(['-o', '--output', '--state', '--config'])

/**
 * The sizes of the arguments that are regular files, added up (others count nothing, nor the
 * output: an append-mode output grows past any threshold).
 */
export function fileBytes(args: readonly string[]): number {
  let bytes = 0
  for (const [i, arg] of args.entries()) {
    if (arg.startsWith('-') || NOT_INPUTS.has(args[i - 1] ?? '')) continue
    try {
      const st = statSync(arg, { throwIfNoEntry: false })
      if (st?.isFile()) bytes += st.size
    } catch {
      // Unreadable directory on the way: the merge reports it.
    }
  }
  return bytes
}
