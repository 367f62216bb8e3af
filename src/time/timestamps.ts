/**
 * Timestamps in log lines: the format names (`--timestamp-format`), a parser per format, and
 * detection of a file's format from its first lines.
 *
 * A time is milliseconds since 1970-01-01T00:00:00Z as a number; the fractional part carries
 * microseconds (finer digits are dropped). A line whose timestamp cannot be read has no time
 * (null): it continues the record of the line before it (a stack trace, a wrapped message).
 */

import { errors } from '../errors.js'
import { OPEN_BRACKET } from './bytes.js'
import { DEFAULT_ZONE, WallClock, type Zone } from './calendar.js'
import { ClfScanner } from './clf.js'
import { leadingEpochMs } from './epoch.js'
import { IsoScanner } from './iso.js'
import { jsonTimeAt } from './json-time.js'
import { Rfc3164Scanner, rfc5424At, SyslogYears } from './syslog.js'

export { formatRfc3339, parseZone, type Zone } from './calendar.js'

/**
 * Names for `--timestamp-format`: `auto` (detect per file) or one format.
 * - `iso`: ISO 8601 / RFC 3339 at the start of the line (optionally after `[`)
 * - `rfc5424`: `<34>1 2026-11-24T08:07:01.123Z host app ...`
 * - `rfc3164`: `Nov 24 08:07:01 host app: ...`, optionally after `<13>`
 * - `clf`: `[24/Nov/2026:08:07:01 +0000]` anywhere in the line (nginx, Apache)
 * - `json`: a JSON object with `time`, `timestamp`, `ts` or `@timestamp`
 * - `epoch`: a Unix time in s, ms, µs or ns starting the line (`1795939621.123 ...`)
 */
export const TIMESTAMP_FORMATS = [
  'auto',
  'iso',
  'rfc5424',
  'rfc3164',
  'clf',
  'json',
  'epoch',
] as const
export type TimestampFormat = (typeof TIMESTAMP_FORMATS)[number]
/** A format a parser can be made for (everything but `auto`). */
export type LineFormat = Exclude<TimestampFormat, 'auto'>

/**
 * The formats detection tries, in the order that breaks a tie: formats anchored at the line's
 * start first, and `clf` (which looks anywhere in the line) late, so a JSON or ISO line that
 * happens to quote an access-log time stays what it is.
 */
export const DETECTION_ORDER: readonly LineFormat[] = [
  'json',
  'rfc5424',
  'iso',
  'rfc3164',
  'clf',
  'epoch',
]

/** How many of a file's first lines detection looks at. */
export const SAMPLE_LINES = 20

export interface TimestampOptions {
  /** Zone of times written without an offset (ISO without one, RFC 3164). Default UTC (0). */
  readonly zone?: Zone
  /**
   * Where RFC 3164 dates (which have no year) are placed: the first one gets the latest year
   * that does not put it more than a day after this time (ms since the epoch). Default: now.
   * A file's modification time is a good choice for files at rest.
   */
  readonly referenceMs?: number
}

/**
 * Reads the time of the line buf[start, end) (`end` excludes the newline), or null. A parser
 * has per-file state (the date cache; the year of RFC 3164 dates): one parser per file.
 */
export type LineParser = (buf: Buffer, start: number, end: number) => number | null

/** Validates a `--timestamp-format` value. */
export function parseTimestampFormat(text: string, flag = '--timestamp-format'): TimestampFormat {
  if ((TIMESTAMP_FORMATS as readonly string[]).includes(text)) return text as TimestampFormat
  throw errors.usage(
    `Expected \`${flag}\` to be one of ${TIMESTAMP_FORMATS.join(', ')}, got \`${text}\``,
  )
}

/** A fresh parser (with its own per-file state) for one format. */
export function createLineParser(format: LineFormat, options: TimestampOptions = {}): LineParser {
  const scan = createScanner(format, options)
  return (buf, start, end) => {
    const t = scan(buf, start, end)
    return Number.isNaN(t) ? null : t
  }
}

/** Like a LineParser, but NaN for "no time" (what the merge's inner loop wants). */
export type Scanner = (buf: Buffer, start: number, end: number) => number

