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
  MS_PER_HOUR,
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

/** `YYYY-MM-DDThh`: the part of a timestamp that names the hour. */
const HOUR_PREFIX = 13

/**
 * One file's ISO parser. It remembers the bytes and the epoch of the last hour it saw
 * (`YYYY-MM-DDThh`): log lines come in runs of the same hour, so most lines cost a 13-byte
 * comparison and the minutes, seconds and fraction, instead of the calendar arithmetic.
 */
export class IsoScanner {
  readonly #clock: WallClock
  readonly #hourBytes = new Uint8Array(HOUR_PREFIX)
  #hourKnown = false
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
    if (!this.#sameHour(buf, i) && !this.#learnHour(buf, i)) return Number.NaN
    const minutes = twoDigits(buf, i + 14)
    const seconds = twoDigits(buf, i + 17)
    if (buf[i + 13] !== COLON || buf[i + 16] !== COLON) return Number.NaN
    if (minutes < 0 || minutes > 59 || seconds < 0 || seconds > 60) return Number.NaN
    let p = i + ISO_MIN_LENGTH
    let micros = 0
    const mark = buf[p]
    if ((mark === DOT || mark === COMMA) && p + 1 < end && digitAt(buf, p + 1) >= 0) {
      const digitsEnd = skipDigits(buf, p + 1, end)
      micros = fractionMicros(buf, p + 1, digitsEnd)
      p = digitsEnd
    }
    const wall = this.#hourMs + (minutes * 60 + seconds) * 1000
    const offset = zoneOffsetMs(buf, p, end)
    const whole = Number.isNaN(offset) ? this.#clock.toEpoch(wall) : wall - offset
    return micros === 0 ? whole : whole + micros / 1000
  }

  #sameHour(buf: Buffer, i: number): boolean {
    if (!this.#hourKnown) return false
    const hour = this.#hourBytes
    for (let k = 0; k < HOUR_PREFIX; k++) if (buf[i + k] !== hour[k]) return false
    return true
  }

  /** Parses and remembers `YYYY-MM-DDThh` at buf[i]; false when it is not a valid one. */
  #learnHour(buf: Buffer, i: number): boolean {
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
    for (let k = 0; k < HOUR_PREFIX; k++) this.#hourBytes[k] = buf[i + k] ?? 0
    this.#hourKnown = true
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
