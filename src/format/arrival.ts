/**
 * --format prefix|json in arrival order: each block of whole lines is rewritten before it is
 * queued, line by line (arrival order knows lines, not records: a record is a time-order
 * notion, so json here is one object per physical line). The formatter is plain and
 * synchronous so the reader threads of the locked-writer engines use it too, before their
 * locked write; FormatSink puts it in front of the event-loop writer.
 */
import type { BlockSink, SourceMark } from '../sink/sink.js'
import { LineTimes, type TimestampFormat, type TimestampOptions } from '../time/timestamps.js'
import {
  formatJson,
  formatPrefix,
  labelPrefix,
  type OutputFormat,
  type SourceInfo,
} from './formats.js'
import type { Labels } from './labels.js'

const NEWLINE = 0x0a

/** What a formatter keeps per source. */
export interface FormatSource extends SourceInfo {
  readonly prefix: Buffer
  readonly times: LineTimes
}

export interface FormatterOptions {
  readonly format: OutputFormat
  readonly labels: Labels
  /** For json's "time" (--timestamp-format, --timestamp-zone). */
  readonly timestampFormat?: TimestampFormat
  readonly timestamps?: TimestampOptions
}

/** Rewrites arrival-order blocks in the output format (raw blocks are passed through). */
export class ArrivalFormatter {
  readonly #opts: FormatterOptions
  readonly #sources = new Map<string, FormatSource>()

  constructor(opts: FormatterOptions) {
    this.#opts = opts
  }

  /** The file `key` is at `path` (its label comes from the path it was opened at). */
  open(key: string, path: string): void {
    if (this.#sources.has(key)) return
    const label = this.#opts.labels.labelOf(path)
    this.#sources.set(key, {
      label,
      path,
      prefix: labelPrefix(label),
      times: new LineTimes(this.#opts.timestampFormat ?? 'auto', this.#opts.timestamps),
    })
  }

  /** The source `key` is gone: forget it. */
  forget(key: string): void {
    this.#sources.delete(key)
  }

  /** The block's bytes in the output format. `mark` is the block's (offsets for json). */
  format(block: Buffer, mark: SourceMark | undefined): Buffer {
    if (this.#opts.format === 'raw') return block
    const key = mark?.key ?? '?'
    if (!this.#sources.has(key)) this.open(key, key)
    const source = this.#sources.get(key) as FormatSource
    if (this.#opts.format === 'prefix') return formatPrefix(block, 0, block.length, source.prefix)
    return formatJsonLines(block, mark, source)
  }
}

/** json in arrival order: one object per line, with its offset in the file and its time. */
function formatJsonLines(
  block: Buffer,
  mark: SourceMark | undefined,
  source: FormatSource,
): Buffer {
  const inserted = mark?.inserted ?? []
  // The block's file bytes end at mark.offset; the added newlines are not among them.
  const fileStart = (mark?.offset ?? 0) - (block.length - inserted.length)
  source.times.learn(block)
  const out: Buffer[] = []
  let added = 0
  for (let start = 0; start < block.length; ) {
    const nl = block.indexOf(NEWLINE, start)
    const end = nl < 0 ? block.length : nl + 1
    while (added < inserted.length && (inserted[added] as number) < start) added++
    const time = source.times.parse(block, start, end - 1)
    const record = {
      block,
      start,
      end,
      time: time ?? Number.NEGATIVE_INFINITY,
      offset: Math.max(0, fileStart + start - added),
      continuation: false,
    }
    out.push(formatJson(record, source))
    start = end
  }
  return Buffer.concat(out)
}

/** The event-loop writer with the arrival-order formatter in front of it. */
export class FormatSink implements BlockSink {
  readonly #writer: BlockSink
  readonly #formatter: ArrivalFormatter

  constructor(writer: BlockSink, formatter: ArrivalFormatter) {
    this.#writer = writer
    this.#formatter = formatter
  }

  /** A file was opened at `path` (the follower's onSource). */
  open(key: string, path: string): void {
    this.#formatter.open(key, path)
  }

  write(block: Buffer, mark?: SourceMark): Promise<void> | undefined {
    return this.#writer.write(this.#formatter.format(block, mark), mark)
  }

  note(mark: SourceMark): void {
    this.#writer.note?.(mark)
  }

  forget(key: string): void {
    this.#formatter.forget(key)
    this.#writer.forget?.(key)
  }
}
