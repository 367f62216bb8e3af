/**
 * A file as the partition planner (plan.ts) reads it: any line at any offset, with its time,
 * through a small window of the file, and the binary search for where a time bound falls in a
 * sorted file. Apart from the plan because this is the reading (windows, long lines, a last
 * line without a newline, a line cut at --max-line-bytes as the merge cuts it); the plan only
 * asks for times at offsets.
 */
import { readSync } from 'node:fs'
import type { LineTimes } from '../time/timestamps.js'

/** Bytes a probe of the binary search reads at once (more when a line is longer). */
const WINDOW_BYTES = 4096
/** Below this much left, the binary search reads the range line by line. */
const SCAN_BYTES = 4096
/** A probe that finds no timestamp in this many bytes gives the plan up. */
const PROBE_LIMIT = 4 * 1024 * 1024
const NEWLINE = 0x0a

/** A file without a timestamp where a probe looked for one: no plan. */
export class Unplannable extends Error {}

/**
 * A file as the binary search reads it: lines at any offset, through a window of the file
 * (a probe reads a few lines; the last steps read on from the same window).
 */
export class ProbedFile {
  readonly #fd: number
  readonly #times: LineTimes
  readonly #maxLineBytes: number
  #buf = Buffer.allocUnsafe(WINDOW_BYTES)
  /** The file offset of #buf[0] and how many bytes of it are the file's. */
  #at = 0
  #len = 0

  constructor(fd: number, times: LineTimes, maxLineBytes: number) {
    this.#fd = fd
    this.#times = times
    this.#maxLineBytes = maxLineBytes
  }

  /**
   * The first line starting in [from, limit) whose time parses (`from` a line start): its
   * offset, time and the offset just past it; null when none does.
   */
  leaderFrom(from: number, limit: number): { at: number; time: number; next: number } | null {
    let at = from
    while (at < limit) {
      const end = this.#lineEnd(at)
      if (end < 0) return null
      const time = this.#scan(at - this.#at, end - this.#at)
      if (!Number.isNaN(time)) return { at, time, next: end + 1 }
      at = end + 1
      if (at - from > PROBE_LIMIT) throw new Unplannable()
    }
    return null
  }

  /**
   * The time of the line at #buf[start, end) as the merge reads it: its first piece at
   * --max-line-bytes, and followed by a newline. When the line is cut there, or is the file's
   * last without a newline, the parser would see other bytes after it here; it gets a copy.
   */
  #scan(start: number, end: number): number {
    const cut = Math.min(end, start + this.#maxLineBytes - 1)
    if (cut < this.#len && this.#buf[cut] === NEWLINE)
      return this.#times.scan(this.#buf, start, cut)
    const line = Buffer.allocUnsafe(cut - start + 1)
    this.#buf.copy(line, 0, start, cut)
    line[cut - start] = NEWLINE
    return this.#times.scan(line, 0, cut - start)
  }

  /** The first line start at or after `offset` (`offset` itself when it is `lineStart`), or -1. */
  lineStartFrom(offset: number, lineStart: number): number {
    if (offset <= lineStart) return lineStart
    const end = this.#lineEnd(offset - 1)
    return end < 0 ? -1 : end + 1
  }

  /**
   * The file offset of the first newline at or after `at` (or the file's end, for a last line
   * without one), with the bytes from `at` to it in the window; -1 at the end of the file.
   */
  #lineEnd(at: number): number {
    if (at < this.#at || at >= this.#at + this.#len) this.#fill(at)
    if (this.#len === 0) return -1
    for (;;) {
      const nl = this.#buf.indexOf(NEWLINE, at - this.#at)
      if (nl >= 0 && nl < this.#len) return this.#at + nl
      // The line goes on past the window: start the window at the line, larger if need be.
      const had = this.#at + this.#len - at
      if (had > PROBE_LIMIT) throw new Unplannable()
      if (at > this.#at) this.#fill(at)
      else if (!this.#grow()) return this.#at + this.#len // the last line, no newline
      if (this.#at + this.#len - at === had) return this.#at + this.#len
    }
  }

  #fill(at: number): void {
    this.#at = at
    this.#len = readSync(this.#fd, this.#buf, 0, this.#buf.length, at)
  }

  /** Doubles the window, read on; false at the end of the file. */
  #grow(): boolean {
    const grown = Buffer.allocUnsafe(this.#buf.length * 2)
    this.#buf.copy(grown, 0, 0, this.#len)
    this.#buf = grown
    const n = readSync(this.#fd, grown, this.#len, grown.length - this.#len, this.#at + this.#len)
    this.#len += n
    return n > 0
  }
}

/**
 * The offset of the first line in [lo, hi) whose time is after `bound`, or `hi` when none is
 * (`lo` a line start). A binary search that is exact for a sorted file.
 */
export function boundaryIn(file: ProbedFile, bound: number, lo: number, hi: number): number {
  const start = lo
  let answer = hi
  while (hi - lo > SCAN_BYTES) {
    const half = lo + Math.floor((hi - lo) / 2)
    const mid = file.lineStartFrom(half, start)
    const leader = mid < 0 || mid >= hi ? null : file.leaderFrom(mid, hi)
    if (leader === null) {
      hi = half // no leader starts in [half, hi)
    } else if (leader.time > bound) {
      answer = leader.at
      hi = half // none in [mid, leader.at) either
    } else {
      lo = leader.next
    }
  }
  let at = lo
  while (at < hi) {
    const leader = file.leaderFrom(at, hi)
    if (leader === null) break
    if (leader.time > bound) return leader.at
    at = leader.next
  }
  return answer
}
