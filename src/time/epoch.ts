/**
 * Unix times written as numbers: seconds, milliseconds, microseconds or nanoseconds since the
 * epoch, told apart by magnitude. Used for JSON `ts` numbers and for lines that start with one
 * (`1795939621.123 ...`, as Squid's access log writes).
 */

import { DOT, digitAt, fractionMicros, MINUS, SPACE, skipDigits, TAB } from './bytes.js'

/**
 * Integer parts below this are seconds (1e11 s is the year 5138); below 1e14 milliseconds
 * (1e14 ms is the year 5138 again); below 1e17 microseconds; above, nanoseconds.
 */
const SECONDS_BELOW = 1e11
const MILLIS_BELOW = 1e14
const MICROS_BELOW = 1e17

/** Milliseconds from an integer part and the fraction's first six digits (as microseconds). */
export function epochMs(integer: number, fractionMicros: number): number {
  if (integer < SECONDS_BELOW) return integer * 1000 + fractionMicros / 1000
  if (integer < MILLIS_BELOW) return integer + fractionMicros / 1_000_000
  if (integer < MICROS_BELOW) return Math.floor(integer) / 1000
  return Math.floor(integer / 1000) / 1000
}

/**
 * The number at buf[i, end) — digits with an optional fraction, nothing else — as epoch ms,
 * or NaN. Negative numbers and exponents are not times we expect in a log: NaN.
 */
export function epochNumberMs(buf: Buffer, i: number, end: number): number {
  if (buf[i] === MINUS) return Number.NaN
  const intEnd = skipDigits(buf, i, end)
  if (intEnd === i) return Number.NaN
  let integer = 0
  for (let j = i; j < intEnd; j++) integer = integer * 10 + digitAt(buf, j)
  if (intEnd === end) return epochMs(integer, 0)
  if (buf[intEnd] !== DOT) return Number.NaN
  const fracEnd = skipDigits(buf, intEnd + 1, end)
  if (fracEnd !== end) return Number.NaN
  return epochMs(integer, fractionMicros(buf, intEnd + 1, fracEnd))
}

/** A line-leading Unix time needs at least ten integer digits (2001-09-09 onwards, in s). */
const LEADING_MIN_DIGITS = 10
const LEADING_MAX_DIGITS = 19

/** The Unix time that starts the line buf[i, end), followed by a space, a tab or the end. */
export function leadingEpochMs(buf: Buffer, i: number, end: number): number {
  const intEnd = skipDigits(buf, i, Math.min(end, i + LEADING_MAX_DIGITS + 1))
  const digits = intEnd - i
  if (digits < LEADING_MIN_DIGITS || digits > LEADING_MAX_DIGITS) return Number.NaN
  let numberEnd = intEnd
  if (buf[intEnd] === DOT) numberEnd = skipDigits(buf, intEnd + 1, end)
  if (numberEnd < end && buf[numberEnd] !== SPACE && buf[numberEnd] !== TAB) return Number.NaN
  return epochNumberMs(buf, i, numberEnd)
}
