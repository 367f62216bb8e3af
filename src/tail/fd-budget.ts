/**
 * How many input files a reader may hold open at once. More files than the process may open
 * (`ulimit -n`, RLIMIT_NOFILE) are still followed: the readers close the idlest ones and reopen
 * them by name when they change (see FileTable.park). The budget leaves room for everything else
 * that needs a descriptor: Node itself, each reader thread's event loop, the output, inotify,
 * state saves, directory scans and module loads; running out of those breaks far more than a
 * read (a lazy `require` fails with MODULE_NOT_FOUND).
 */
import { readFileSync } from 'node:fs'

/** Descriptors Node and logmerge's main thread use besides the inputs (about 22 measured). */
const RESERVE_BASE = 32
/** Each reader thread's event loop, message ports and wake-up pipes (about 4 measured). */
const RESERVE_PER_THREAD = 6
/** Room for what comes and goes (state saves, scans): a share of the limit. */
const RESERVE_SHARE = 0.1
/** Never fewer than this per reader, whatever the limit says. */
const MIN_PER_READER = 4

/**
 * The soft limit on open files of this process, from /proc/self/limits (Node raises it to the
 * hard limit at start-up), or Infinity where it cannot be read.
 */
export function openFileLimit(read = () => readFileSync('/proc/self/limits', 'latin1')): number {
  let text: string
  try {
    text = read()
  } catch {
    return Number.POSITIVE_INFINITY
  }
  const soft = /^Max open files\s+(\d+|unlimited)/m.exec(text)?.[1]
  return soft === undefined || soft === 'unlimited' ? Number.POSITIVE_INFINITY : Number(soft)
}

/** Input files each of `readers` readers (reader threads, or 1) may hold open at once. */
export function inputFileBudget(readers: number, limit = openFileLimit()): number {
  if (!Number.isFinite(limit)) return Number.POSITIVE_INFINITY
  const reserve = RESERVE_BASE + RESERVE_PER_THREAD * readers + Math.ceil(limit * RESERVE_SHARE)
  return Math.max(MIN_PER_READER, Math.floor((limit - reserve) / readers))
}

/**
 * How many idle files a reader parks when its budget is used up: an eighth of what it holds
 * (at most the budget) at once, so that parking is rare, and at least one.
 */
export const parkBatch = (budget: number, held: number): number =>
  Math.max(1, Math.ceil(Math.min(budget, held) / 8))
