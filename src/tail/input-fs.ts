/**
 * The two ways the readers touch an input name that must never stop them: opening it (a FIFO
 * swapped in after the stat must not block the open forever) and a quick stat in the periodic
 * sweeps (an error there is the name's business, reported when the name is looked at properly);
 * the first bytes of an open input, read at once by both shells; and the directory stamps that
 * tell a search it raced a rename.
 */
import { constants, readSync, type Stats, statSync } from 'node:fs'
import { FINGERPRINT_BYTES } from './cursor.js'
import { BIRTH_CLOCK_SLACK_MS } from './generation-rules.js'

/**
 * Read-only and non-blocking: opening a FIFO for reading otherwise waits for a writer, forever
 * (O_NONBLOCK changes nothing for a regular file; the shells check the fd is one and close it
 * otherwise). See open(2).
 */
export const INPUT_OPEN_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK

/** The open file's first bytes (FINGERPRINT_BYTES, fewer if it is shorter), read now. */
export function readHeadSync(fd: number): Buffer {
  const buf = Buffer.alloc(FINGERPRINT_BYTES)
  return buf.subarray(0, readSync(fd, buf, 0, FINGERPRINT_BYTES, 0))
}

/**
 * statSync that never throws: undefined when there is nothing to stat or the stat fails
 * (EACCES, ELOOP, EIO). A sweep that gets undefined looks at the name again the careful way,
 * which says why once.
 */
export function statQuietly(path: string): Stats | undefined {
  try {
    return statSync(path, { throwIfNoEntry: false })
  } catch {
    return undefined
  }
}

/**
 * What tells a directory search that a rename raced it: the directory's change time moved
 * between its listing and the end of the stats (a generation renamed after the readdir may have
 * been stat'ed under no name at all), or a file opened after its stat is not the file that was
 * stat'ed (renamed away in between, another one renamed in). The selftest's threads run read
 * the rest of a copytruncate copy after the next generation: a restart's search ran while
 * logrotate shifted a.log.1 to a.log.2, so each name it opened held another file and the copy
 * was found only by a later search.
 */
export function changedSince(dir: string, stamp: number | undefined): boolean {
  return stamp !== undefined && directoryStamp(dir) !== stamp
}

/** The directory's change time (entries added, removed, renamed), or -1 when it cannot say. */
export function directoryStamp(dir: string): number {
  return statQuietly(dir)?.ctimeMs ?? -1
}

/**
 * False when no entry of `dir` can have been added, renamed or removed since `since` (ms since
 * epoch): its change time is older, by more than the kernel's coarse clock can lag. A search
 * for generations born since then would find none, so it is not made: without this, every
 * file that filled after being seen empty listed and stat'ed its whole directory (1,000 empty
 * files written once each cost a million stats).
 *
 * `statedAt` (performance.now() once the caller's stat of its file returned): a stat of the
 * directory taken after that still tells, so one made for another file of the same directory
 * is used again (a burst of 10,000 files asks this 10,000 times). One taken before it does not:
 * a copy made between the two would be missed.
 */
export function entriesChangedSince(dir: string, since: number, statedAt: number): boolean {
  let stamp = dirStamps.get(dir)
  if (stamp === undefined || stamp.takenAt <= statedAt) {
    const takenAt = performance.now()
    stamp = { ctimeMs: statQuietly(dir)?.ctimeMs, takenAt }
    if (dirStamps.size >= DIR_STAMPS) dirStamps.clear()
    dirStamps.set(dir, stamp)
  }
  return stamp.ctimeMs === undefined || stamp.ctimeMs >= since - BIRTH_CLOCK_SLACK_MS
}

/** The last stat of each directory entriesChangedSince made, and when it began. */
const dirStamps = new Map<
  string,
  { readonly ctimeMs: number | undefined; readonly takenAt: number }
>()
/** Directories remembered at most (one entry each; cleared when full). */
const DIR_STAMPS = 1024
