/**
 * The Common/Combined Log Format time of Apache and nginx: `[24/Nov/2026:08:07:01 +0000]`,
 * found anywhere in the line (it follows the client address and user, whose length varies).
 */

import {
  CLOSE_BRACKET,
  COLON,
  DOT,
  digitAt,
  fourDigits,
  fractionMicros,
  OPEN_BRACKET,
  SLASH,
  skipDigits,
  twoDigits,
} from './bytes.js'
import { daysFromCivil, isValidDate, MS_PER_DAY, monthAt, type WallClock } from './calendar.js'
import { timeOfDayMs, zoneOffsetMs } from './iso.js'

/** `[dd/Mon/yyyy:hh:mm:ss` is 21 bytes. */
const CLF_MIN_LENGTH = 21

export class ClfScanner {
  readonly #clock: WallClock
  #cachedDateKey = -1
  #cachedDayMs = 0

  constructor(clock: WallClock) {
    this.#clock = clock
  }

  /** The time of the first CLF timestamp within buf[i, end), or NaN. */
  at(buf: Buffer, i: number, end: number): number {
    // A plain loop rather than indexOf: indexOf cannot stop at the line's end and would run
    // on through the rest of the block for every line without a bracket.
    for (let p = i; p + CLF_MIN_LENGTH <= end; p++) {
      if (buf[p] !== OPEN_BRACKET) continue
      const t = this.#bracketAt(buf, p, end)
      if (!Number.isNaN(t)) return t
    }
    return Number.NaN
  }

  /** `[dd/Mon/yyyy:hh:mm:ss[.fff] +hhmm]` at buf[p] (the zone may be missing), or NaN. */
  #bracketAt(buf: Buffer, p: number, end: number): number {
    const day = twoDigits(buf, p + 1)
    const month = monthAt(buf, p + 4)
    const year = fourDigits(buf, p + 8)
    if (day < 0 || month === 0 || year < 0) return Number.NaN
    if (buf[p + 3] !== SLASH || buf[p + 7] !== SLASH || buf[p + 12] !== COLON) return Number.NaN
    const timeMs = timeOfDayMs(buf, p + 13)
    if (timeMs < 0) return Number.NaN
    let q = p + CLF_MIN_LENGTH
    let micros = 0
    if (buf[q] === DOT && digitAt(buf, q + 1) >= 0) {
      const digitsEnd = skipDigits(buf, q + 1, end)
      micros = fractionMicros(buf, q + 1, digitsEnd)
      q = digitsEnd
    }
    const dayMs = this.#dayMs(year, month, day)
    if (Number.isNaN(dayMs)) return Number.NaN
    const offset = buf[q] === CLOSE_BRACKET ? Number.NaN : zoneOffsetMs(buf, q, end)
    const wall = dayMs + timeMs
    const whole = Number.isNaN(offset) ? this.#clock.toEpoch(wall) : wall - offset
    return micros === 0 ? whole : whole + micros / 1000
  }

  #dayMs(year: number, month: number, day: number): number {
    const key = (year * 100 + month) * 100 + day
    if (key !== this.#cachedDateKey) {
      if (!isValidDate(year, month, day)) return Number.NaN
      this.#cachedDateKey = key
      this.#cachedDayMs = daysFromCivil(year, month, day) * MS_PER_DAY
    }
    return this.#cachedDayMs
  }
}
