/**
 * Byte-level helpers shared by the timestamp parsers: digits read straight from the buffer,
 * with no string made per line. A position past the end of the buffer reads as byte 0, which
 * is never a digit, so callers need no separate bounds checks for short lines.
 */

export const SPACE = 0x20
export const TAB = 0x09
export const COLON = 0x3a
export const MINUS = 0x2d
export const PLUS = 0x2b
export const DOT = 0x2e
export const COMMA = 0x2c
export const QUOTE = 0x22
export const BACKSLASH = 0x5c
export const LT = 0x3c
export const GT = 0x3e
export const SLASH = 0x2f
export const OPEN_BRACKET = 0x5b
export const CLOSE_BRACKET = 0x5d
const ZERO = 0x30

/** The digit at buf[i] (0..9), or -1. */
export function digitAt(buf: Buffer, i: number): number {
  const d = (buf[i] ?? 0) - ZERO
  return d >= 0 && d <= 9 ? d : -1
}

/** Two digits at buf[i..i+1] as a number, or -1. */
export function twoDigits(buf: Buffer, i: number): number {
  const a = digitAt(buf, i)
  const b = digitAt(buf, i + 1)
  return a < 0 || b < 0 ? -1 : a * 10 + b
}

/** Four digits at buf[i..i+3] as a number, or -1. */
export function fourDigits(buf: Buffer, i: number): number {
  const hi = twoDigits(buf, i)
  const lo = twoDigits(buf, i + 2)
  return hi < 0 || lo < 0 ? -1 : hi * 100 + lo
}

/** True when buf[i] is a decimal digit. */
export const isDigit = (buf: Buffer, i: number): boolean => digitAt(buf, i) >= 0

/** Index of the first byte at or after i that is not a decimal digit (at most `end`). */
export function skipDigits(buf: Buffer, i: number, end: number): number {
  let j = i
  while (j < end && isDigit(buf, j)) j++
  return j
}

/**
 * Digits buf[i, end) of a decimal fraction as microseconds (the first six digits; the rest are
 * dropped, not rounded, so equal instants written with different precision compare equal up to
 * the microsecond).
 */
export function fractionMicros(buf: Buffer, i: number, end: number): number {
  let micros = 0
  const last = Math.min(end, i + 6)
  for (let j = i; j < last; j++) micros = micros * 10 + digitAt(buf, j)
  for (let k = last - i; k < 6; k++) micros *= 10
  return micros
}
