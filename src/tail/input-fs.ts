/**
 * The two ways the readers touch an input name that must never stop them: opening it (a FIFO
 * swapped in after the stat must not block the open forever) and a quick stat in the periodic
 * sweeps (an error there is the name's business, reported when the name is looked at properly).
 */
import { constants, type Stats, statSync } from 'node:fs'

/**
 * Read-only and non-blocking: opening a FIFO for reading otherwise waits for a writer, forever
 * (O_NONBLOCK changes nothing for a regular file; the shells check the fd is one and close it
 * otherwise). See open(2).
 */
export const INPUT_OPEN_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK

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
