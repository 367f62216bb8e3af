/**
 * ISO 8601 / RFC 3339 timestamps read straight from the bytes: the parser that every other
 * format with an ISO time inside (RFC 5424 syslog, JSON strings) reuses.
 *
 * Accepted: `YYYY-MM-DD`, a `T`, `t` or space, `hh:mm:ss`, an optional fraction of any length
 * after `.` or `,` (Python's logging writes a comma), and an optional zone: `Z`, `+hh:mm`,
 * `+hhmm`, `+hh` (or `-`), also after one space (`08:07:01 +0000`). Without a zone the time is
 * wall-clock time in the parser's default zone (UTC unless told otherwise).
 */

import {
  daysFromCivil,
  isValidDate,
  MS_PER_DAY,
  MS_PER_MINUTE,
  type WallClock,
} from './calendar.js'
import {
  COLON,
  COMMA,
  DOT,
  digitAt,
  fourDigits,
  fractionMicros,
  MINUS,
  PLUS,
  SPACE,
  skipDigits,
  twoDigits,
} from './scan.js'

const UPPER_T = 0x54
const LOWER_T = 0x74
const UPPER_Z = 0x5a
const LOWER_Z = 0x7a

/** Shortest ISO timestamp we accept: `YYYY-MM-DDThh:mm:ss`. */
export const ISO_MIN_LENGTH = 19

/**
 * One file's ISO parser. It caches the epoch of the last date it saw: log lines come in runs
 * of the same day, so most lines cost a comparison instead of the calendar arithmetic.
 */
export class IsoScanner {
  readonly #clock: WallClock
  #cachedDateKey = -1
  #cachedDayMs = 0

  constructor(clock: WallClock) {
    this.#clock = clock
  }

  /**
   * The time of the ISO timestamp that starts exactly at buf[i] and lies within buf[i, end),
   * in ms since the epoch; NaN when there is none.
   */
  at(buf: Buffer, i: number, end: number): number {
    if (end - i < ISO_MIN_LENGTH) return Number.NaN
    const dayMs = this.#dayMs(buf, i)
    if (Number.isNaN(dayMs)) return Number.NaN
    const sep = buf[i + 10]
    if (sep !== UPPER_T && sep !== LOWER_T && sep !== SPACE) return Number.NaN
    const timeMs = timeOfDayMs(buf, i + 11)
    if (timeMs < 0) return Number.NaN
    let p = i + ISO_MIN_LENGTH
    let micros = 0
    const mark = buf[p]
    if ((mark === DOT || mark === COMMA) && p + 1 < end && digitAt(buf, p + 1) >= 0) {
      const digitsEnd = skipDigits(buf, p + 1, end)
      micros = fractionMicros(buf, p + 1, digitsEnd)
      p = digitsEnd
    }
    const wall = dayMs + timeMs
    const offset = zoneOffsetMs(buf, p, end)
    const whole = Number.isNaN(offset) ? this.#clock.toEpoch(wall) : wall - offset
    return micros === 0 ? whole : whole + micros / 1000
  }

  /** ms from the epoch to the start of the date `YYYY-MM-DD` at buf[i] (UTC), or NaN. */
  #dayMs(buf: Buffer, i: number): number {
    const year = fourDigits(buf, i)
    const month = twoDigits(buf, i + 5)
    const day = twoDigits(buf, i + 8)
    if (year < 0 || month < 0 || day < 0 || buf[i + 4] !== MINUS || buf[i + 7] !== MINUS) {
      return Number.NaN
    }
    const key = (year * 100 + month) * 100 + day
    if (key !== this.#cachedDateKey) {
      if (!isValidDate(year, month, day)) return Number.NaN
      this.#cachedDateKey = key
      this.#cachedDayMs = daysFromCivil(year, month, day) * MS_PER_DAY
    }
    return this.#cachedDayMs
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
    const full = buf[p + 4] === COLON || (digitAt(buf, p + 4) >= 0 && digitAt(buf, p + 5) >= 0)
    if ((next === PLUS || next === MINUS) && full) return numericOffsetMs(buf, p + 1, end)
  }
  return Number.NaN
}

/** `+hh:mm`, `+hhmm` or `+hh` at buf[p] (or `-`), or NaN. */
function numericOffsetMs(buf: Buffer, p: number, end: number): number {
  const hours = p + 3 <= end ? twoDigits(buf, p + 1) : -1
  if (hours < 0 || hours > 23) return Number.NaN
  let minutes = 0
  if (buf[p + 3] === COLON && p + 6 <= end) minutes = twoDigits(buf, p + 4)
  else if (p + 5 <= end && digitAt(buf, p + 3) >= 0) minutes = twoDigits(buf, p + 3)
  if (minutes < 0 || minutes > 59) return Number.NaN
  const sign = buf[p] === MINUS ? -1 : 1
  return sign * (hours * 60 + minutes) * MS_PER_MINUTE
}
