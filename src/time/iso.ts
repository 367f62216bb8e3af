/**
 * ISO 8601 / RFC 3339 timestamps read straight from the bytes: the parser that every other
 * format with an ISO time inside (RFC 5424 syslog, JSON strings) reuses.
 *
 * Accepted: `YYYY-MM-DD`, a `T`, `t` or space, `hh:mm:ss`, an optional fraction of any length
 * after `.` or `,` (Python's logging writes a comma), and an optional zone: `Z`, `+hh:mm`,
 * `+hhmm`, `+hh` (or `-`), also after one space (`08:07:01 +0000`). Without a zone the time is
 * wall-clock time in the parser's default zone (UTC unless told otherwise).
 */

import { COLON, COMMA, DOT, digitAt, fourDigits, MINUS, PLUS, SPACE, twoDigits } from './bytes.js'
import {
  daysFromCivil,
  isValidDate,
  MS_PER_DAY,
  MS_PER_HOUR,
  MS_PER_MINUTE,
  type WallClock,
} from './calendar.js'

const UPPER_T = 0x54
const LOWER_T = 0x74
const UPPER_Z = 0x5a
const LOWER_Z = 0x7a
const ZERO = 0x30

/** Shortest ISO timestamp we accept: `YYYY-MM-DDThh:mm:ss`. */
export const ISO_MIN_LENGTH = 19

/**
 * One file's ISO parser. It remembers the epoch of the last hour it saw, with that hour's
 * bytes (`YYYY-MM-DDThh`, 13 bytes) as three 32-bit words and a byte: log lines come in runs
 * of the same hour, so most lines cost four loads and compares, then the minutes, seconds and
 * fraction, instead of the calendar arithmetic. The words are read through a DataView of the
 * current buffer (made once per buffer: a block holds thousands of lines).
 */
export class IsoScanner {
  readonly #clock: WallClock
  #view: DataView | null = null
  #viewOf: Buffer | null = null
  #hour0 = -1
  #hour1 = -1
  #hour2 = -1
  #hour3 = -1
  #hourMs = 0

  constructor(clock: WallClock) {
    this.#clock = clock
  }

  /**
   * The time of the ISO timestamp that starts exactly at buf[i] and lies within buf[i, end),
   * in ms since the epoch; NaN when there is none.
   */
  at(buf: Buffer, i: number, end: number): number {
    if (end - i < ISO_MIN_LENGTH) return Number.NaN
    const view = this.#viewFor(buf)
    if (
      view.getUint32(i) !== this.#hour0 ||
      view.getUint32(i + 4) !== this.#hour1 ||
      view.getUint32(i + 8) !== this.#hour2 ||
      view.getUint8(i + 12) !== this.#hour3
    ) {
      if (!this.#learnHour(buf, view, i)) return Number.NaN
    }
    // Bytes i .. i+18 lie inside the buffer (checked above): plain loads, no fallbacks.
    const m1 = (buf[i + 14] as number) - ZERO
    const m2 = (buf[i + 15] as number) - ZERO
    const s1 = (buf[i + 17] as number) - ZERO
    const s2 = (buf[i + 18] as number) - ZERO
    if (buf[i + 13] !== COLON || buf[i + 16] !== COLON) return Number.NaN
    // `x >>> 0 > 9` is false exactly for the digits 0..9 (negatives wrap to huge numbers).
    if (m1 >>> 0 > 5 || m2 >>> 0 > 9 || s1 >>> 0 > 6 || s2 >>> 0 > 9) return Number.NaN
    const seconds = s1 * 10 + s2
    if (seconds > 60) return Number.NaN
    let p = i + ISO_MIN_LENGTH
    let micros = 0
    const mark = buf[p]
    if ((mark === DOT || mark === COMMA) && p + 1 < end) {
      const first = p + 1
      let scale = 100_000
      for (p = first; p < end; p++) {
        const d = (buf[p] as number) - ZERO
        if (d >>> 0 > 9) break
        micros += d * scale
        scale = (scale / 10) | 0
      }
      if (p === first) p = i + ISO_MIN_LENGTH // a dot without digits: no fraction
    }
    const wall = this.#hourMs + ((m1 * 10 + m2) * 60 + seconds) * 1000
    const zone = buf[p]
    const offset = p < end && (zone === UPPER_Z || zone === LOWER_Z) ? 0 : zoneOffsetMs(buf, p, end)
    const whole = Number.isNaN(offset) ? this.#clock.toEpoch(wall) : wall - offset
    return micros === 0 ? whole : whole + micros / 1000
  }

  #viewFor(buf: Buffer): DataView {
    if (buf !== this.#viewOf || this.#view === null) {
      this.#view = new DataView(buf.buffer, buf.byteOffset, buf.length)
      this.#viewOf = buf
    }
    return this.#view
  }

