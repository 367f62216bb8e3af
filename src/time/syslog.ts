/**
 * Syslog timestamps: RFC 5424 (`<34>1 2026-11-24T08:07:01.123Z host app ...`) and the older
 * BSD form of RFC 3164 (`Nov 24 08:07:01 host app: ...`, optionally after `<13>`), whose
 * timestamp has no year and no zone.
 */

import {
  DOT,
  digitAt,
  fractionMicros,
  GT,
  LT,
  MINUS,
  SPACE,
  skipDigits,
  twoDigits,
} from './bytes.js'
import { daysFromCivil, isValidDate, MS_PER_DAY, monthAt, type WallClock } from './calendar.js'
import { type IsoScanner, timeOfDayMs } from './iso.js'

/**
 * Index just past a syslog priority `<PRI>` (1 to 3 digits) at buf[i], or -1 when there is
 * none.
 */
export function afterPriority(buf: Buffer, i: number, end: number): number {
  if (buf[i] !== LT) return -1
  const digitsEnd = skipDigits(buf, i + 1, Math.min(end, i + 4))
  if (digitsEnd === i + 1 || buf[digitsEnd] !== GT) return -1
  return digitsEnd + 1
}

/**
 * RFC 5424: `<PRI>VERSION TIMESTAMP ...`. The version is optional here (some senders write the
 * ISO time straight after the priority). A `-` timestamp (NILVALUE) is no timestamp: NaN.
 */
export function rfc5424At(iso: IsoScanner, buf: Buffer, i: number, end: number): number {
  let p = afterPriority(buf, i, end)
  if (p < 0) return Number.NaN
  const versionEnd = skipDigits(buf, p, Math.min(end, p + 3))
  if (versionEnd > p && buf[versionEnd] === SPACE) p = versionEnd + 1
  if (buf[p] === MINUS) return Number.NaN
  return iso.at(buf, p, end)
}

/**
 * How far past the reference time a year-less date may lie and still be taken as this year:
 * clocks of different hosts disagree a little, so a `Jan  1 00:00:02` line read at 23:59:59 on
 * 31 December belongs to the coming year.
 */
const FUTURE_GRACE_MS = MS_PER_DAY
/** A month change of more than this many months is a change of year (Dec -> Jan). */
const YEAR_TURN_MONTHS = 6

/**
 * The year of RFC 3164 dates in one file, which carry none. The first date gets the latest
 * year that does not put it more than a day after the reference time (a December line read in
 * January is last year's; a line from March read in December is this year's). After that the
 * file's own dates move it: when the month falls by more than six (Dec -> Jan) the year goes
 * up by one, and a line whose month jumps up by more than six after such a turn (a late
 * `Dec 31` among `Jan 1` lines) is taken as the year before, without moving the state.
 */
export class SyslogYears {
  readonly #referenceMs: number
  #year = Number.NaN
  #lastMonth = 0

  constructor(referenceMs: number) {
    this.#referenceMs = referenceMs
  }

  /** The year of a `month`/`day` (`wallTimeMs` into that day) line of this file. */
  yearOf(month: number, day: number, wallTimeMs: number): number {
    if (Number.isNaN(this.#year)) {
      this.#year = this.#firstYear(month, day, wallTimeMs)
      this.#lastMonth = month
      return this.#year
    }
    if (month < this.#lastMonth - YEAR_TURN_MONTHS) {
      this.#year++
      this.#lastMonth = month
      return this.#year
    }
    if (month > this.#lastMonth + YEAR_TURN_MONTHS) return this.#year - 1
    this.#lastMonth = month
    return this.#year
  }

  #firstYear(month: number, day: number, wallTimeMs: number): number {
    const refYear = new Date(this.#referenceMs).getUTCFullYear()
    // Feb 29 may need to go back up to four years (eight across a skipped century leap day).
    for (let year = refYear + 1; year >= refYear - 8; year--) {
      if (!isValidDate(year, month, day)) continue
      const wall = daysFromCivil(year, month, day) * MS_PER_DAY + wallTimeMs
      if (wall <= this.#referenceMs + FUTURE_GRACE_MS) return year
    }
    return refYear
  }
}

/**
 * RFC 3164: `[<PRI>]Mmm dd hh:mm:ss` with the day padded by a space (`Nov  4`) or a zero, or a
 * single digit (`Nov 4 08:07:01`); an optional fraction after the seconds (rsyslog can add
 * one). Wall-clock time in the clock's zone; the year comes from the file's SyslogYears.
 */
export class Rfc3164Scanner {
  readonly #years: SyslogYears
  readonly #clock: WallClock
  #cachedDateKey = -1
  #cachedDayMs = 0

  constructor(years: SyslogYears, clock: WallClock) {
    this.#years = years
    this.#clock = clock
  }

  /** The time of the RFC 3164 timestamp at buf[i] (after an optional priority), or NaN. */
  at(buf: Buffer, i: number, end: number): number {
    const afterPri = afterPriority(buf, i, end)
    const p = afterPri < 0 ? i : afterPri
    if (end - p < 14) return Number.NaN
    const month = monthAt(buf, p)
    if (month === 0 || buf[p + 3] !== SPACE) return Number.NaN
    let day = twoDigits(buf, p + 4)
    let t = p + 7
    if (day < 0 && buf[p + 4] === SPACE) day = digitAt(buf, p + 5)
    else if (day < 0 && buf[p + 5] === SPACE) {
      day = digitAt(buf, p + 4)
      t = p + 6
    }
    if (day < 1 || day > 31 || buf[t - 1] !== SPACE) return Number.NaN
    const timeMs = timeOfDayMs(buf, t)
    if (timeMs < 0) return Number.NaN
    let micros = 0
    const afterSeconds = t + 8
    if (
      buf[afterSeconds] === DOT &&
      afterSeconds + 1 < end &&
      digitAt(buf, afterSeconds + 1) >= 0
    ) {
      micros = fractionMicros(buf, afterSeconds + 1, skipDigits(buf, afterSeconds + 1, end))
    }
    const dayMs = this.#dayMs(month, day, timeMs)
    if (Number.isNaN(dayMs)) return Number.NaN
    const whole = this.#clock.toEpoch(dayMs + timeMs)
    return micros === 0 ? whole : whole + micros / 1000
  }

  #dayMs(month: number, day: number, timeMs: number): number {
    const year = this.#years.yearOf(month, day, timeMs)
    const key = (year * 100 + month) * 100 + day
    if (key !== this.#cachedDateKey) {
      if (!isValidDate(year, month, day)) return Number.NaN
      this.#cachedDateKey = key
      this.#cachedDayMs = daysFromCivil(year, month, day) * MS_PER_DAY
    }
    return this.#cachedDayMs
  }
}
