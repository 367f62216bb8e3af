/**
 * The time of a JSON line: the value of its first top-level key named `time`, `timestamp`,
 * `ts` or `@timestamp` that holds a time: an RFC 3339 string, or a number (or numeric string)
 * of epoch seconds, milliseconds, microseconds or nanoseconds told apart by magnitude.
 *
 * The line is not parsed into objects: a small scanner walks the top-level keys and skips
 * values (strings by their closing quote, nested objects and arrays by depth), so a `"ts"`
 * inside a nested object or a string does not count.
 */

import { BACKSLASH, COLON, COMMA, QUOTE, SPACE, TAB } from './bytes.js'
import { epochNumberMs } from './epoch.js'
import type { IsoScanner } from './iso.js'

const OPEN_BRACE = 0x7b
const CLOSE_BRACE = 0x7d
const OPEN_SQUARE = 0x5b
const CLOSE_SQUARE = 0x5d
const CR = 0x0d
const LF = 0x0a

/** The keys that name a line's time, as bytes. */
export const JSON_TIME_KEYS = ['time', 'timestamp', 'ts', '@timestamp'] as const
const KEY_BYTES = JSON_TIME_KEYS.map((k) => Buffer.from(k, 'latin1'))

/** The time of the JSON object line buf[i, end), or NaN when it has no time key we can read. */
export function jsonTimeAt(iso: IsoScanner, buf: Buffer, i: number, end: number): number {
  let p = skipSpace(buf, i, end)
  if (buf[p] !== OPEN_BRACE) return Number.NaN
  p = skipSpace(buf, p + 1, end)
  while (p < end && buf[p] === QUOTE) {
    const keyEnd = stringEnd(buf, p, end)
    if (keyEnd < 0) return Number.NaN
    const isTimeKey = isKnownKey(buf, p + 1, keyEnd)
    p = skipSpace(buf, keyEnd + 1, end)
    if (buf[p] !== COLON) return Number.NaN
    p = skipSpace(buf, p + 1, end)
    const valueEnd = skipValue(buf, p, end)
    if (valueEnd < 0) return Number.NaN
    if (isTimeKey) {
      const t = valueTime(iso, buf, p, valueEnd)
      if (!Number.isNaN(t)) return t
    }
    p = skipSpace(buf, valueEnd, end)
    if (buf[p] !== COMMA) return Number.NaN
    p = skipSpace(buf, p + 1, end)
  }
  return Number.NaN
}

/** A time from a value at buf[p, valueEnd): a string (ISO or numeric) or a bare number. */
function valueTime(iso: IsoScanner, buf: Buffer, p: number, valueEnd: number): number {
  if (buf[p] === QUOTE) {
    const t = iso.at(buf, p + 1, valueEnd - 1)
    return Number.isNaN(t) ? epochNumberMs(buf, p + 1, valueEnd - 1) : t
  }
  return epochNumberMs(buf, p, valueEnd)
}

function isKnownKey(buf: Buffer, start: number, end: number): boolean {
  const length = end - start
  for (const key of KEY_BYTES) {
    if (key.length === length && bytesEqual(buf, start, key)) return true
  }
  return false
}

function bytesEqual(buf: Buffer, at: number, key: Buffer): boolean {
  for (let k = 0; k < key.length; k++) if (buf[at + k] !== key[k]) return false
  return true
}

function skipSpace(buf: Buffer, i: number, end: number): number {
  let p = i
  while (p < end) {
    const c = buf[p]
    if (c !== SPACE && c !== TAB && c !== CR && c !== LF) break
    p++
  }
  return p
}

/** Index of the quote that closes the string opening at buf[i], or -1 within `end`. */
function stringEnd(buf: Buffer, i: number, end: number): number {
  let from = i + 1
  while (from < end) {
    const q = buf.indexOf(QUOTE, from)
    if (q < 0 || q >= end) return -1
    let backslashes = 0
    while (buf[q - 1 - backslashes] === BACKSLASH) backslashes++
    if (backslashes % 2 === 0) return q
    from = q + 1
  }
  return -1
}

/** Index just past the JSON value at buf[i], or -1 when it is cut off by `end`. */
function skipValue(buf: Buffer, i: number, end: number): number {
  const c = buf[i]
  if (c === QUOTE) {
    const q = stringEnd(buf, i, end)
    return q < 0 ? -1 : q + 1
  }
  if (c === OPEN_BRACE || c === OPEN_SQUARE) return skipNested(buf, i, end)
  let p = i
  while (p < end) {
    const d = buf[p]
    if (d === COMMA || d === CLOSE_BRACE || d === CLOSE_SQUARE || d === SPACE || d === TAB) break
    if (d === CR || d === LF) break
    p++
  }
  return p === i ? -1 : p
}

/** Skips an object or array (with strings inside it) starting at buf[i]. */
function skipNested(buf: Buffer, i: number, end: number): number {
  let depth = 0
  let p = i
  while (p < end) {
    const c = buf[p]
    if (c === QUOTE) {
      const q = stringEnd(buf, p, end)
      if (q < 0) return -1
      p = q + 1
      continue
    }
    if (c === OPEN_BRACE || c === OPEN_SQUARE) depth++
    else if (c === CLOSE_BRACE || c === CLOSE_SQUARE) {
      depth--
      if (depth === 0) return p + 1
    }
    p++
  }
  return -1
}
