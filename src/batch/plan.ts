/**
 * The plan of a partitioned `--once --order time` merge (partitioned.ts): cut the time range
 * at bounds T1 < T2 < ... so that partition p holds, in every file, the records with times in
 * (T(p-1), T(p)]. For files that are each sorted, those are one contiguous byte range per file,
 * found by a binary search on the file (probed-file.ts), and merging the partitions one after
 * another gives exactly the merge of the whole files: every record of partition p comes before
 * every record of p+1. So the partitions can be merged in parallel and written in order.
 *
 * The plan assumes sorted files; it does not check them (that would mean reading them). The
 * merge of each partition checks what the assumption gives: every time it wrote is at most its
 * bound (TimeOrder.maxWritten). If so, its output is what the single merge would have written
 * there, whatever the order inside it; if not, the partitioned merge stops at that partition
 * and the single merge goes on from its start (partitioned.ts).
 *
 * No plan (null: the single merge does it all) when a file's format cannot be known from its
 * start the way the single merge would know it, when the format is RFC 3164 (its year depends
 * on the lines before, which a partition starting mid-file has not seen), or when the times
 * are so uneven that a partition would be far larger than asked (memory: a partition is held
 * until it is checked).
 */
import {
  type LineFormat,
  LineTimes,
  SAMPLE_LINES,
  type TimestampFormat,
  type TimestampOptions,
} from '../time/timestamps.js'
import type { PlanSource } from './merge.js'
import { boundaryIn, ProbedFile, Unplannable } from './probed-file.js'
import { SourceReader } from './source-reader.js'

export interface PlanOptions {
  /** What each read asks for: as the single merge reads, so that detection sees the same block. */
  readonly readBytes: number
  readonly maxLineBytes: number
  readonly timestampFormat?: TimestampFormat
  readonly zone?: TimestampOptions['zone']
  /** The bytes of input a partition should hold. */
  readonly partBytes: number
  /** No plan when a partition would hold more than this (default 8 x partBytes). */
  readonly maxPartBytes?: number
}

export interface Partition {
  /** The latest time it holds (+Infinity for the last partition). */
  readonly bound: number
  /**
   * Each file's range [starts[i], ends[i]). An end of +Infinity reads the file to its end (the
   * last partition, and the one that holds a file's last records or an empty file: lines
   * written during the run go there); later partitions then start at +Infinity: nothing.
   */
  readonly starts: readonly number[]
  readonly ends: readonly number[]
  /** Its input bytes (the last partition counted to each file's size when planned). */
  readonly bytes: number
}

export interface Plan {
  /** Each file's format, found at its start (`auto` for a file with nothing to merge yet). */
  readonly formats: readonly TimestampFormat[]
  readonly partitions: readonly Partition[]
}

/** Samples of the time range are at least this far apart. */
const MIN_SAMPLE_STEP = 256
/** What detection reads first (see formatOf). */
const DETECT_BYTES = 64 * 1024
/** Detection reads at most this many blocks to find a file's first whole line. */
const DETECT_READS = 8
const NEWLINE = 0x0a

/**
 * The format the single merge would find for `source`: the given one, or what detection makes
 * of the first block it reads. null when it finds none there (the single merge would read that
 * block's lines without times, which a partition could not repeat).
 */
function formatOf(source: PlanSource, opts: PlanOptions): TimestampFormat | null {
  if (opts.timestampFormat !== undefined && opts.timestampFormat !== 'auto') {
    return opts.timestampFormat
  }
  // Detection reads the first SAMPLE_LINES lines of the block: a short first read that holds
  // that many whole lines finds what the full one would (both are framed the same way), and
  // saves parsing a whole block of every file.
  const short = Math.min(opts.readBytes, DETECT_BYTES)
  const found = firstBlockFormat(source, opts, short)
  if (found.lines >= SAMPLE_LINES || found.ended || short === opts.readBytes) return found.format
  return firstBlockFormat(source, opts, opts.readBytes).format
}

/** What detection makes of the first block read with `readBytes`, and its lines. */
function firstBlockFormat(
  source: PlanSource,
  opts: PlanOptions,
  readBytes: number,
): { format: LineFormat | null; lines: number; ended: boolean } {
  const reader = new SourceReader({
    fd: source.fd,
    offset: source.start,
    maxLineBytes: opts.maxLineBytes,
    readBytes,
    format: 'auto',
    timestamps: timestampsOf(source, opts),
  })
  const slot = Buffer.allocUnsafe(readBytes + 64 * 1024)
  for (let i = 0; i < DETECT_READS && !reader.ended; i++) {
    const read = reader.next(slot)
    if (read.failure !== null) break
    if (read.block !== null) {
      let lines = 0
      for (let p = read.block.indexOf(NEWLINE); p >= 0; p = read.block.indexOf(NEWLINE, p + 1)) {
        if (++lines >= SAMPLE_LINES) break
      }
      // With split lines (--max-line-bytes) the pieces are lines too: not the short read's.
      return {
        format: reader.format,
        lines: read.inserted.length > 0 ? 0 : lines,
        ended: read.end,
      }
    }
  }
  return { format: null, lines: 0, ended: true }
}

