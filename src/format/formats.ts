/**
 * Output formats (`--format raw|prefix|json`): pure functions from a record (or a run of whole
 * lines) and its source to the bytes to write. Source labels are labels.ts.
 *
 * - raw: the bytes as read, untouched.
 * - prefix: `label: ` before every physical line, continuation lines included, so `grep web:`
 *   finds a stack trace's frames too.
 * - json: one object a record: {"source","path","offset","time","line"} and, when needed,
 *   "line_base64" and "continuation". A record (a line with its continuation lines) is one
 *   object, its lines joined by "\n" in "line", because a stack trace is one event to whoever
 *   reads the JSON (a log store, jq): split per physical line, its frames would lose their
 *   leader. "line" is the record without its final newline, decoded as UTF-8 with U+FFFD for
 *   invalid bytes, so the output is valid JSON whatever the input; when the bytes were not valid
 *   UTF-8, "line_base64" carries them exactly. "offset" is the record's first byte in its
 *   source; "time" is RFC 3339 UTC (microseconds when present) or null for lines before the
 *   source's first timestamp.
 */

import { isUtf8 } from 'node:buffer'
import { errors } from '../errors.js'
import { formatRfc3339 } from '../time/calendar.js'

export const OUTPUT_FORMATS = ['raw', 'prefix', 'json'] as const
export type OutputFormat = (typeof OUTPUT_FORMATS)[number]

const NEWLINE = 0x0a

/** What the formats need to know of a record's source. */
export interface SourceInfo {
  /** Shown by prefix and json (default: the file's base name; see labels.ts). */
  readonly label: string
  /** The input's path, for json. */
  readonly path: string
}

/** A record to format: whole lines block[start, end) and what the merge knows of them. */
export interface FormatRecord {
  readonly block: Buffer
  readonly start: number
  readonly end: number
  /** ms since the epoch, or -Infinity (no timestamp yet in its source). */
  readonly time: number
  /** The record's first byte in its source. */
  readonly offset: number
  /** Lines without a timestamp whose leader was written before them, or never seen. */
  readonly continuation: boolean
}

/** Validates an output format name (`--format`). */
export function parseOutputFormat(text: string, flag = '--format'): OutputFormat {
  if ((OUTPUT_FORMATS as readonly string[]).includes(text)) return text as OutputFormat
  throw errors.usage(
    `Expected \`${flag}\` to be one of ${OUTPUT_FORMATS.join(', ')}, got \`${text}\``,
  )
}

/** raw: the bytes as read (a view of the block, not a copy). */
export function formatRaw(block: Buffer, start: number, end: number): Buffer {
  return block.subarray(start, end)
}

/** The bytes that start every prefixed line: `label: `. Make it once per source. */
export function labelPrefix(label: string): Buffer {
  return Buffer.from(`${label}: `, 'utf8')
}

/** prefix: `prefix` (see labelPrefix) before each line of the whole lines block[start, end). */
export function formatPrefix(block: Buffer, start: number, end: number, prefix: Buffer): Buffer {
  let lines = 0
  for (
    let p = block.indexOf(NEWLINE, start);
    p >= 0 && p < end;
    p = block.indexOf(NEWLINE, p + 1)
  ) {
    lines++
  }
  const out = Buffer.allocUnsafe(end - start + lines * prefix.length)
  let at = 0
  let p = start
  while (p < end) {
    const nl = block.indexOf(NEWLINE, p)
    const lineEnd = nl < 0 || nl >= end ? end : nl + 1
    at += prefix.copy(out, at)
    at += block.copy(out, at, p, lineEnd)
    p = lineEnd
  }
  return out.subarray(0, at)
}

/** json: one object for the record, ending in a newline (see the module comment). */
export function formatJson(record: FormatRecord, source: SourceInfo): Buffer {
  const { block, start } = record
  // The final newline ends the record; it is not part of the text.
  const end = record.end > start && block[record.end - 1] === NEWLINE ? record.end - 1 : record.end
  const bytes = block.subarray(start, end)
  const object: Record<string, unknown> = {
    source: source.label,
    path: source.path,
    offset: record.offset,
    time: Number.isFinite(record.time) ? formatRfc3339(record.time) : null,
    line: bytes.toString('utf8'),
  }
  if (!isUtf8(bytes)) object.line_base64 = bytes.toString('base64')
  if (record.continuation) object.continuation = true
  return Buffer.from(`${JSON.stringify(object)}\n`, 'utf8')
}

/** The bytes for one record in the given format. */
export function formatRecord(
  format: OutputFormat,
  record: FormatRecord,
  source: SourceInfo & { readonly prefix?: Buffer },
): Buffer {
  switch (format) {
    case 'raw':
      return formatRaw(record.block, record.start, record.end)
    case 'prefix':
      return formatPrefix(
        record.block,
        record.start,
        record.end,
        source.prefix ?? labelPrefix(source.label),
      )
    case 'json':
      return formatJson(record, source)
  }
}