  /** Parses and remembers `YYYY-MM-DDThh` at buf[i]; false when it is not a valid one. */
  #learnHour(buf: Buffer, view: DataView, i: number): boolean {
    const year = fourDigits(buf, i)
    const month = twoDigits(buf, i + 5)
    const day = twoDigits(buf, i + 8)
    const hour = twoDigits(buf, i + 11)
    const sep = buf[i + 10]
    if (year < 0 || month < 0 || day < 0 || hour < 0 || hour > 23) return false
    if (buf[i + 4] !== MINUS || buf[i + 7] !== MINUS) return false
    if (sep !== UPPER_T && sep !== LOWER_T && sep !== SPACE) return false
    if (!isValidDate(year, month, day)) return false
    this.#hourMs = daysFromCivil(year, month, day) * MS_PER_DAY + hour * MS_PER_HOUR
    this.#hour0 = view.getUint32(i)
    this.#hour1 = view.getUint32(i + 4)
    this.#hour2 = view.getUint32(i + 8)
    this.#hour3 = view.getUint8(i + 12)
    return true
  }
}

/** `hh:mm:ss` at buf[i] as ms since midnight, or -1. A leap second (:60) is accepted. */
export function timeOfDayMs(buf: Buffer, i: number): number {
  const h = twoDigits(buf, i)
  const m = twoDigits(buf, i + 3)
  const s = twoDigits(buf, i + 6)
  if (h < 0 || m < 0 || s < 0 || buf[i + 2] !== COLON || buf[i + 5] !== COLON) return -1
  if (h > 23 || m > 59 || s > 60) return -1
  return ((h * 60 + m) * 60 + s) * 1000
}

/**
 * The zone at buf[p] as an offset east of UTC in ms: `Z`, `+hh:mm`, `+hhmm`, `+hh`, or one of
 * the numeric forms after a single space. NaN when there is no zone (wall-clock time).
 */
export function zoneOffsetMs(buf: Buffer, p: number, end: number): number {
  if (p >= end) return Number.NaN
  const c = buf[p]
  if (c === UPPER_Z || c === LOWER_Z) return 0
  if (c === PLUS || c === MINUS) return numericOffsetMs(buf, p, end)
  if (c === SPACE && p + 1 < end) {
    const next = buf[p + 1]
    // After a space only the full forms count: `08:07:01 +12 retries` is not a zone.
    // Nothing at or past `end` is read: it is the line's newline in the merge, but the rest of
    // a line cut at --max-line-bytes where the partition planner scans the file (batch/plan.ts).
    const full =
      (p + 4 < end && buf[p + 4] === COLON) ||
      (p + 5 < end && digitAt(buf, p + 4) >= 0 && digitAt(buf, p + 5) >= 0)
    if ((next === PLUS || next === MINUS) && full) return numericOffsetMs(buf, p + 1, end)
  }
  return Number.NaN
}

/** `+hh:mm`, `+hhmm` or `+hh` at buf[p] (or `-`), or NaN. */
function numericOffsetMs(buf: Buffer, p: number, end: number): number {
  const hours = p + 3 <= end ? twoDigits(buf, p + 1) : -1
  if (hours < 0 || hours > 23) return Number.NaN
  let minutes = 0
  if (p + 3 < end && buf[p + 3] === COLON && p + 6 <= end) minutes = twoDigits(buf, p + 4)
  else if (p + 5 <= end && digitAt(buf, p + 3) >= 0) minutes = twoDigits(buf, p + 3)
  if (minutes < 0 || minutes > 59) return Number.NaN
  const sign = buf[p] === MINUS ? -1 : 1
  return sign * (hours * 60 + minutes) * MS_PER_MINUTE
}