function timestampsOf(source: PlanSource, opts: PlanOptions): TimestampOptions {
  return { ...(opts.zone === undefined ? {} : { zone: opts.zone }), referenceMs: source.mtimeMs }
}

/**
 * A time sample every `step` bytes of each file: [time, bytes it stands for], sorted by time.
 */
function samples(
  files: readonly (ProbedFile | null)[],
  sources: readonly PlanSource[],
  step: number,
): [number, number][] {
  const out: [number, number][] = []
  sources.forEach((s, i) => {
    const file = files[i]
    if (!file) return
    let at = s.start
    while (at < s.size) {
      const from = file.lineStartFrom(at, s.start)
      const leader = from < 0 || from >= s.size ? null : file.leaderFrom(from, s.size)
      if (leader === null) break
      const next = Math.max(leader.next, at + step)
      out.push([leader.time, Math.min(next, s.size) - at])
      at = next
    }
  })
  return out.sort((a, b) => a[0] - b[0])
}

/** Plans the partitions of a merge of `sources`, or null (see above). */
export function planPartitions(sources: readonly PlanSource[], opts: PlanOptions): Plan | null {
  try {
    const probed = probeFiles(sources, opts)
    if (probed === null) return null
    const partitions = partitionsAt(
      boundsOf(probed.files, sources, opts),
      probed.files,
      sources,
      opts,
    )
    return partitions === null ? null : { formats: probed.formats, partitions }
  } catch (err) {
    if (err instanceof Unplannable) return null
    throw err
  }
}

/**
 * Each file's format and the file as the binary search reads it (null for a file with nothing
 * to merge); null when a file's format does not allow a plan (see above).
 */
function probeFiles(
  sources: readonly PlanSource[],
  opts: PlanOptions,
): { formats: TimestampFormat[]; files: (ProbedFile | null)[] } | null {
  const formats: TimestampFormat[] = []
  const files: (ProbedFile | null)[] = []
  for (const s of sources) {
    if (s.size <= s.start) {
      formats.push(opts.timestampFormat ?? 'auto')
      files.push(null)
      continue
    }
    const format = formatOf(s, opts)
    if (format === null || format === 'auto' || format === 'rfc3164') return null
    formats.push(format)
    files.push(
      new ProbedFile(
        s.fd,
        new LineTimes(format as LineFormat, timestampsOf(s, opts)),
        opts.maxLineBytes,
      ),
    )
  }
  return { formats, files }
}

/**
 * The partitions' bounds, from samples of every file's times: a bound every partBytes, none
 * leaving a last partition of less than half of that.
 */
function boundsOf(
  files: readonly (ProbedFile | null)[],
  sources: readonly PlanSource[],
  opts: PlanOptions,
): number[] {
  const total = sources.reduce((n, s) => n + Math.max(0, s.size - s.start), 0)
  const bounds: number[] = []
  let taken = 0
  let seen = 0
  for (const [time, bytes] of samples(
    files,
    sources,
    Math.max(MIN_SAMPLE_STEP, Math.floor(opts.partBytes / 4)),
  )) {
    taken += bytes
    seen += bytes
    const last = bounds.at(-1) ?? Number.NEGATIVE_INFINITY
    if (taken >= opts.partBytes && total - seen >= opts.partBytes / 2 && time > last) {
      bounds.push(time)
      taken = 0
    }
  }
  return bounds
}

/**
 * The partitions the bounds cut, each file's range found by its binary search, and the last
 * one to every file's end; null when one would hold more than maxPartBytes.
 */
function partitionsAt(
  bounds: readonly number[],
  files: readonly (ProbedFile | null)[],
  sources: readonly PlanSource[],
  opts: PlanOptions,
): Partition[] | null {
  const partitions: Partition[] = []
  let starts = sources.map((s) => s.start)
  const maxPart = opts.maxPartBytes ?? 8 * opts.partBytes
  /** The bytes of file i in [from, to), counted up to its size when planned. */
  const within = (i: number, from: number, to: number) => {
    const size = (sources[i] as PlanSource).size
    return Math.min(to, size) - Math.min(from, size)
  }
  for (const bound of bounds) {
    const ends = sources.map((s, i) => {
      const start = starts[i] as number
      const file = files[i]
      if (start === Number.POSITIVE_INFINITY || !file) return Number.POSITIVE_INFINITY
      // No record after the bound in the rest of the file: this partition reads it to its
      // end, lines written meanwhile included (as the single merge would), later ones none
      // of it. An end at the planned size could cut a line that is still being written.
      const end = boundaryIn(file, bound, start, s.size)
      return end >= s.size ? Number.POSITIVE_INFINITY : end
    })
    const bytes = ends.reduce((n, end, i) => n + within(i, starts[i] as number, end), 0)
    if (ends.some((end, i) => end < (starts[i] as number)) || bytes > maxPart) return null
    if (bytes > 0) {
      partitions.push({ bound, starts, ends, bytes })
      starts = ends
    }
  }
  const bytes = sources.reduce(
    (n, _, i) => n + within(i, starts[i] as number, Number.POSITIVE_INFINITY),
    0,
  )
  if (bytes > maxPart) return null
  partitions.push({
    bound: Number.POSITIVE_INFINITY,
    starts,
    ends: sources.map(() => Number.POSITIVE_INFINITY),
    bytes,
  })
  return partitions
}