export function createScanner(format: LineFormat, options: TimestampOptions = {}): Scanner {
  const clock = new WallClock(options.zone ?? DEFAULT_ZONE)
  switch (format) {
    case 'iso': {
      const iso = new IsoScanner(clock)
      return (buf, start, end) => iso.at(buf, buf[start] === OPEN_BRACKET ? start + 1 : start, end)
    }
    case 'rfc5424': {
      const iso = new IsoScanner(clock)
      return (buf, start, end) => rfc5424At(iso, buf, start, end)
    }
    case 'rfc3164': {
      const scanner = new Rfc3164Scanner(new SyslogYears(options.referenceMs ?? Date.now()), clock)
      return (buf, start, end) => scanner.at(buf, start, end)
    }
    case 'clf': {
      const scanner = new ClfScanner(clock)
      return (buf, start, end) => scanner.at(buf, start, end)
    }
    case 'json': {
      const iso = new IsoScanner(clock)
      return (buf, start, end) => jsonTimeAt(iso, buf, start, end)
    }
    case 'epoch':
      return leadingEpochMs
  }
}

/** A line's bounds within a block: [start, end), `end` at its newline (or the block's end). */
interface LineSpan {
  readonly start: number
  readonly end: number
}

/** The first `max` lines of buf[start, end). */
function sampleLines(buf: Buffer, start: number, end: number, max: number): LineSpan[] {
  const lines: LineSpan[] = []
  let p = start
  while (p < end && lines.length < max) {
    const nl = buf.indexOf(0x0a, p)
    const lineEnd = nl < 0 || nl > end ? end : nl
    lines.push({ start: p, end: lineEnd })
    p = lineEnd + 1
  }
  return lines
}

/**
 * The format that reads a time from the most of the first SAMPLE_LINES lines of buf[start,
 * end), ties going to the earlier in DETECTION_ORDER; null when none reads any line.
 */
export function detectFormat(
  buf: Buffer,
  options: TimestampOptions = {},
  start = 0,
  end = buf.length,
): LineFormat | null {
  const lines = sampleLines(buf, start, end, SAMPLE_LINES)
  let best: LineFormat | null = null
  let bestCount = 0
  for (const format of DETECTION_ORDER) {
    // A throwaway parser: detection must not move the real one's RFC 3164 year.
    const scan = createScanner(format, options)
    let count = 0
    for (const line of lines) if (!Number.isNaN(scan(buf, line.start, line.end))) count++
    if (count > bestCount) {
      best = format
      bestCount = count
    }
  }
  return best
}

/**
 * One file's timestamps: a named format, or `auto`, which settles on a format from the first
 * block that has a line any format can read (lines before that have no time). Once settled the
 * format does not change.
 */
export class LineTimes {
  readonly #options: TimestampOptions
  #format: LineFormat | null
  #scan: Scanner | null

  constructor(format: TimestampFormat = 'auto', options: TimestampOptions = {}) {
    this.#options = options
    this.#format = format === 'auto' ? null : format
    this.#scan = this.#format === null ? null : createScanner(this.#format, options)
  }

  /** The format in use; null while `auto` has not seen a line it can read. */
  get format(): LineFormat | null {
    return this.#format
  }

  /**
   * Offers lines to detection (a no-op once the format is known): call it with each block,
   * before parsing the block's lines.
   */
  learn(buf: Buffer, start = 0, end = buf.length): LineFormat | null {
    if (this.#format !== null) return this.#format
    const format = detectFormat(buf, this.#options, start, end)
    if (format !== null) {
      this.#format = format
      this.#scan = createScanner(format, this.#options)
    }
    return format
  }

  /** The time of the line buf[start, end) in ms, or NaN (no timestamp, or format not known). */
  scan(buf: Buffer, start: number, end: number): number {
    return this.#scan === null ? Number.NaN : this.#scan(buf, start, end)
  }

  /** The time of the line buf[start, end) in ms, or null. */
  parse(buf: Buffer, start: number, end: number): number | null {
    const t = this.scan(buf, start, end)
    return Number.isNaN(t) ? null : t
  }
}
