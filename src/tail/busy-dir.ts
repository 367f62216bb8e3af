/**
 * When a watched directory is too busy for its change events, and what a look at it found.
 *
 * inotify reports every write(2): a writer logging a line at a time makes one event a line, and
 * a directory watch cannot be told to leave data events out. Measured on the 2-vCPU machine,
 * eight writers at full speed made 0.83 events a line, and only receiving them (an empty
 * callback) cost 0.52 CPU-s per million lines, before any reading. So a directory whose events
 * come faster than BUSY_EVENTS in a WINDOW_MS is no longer watched but looked at every
 * POLL_MS: one stat of each of its files (at most POLL_MAX_FILES of them), and the files that
 * changed are read. Once a look has found nothing new for QUIET_POLLS in a row, it is watched
 * again (and looked at once more, for what came in between). Lines of a busy directory wait
 * POLL_MS at most; a quiet one keeps the event's sub-millisecond delivery.
 *
 * Pure: the counting and the comparison. Discovery does the watching and the stats.
 */

/** The span events are counted over (ms). */
export const WINDOW_MS = 100
/** Events in one window that make a directory busy: 2,000 a second. */
export const BUSY_EVENTS = 200
/** How often a busy directory is looked at (ms). */
export const POLL_MS = 10
/** Looks in a row that find nothing new before the directory is watched again. */
export const QUIET_POLLS = 20
/**
 * A directory with more files than this is never polled: a look would cost more stats than
 * its events cost (and one busy file among 10,000 would make every look stat them all).
 */
export const POLL_MAX_FILES = 64

/** Counts a directory's events; says when they come too fast. */
export class EventRate {
  readonly #busy: number
  #windowStart = 0
  #count = 0

  /** `busy`: events in a window that make it busy (default BUSY_EVENTS). */
  constructor(busy = BUSY_EVENTS) {
    this.#busy = busy
  }

  /** An event at `now` (ms): true when this one makes the current window busy. */
  hit(now: number): boolean {
    if (now - this.#windowStart >= WINDOW_MS) {
      this.#windowStart = now
      this.#count = 0
    }
    return ++this.#count === this.#busy
  }

  reset(): void {
    this.#count = 0
  }
}

/** What a look needs of a file (a subset of fs.Stats). */
export interface FileLook {
  readonly ino: number
  readonly size: number
  readonly mtimeMs: number
}

/** What changed between two looks at a directory's wanted files. */
export interface LookDiff {
  /** Names that appeared, went away or lead to another file: look at them again. */
  readonly names: string[]
  /** Files written to (or truncated): read them. */
  readonly data: string[]
}

/** Compares two looks (path -> what was seen; a path missing from one is absent there). */
export function compareLooks(
  before: ReadonlyMap<string, FileLook>,
  now: ReadonlyMap<string, FileLook>,
): LookDiff {
  const names: string[] = []
  const data: string[] = []
  for (const [path, seen] of now) {
    const had = before.get(path)
    if (!had || had.ino !== seen.ino) names.push(path)
    else if (had.size !== seen.size || had.mtimeMs !== seen.mtimeMs) data.push(path)
  }
  for (const path of before.keys()) if (!now.has(path)) names.push(path)
  return { names, data }
}
