/**
 * How far behind an input logmerge is: in bytes, the file's size now minus the offset up to
 * which its bytes are in the output; in seconds, how long the oldest of those bytes has been
 * waiting, to the precision of the looks (one every few seconds, see job-metrics.ts).
 *
 * The seconds follow a mark: the file's size at the first look that found it behind. While the
 * offset has not reached that mark, the bytes there have waited at least since that look. Once
 * it has, whatever is still unread came after that look: the mark moves to the size now, and
 * the lag counts as 0 (logmerge keeps up with a file that is written all the time: at no look
 * is it exactly at the end, but it always reads what was there at the look before).
 */

export interface Lag {
  readonly bytes: number
  readonly seconds: number
}

export interface LagMark {
  readonly at: number
  readonly size: number
}

/** One look at a file: its size now and our offset in it; `mark` is the last look's. */
export function lagAt(
  now: number,
  size: number,
  offset: number,
  mark: LagMark | null,
): { lag: Lag; mark: LagMark | null } {
  if (offset >= size) return { lag: { bytes: 0, seconds: 0 }, mark: null }
  const bytes = size - offset
  if (mark === null || offset >= mark.size) {
    return { lag: { bytes, seconds: 0 }, mark: { at: now, size } }
  }
  return { lag: { bytes, seconds: Math.max(0, (now - mark.at) / 1000) }, mark }
}
