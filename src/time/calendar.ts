/**
 * Calendar arithmetic for the timestamp parsers, with no Date on the hot path: days since the
 * epoch from a civil date, month names, the zone used for wall-clock times that carry no offset,
 * and the RFC 3339 form of a time for the json output.
 *
 * Times are milliseconds since 1970-01-01T00:00:00Z as a JavaScript number; the fractional part
 * keeps microseconds (a double still resolves a quarter of a microsecond at today's epoch).
 */

import { errors } from '../errors.js'

export const MS_PER_MINUTE = 60_000
export const MS_PER_HOUR = 3_600_000
export const MS_PER_DAY = 86_400_000

/**
 * Days from 1970-01-01 to the given proleptic Gregorian date (month 1..12). The algorithm is
 * the well-known "days from civil" one: count from a March-based year so the leap day is last.
 */
export function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year
  const era = Math.floor(y / 400)
  const yearOfEra = y - era * 400
  const shiftedMonth = month > 2 ? month - 3 : month + 9
  const dayOfYear = Math.floor((153 * shiftedMonth + 2) / 5) + day - 1
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100)
  return era * 146_097 + dayOfEra + dayOfYear - 719_468
}

export const isLeapYear = (year: number): boolean =>
  (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]

/** True when year-month-day names a real date (month 1..12, day within the month). */
export function isValidDate(year: number, month: number, day: number): boolean {
  if (month < 1 || month > 12 || day < 1) return false
  const last = month === 2 && isLeapYear(year) ? 29 : (DAYS_IN_MONTH[month - 1] ?? 0)
  return day <= last
}

/**
 * Month number (1..12) of the English abbreviation starting at buf[i] (`Jan`..`Dec`, exactly
 * that case, as syslog and Apache write them), or 0.
 */
export function monthAt(buf: Buffer, i: number): number {
  const key = ((buf[i] ?? 0) << 16) | ((buf[i + 1] ?? 0) << 8) | (buf[i + 2] ?? 0)
  return MONTH_BY_KEY.get(key) ?? 0
}

const MONTH_NAMES = [
  'Jan',
  'Feb',
  'Mar',
  'Apr',
  'May',
  'Jun',
  'Jul',
  'Aug',
  'Sep',
  'Oct',
  'Nov',
  'Dec',
]
const MONTH_BY_KEY = new Map(
  MONTH_NAMES.map((name, i) => [
    (name.charCodeAt(0) << 16) | (name.charCodeAt(1) << 8) | name.charCodeAt(2),
    i + 1,
  ]),
)

/**
 * The zone of wall-clock times written without an offset (ISO without `Z`, RFC 3164 syslog):
 * minutes east of UTC, or 'local' for the host's zone (TZ) with its daylight saving rules.
 */
export type Zone = number | 'local'

/** The default: such times are UTC, so a merge gives the same order on every machine. */
export const DEFAULT_ZONE: Zone = 0

/**
 * Parses a `--default-zone` value: `utc`, `local`, or an offset `+hh:mm`, `+hhmm`, `+hh`
 * (`-` west of UTC). Throws a usage error naming the flag otherwise.
 */
export function parseZone(text: string, flag = '--default-zone'): Zone {
  const t = text.trim()
  if (/^(utc|z|gmt)$/i.test(t)) return 0
  if (/^local$/i.test(t)) return 'local'
  const m = /^([+-])(\d{2}):?(\d{2})?$/.exec(t)
  const hours = Number(m?.[2])
  const minutes = Number(m?.[3] ?? 0)
  if (m === null || hours > 23 || minutes > 59) {
    throw errors.usage(
      `Expected \`${flag}\` to be utc, local or an offset like +01:00, got \`${text}\``,
    )
  }
  return (m[1] === '-' ? -1 : 1) * (hours * 60 + minutes)
}

/**
 * Turns a wall-clock time without an offset into epoch milliseconds. For a fixed zone this is
 * one subtraction; for 'local' the offset is asked of Date once per hour of wall time and
 * cached (daylight saving changes on the hour in practice; in the repeated hour of a change,
 * Date's choice of the two readings is taken).
 */
export class WallClock {
  readonly zone: Zone
  #fixedOffsetMs: number
  #cachedHourStart = Number.NaN
  #cachedOffsetMs = 0

  constructor(zone: Zone = DEFAULT_ZONE) {
    this.zone = zone
    this.#fixedOffsetMs = zone === 'local' ? 0 : zone * MS_PER_MINUTE
  }

  /** `wallMs`: the wall time counted as if it were UTC (days and time of day, in ms). */
  toEpoch(wallMs: number): number {
    if (this.zone !== 'local') return wallMs - this.#fixedOffsetMs
    const hourStart = Math.floor(wallMs / MS_PER_HOUR) * MS_PER_HOUR
    if (hourStart !== this.#cachedHourStart) {
      this.#cachedHourStart = hourStart
      this.#cachedOffsetMs = localOffsetMs(hourStart)
    }
    return wallMs - this.#cachedOffsetMs
  }
}

/** Offset of the host's zone, in ms, for the local wall time `wallMs` (counted as if UTC). */
function localOffsetMs(wallMs: number): number {
  const d = new Date(wallMs)
  const local = new Date(
    d.getUTCFullYear(),
    d.getUTCMonth(),
    d.getUTCDate(),
    d.getUTCHours(),
    d.getUTCMinutes(),
    d.getUTCSeconds(),
  )
  return wallMs - local.getTime()
}

/**
 * RFC 3339 in UTC: `2026-11-24T08:07:01.123Z`, with six fraction digits when the time has a
 * sub-millisecond part (`.123456Z`). Used by the json output.
 */
export function formatRfc3339(ms: number): string {
  const whole = Math.floor(ms)
  const micros = Math.round((ms - whole) * 1000)
  const iso = new Date(micros === 1000 ? whole + 1 : whole).toISOString()
  if (micros === 0 || micros === 1000) return iso
  return `${iso.slice(0, -1)}${String(micros).padStart(3, '0')}Z`
}
