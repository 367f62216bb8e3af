/**
 * What both reader shells are configured with (tail-async.ts and tail-sync.ts add their own
 * writer and, for the event loop, the limit on reads in flight): one list, so the two cannot
 * drift apart in what an option means.
 */
import type { Logger } from '../log.js'
import type { Tracked } from './tracked.js'

export interface ReaderOptions {
  /** False for --once: nothing will appear later, so say so differently. */
  readonly follow: boolean
  /** Where a file present at start-up begins; files that appear later begin at 0. */
  readonly from: 'start' | 'end'
  readonly maxLineBytes: number
  readonly readChunkBytes: number
  /** A file that lost its name is closed once it has been quiet this long. */
  readonly quietMs: number
  /** How often the owner calls sweep() (ms; default 1000): the sweep's pace follows from it. */
  readonly pollMs?: number
  /** Names the sweep stats a second at most (default SWEEP_NAMES_PER_SECOND: a reader's share). */
  readonly sweepPerSecond?: number
  /** Shortest time between two reads of a file that keeps changing (default FOLD_MS; see Pacer). */
  readonly foldMs?: number
  readonly log: Logger
  /** Called when a file is opened (reader threads tell the main thread, for checkpoints). */
  readonly onSource?: (file: Tracked<unknown>) => void
  /** Called when a file is let go (read to its end and closed): --order time ends its source. */
  readonly onRelease?: (file: Tracked<unknown>) => void
  /**
   * When the run began (ms since epoch, default: when the reader is made): a file born after it
   * that the reader does not know is a generation nobody has read (generation-rules.ts). It must
   * be no later than the run's first look at the inputs (prescan). The thread engines pass the
   * main thread's clock, taken before prescan: a reader thread is made after its modules load,
   * and a generation born and rotated away in between was found by neither that run's prescan
   * (not born yet) nor its readers (born before they began), only by the next run, after the
   * generations that followed it (the soak on top-down, 2026-12-07).
   */
  readonly startedAt?: number
  /** Input files held open at once at most (default: this process's share, see fd-budget.ts). */
  readonly maxOpenFiles?: number
  /** Tests only: called after a directory search lists `dir`, to rename things under it. */
  readonly searchHook?: (dir: string) => void
  /** Tests only: called just before a name is opened after its stat, to rotate it in between. */
  readonly openHook?: (path: string) => void
}
