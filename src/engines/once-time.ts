/**
 * `--once --order time`: a pull-based stable k-way merge of every input file at rest.
 *
 * The merge (TimeOrder with an infinite window) says which sources it waits for
 * (needsMore); exactly those are read, one chunk each, then what it can release is written.
 * Reading on demand is what keeps this bounded and deadlock-free with any number of files: a
 * reader per file pushing as fast as it can (the follower's catch-up) would either hold every
 * file in memory or, with backpressure and a read concurrency limit smaller than the number of
 * files, wait forever on a file the limit never lets it read.
 *
 * Both the async and the top-down engine run it on the main thread (parsing in reader threads
 * would save the main thread ~a quarter of its work, see docs/time-order.md; not done).
 * Reads are synchronous: the files are at rest and each read is a page-cache copy, and the
 * writer's backpressure is awaited between rounds, so the event loop still turns.
 *
 * Output: runs of records are copied into output areas of 1 MiB (CopyArena; the read slots
 * live in the same buffer, which makes the copy a copyWithin). A full area goes to the writer
 * as it is, and the merge fills the next while it is written; each write carries the file
 * offset just past the last record of every source in it, so a checkpoint of a long --once
 * that is killed resumes exactly once.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs'
import { describeErrno } from '../errors.js'
import type { Logger } from '../log.js'
import { CopyArena } from '../merge/arena.js'
import { FileOffsets } from '../merge/file-offsets.js'
import { formatRecord, labelPrefix, type OutputFormat, type SourceInfo } from '../merge/format.js'
import { TimeOrder } from '../merge/reorder.js'
import type { TimestampFormat, TimestampOptions } from '../merge/timestamps.js'
import type { Labels } from '../sink/format-sink.js'
import type { SourceMark } from '../sink/sink.js'
import type { SourceState } from '../state/checkpoint.js'
import { Cursor, FINGERPRINT_BYTES, identityKey } from '../tail/cursor.js'
import { lineStartBeforeSync } from '../tail/start.js'

/** The writer the merge writes to (LoopWriter). */
export interface OnceWriter {
  /** Queues `block`, which the writer may hold until written (see queuedBytes). */
  write(block: Buffer, marks?: readonly SourceMark[]): Promise<void> | undefined
  note(mark: SourceMark): void
  /** Bytes queued and not yet written: the newest ones handed over, as writes go in order. */
  readonly queuedBytes: number
  /** Resolves once everything queued so far is written. */
  drain(): Promise<void>
}

export interface OnceTimeOptions {
  readonly paths: readonly string[]
  readonly from: 'start' | 'end'
  readonly maxLineBytes: number
  readonly readChunkBytes: number
  readonly format: OutputFormat
  readonly labels: Labels
  readonly timestampFormat?: TimestampFormat
  readonly zone?: TimestampOptions['zone']
  /** Where files recorded by a checkpoint resume (by identity). */
  readonly resume: readonly SourceState[]
  readonly log: Logger
  /** Called after each round with the bytes read so far, of the total, and records written. */
  readonly onProgress?: (done: number, total: number, records: number) => void
}

interface OnceSource {
  readonly index: number
  readonly fd: number
  readonly cursor: Cursor
  readonly offsets: FileOffsets
  /** Its identity key (dev:ino), as the writer's marks name it. */
  readonly key: string
  readonly state: SourceState
  readonly info: SourceInfo & { readonly prefix: Buffer }
  readonly startOffset: number
  readonly size: number
  reads: number
  done: boolean
  /** The merge's offset just past the last record written (for the next write's marks). */
  written: number
  touched: boolean
}

const OUT_BYTES = 1024 * 1024
/** Output areas: the merge fills one while the writer writes the others. */
const OUT_AREAS = 4
/** Room in a read slot for the partial line carried over from the previous read. */
const SLOT_SLACK = 64 * 1024
/** The read slots of all files together stay under this (many files: smaller reads). */
const ARENA_BUDGET = 64 * 1024 * 1024
const MIN_READ = 16 * 1024

export class OnceTimeMerge {
  readonly #opts: OnceTimeOptions
  readonly #sources: OnceSource[] = []
  readonly #unreadable: string[] = []
  readonly #order: TimeOrder<number>

  constructor(opts: OnceTimeOptions) {
    this.#opts = opts
    this.#order = new TimeOrder<number>({
      windowMs: Number.POSITIVE_INFINITY,
      timestamps: opts.zone === undefined ? {} : { zone: opts.zone },
    })
  }

  /** Input names that could not be opened. */
  get unreadable(): readonly string[] {
    return this.#unreadable
  }

  /** Every source as a checkpoint records it, at `offsets` (the writer's snapshot). */
  checkpoint(offsets: ReadonlyMap<string, number>): SourceState[] {
    return this.#sources.map((s) => ({ ...s.state, offset: offsets.get(s.key) ?? s.startOffset }))
  }

  /** Opens every input where the checkpoint or --from says, and notes it with the writer. */
  open(writer: OnceWriter): void {
    for (const path of this.#opts.paths) this.#openOne(path, writer)
  }

  /** Merges every source to its end into `writer`. */
  async run(writer: OnceWriter): Promise<void> {
    const sources = this.#sources
    const slotBytes = Math.max(
      MIN_READ,
      Math.min(
        this.#opts.readChunkBytes,
        Math.floor(ARENA_BUDGET / (2 * Math.max(1, sources.length))),
      ),
    )
    const raw = this.#opts.format === 'raw'
    let pending: Promise<void> | undefined
    // The writer keeps each output area until it is written (no copy): see #makeRoom.
    const arena = new CopyArena(
      slotBytes + SLOT_SLACK,
      2 * Math.max(1, sources.length),
      OUT_BYTES,
      (bytes) => {
        pending = writer.write(bytes, this.#marks()) ?? pending
      },
      { outAreas: OUT_AREAS },
    )
    let released = 0
    const runSink = (key: number, block: Buffer, start: number, end: number, endOffset: number) => {
      const source = sources[key] as OnceSource
      arena.append(block, start, end)
      released += end - start
      // Mapped to a file offset only when the output area is written (#marks): once a MiB.
      source.written = endOffset
      source.touched = true
    }
    /**
     * Releases what the merge allows (everything held with `force`), a few MiB at a time: each
     * step takes no more than the free output areas hold, then waits for room.
     */
    const release = async (force: boolean) => {
      for (;;) {
        await this.#makeRoom(arena, writer)
        const limit = arena.freeBytes - OUT_BYTES
        released = 0
        if (raw) {
          if (force) this.#order.flushRuns(runSink, limit)
          else this.#order.releaseRuns(0, runSink, limit)
        } else {
          const records = force ? this.#order.flush(limit) : this.#order.release(0, limit)
          released = this.#writeRecords(records, arena)
        }
        if (pending) {
          await pending
          pending = undefined
        }
        if (released < limit) return
      }
    }
    const total = sources.reduce((n, s) => n + Math.max(0, s.size - s.startOffset), 0)
    let open = sources.length
    while (open > 0) {
      open = 0
      for (const s of sources) {
        if (s.done) continue
        open++
        if (this.#order.needsMore(s.index))
          this.#readOne(s, arena.slot(2 * s.index + (s.reads++ % 2)), slotBytes)
      }
      await release(false)
      this.#opts.onProgress?.(this.#doneBytes(), total, this.#order.stats.written)
    }
    await release(true)
    arena.flush()
    if (pending) await pending
    this.#opts.onProgress?.(this.#doneBytes(), total, this.#order.stats.written)
  }

  /**
   * Frees the output areas the writer is done with (writes go in order, so every byte handed
   * over before the last `queuedBytes` is written); while fewer than two are free, waits for
   * the writer. A step of the merge then fills at most the free ones (no spill).
   */
  async #makeRoom(arena: CopyArena, writer: OnceWriter): Promise<void> {
    arena.written(arena.handedBytes - writer.queuedBytes)
    if (arena.freeBytes >= 2 * OUT_BYTES) return
    await writer.drain()
    arena.written(arena.handedBytes)
  }

  /** Closes every file (idempotent). */
  close(): void {
    for (const s of this.#sources) {
      if (s.done) continue
      s.done = true
      closeSync(s.fd)
    }
  }

  #doneBytes(): number {
    let done = 0
    for (const s of this.#sources) done += Math.max(0, s.cursor.offset - s.startOffset)
    return done
  }

  /** Formats and appends records (prefix, json); returns their bytes as read. */
  #writeRecords(records: ReturnType<TimeOrder<number>['release']>, arena: CopyArena): number {
    let taken = 0
    for (const record of records) {
      taken += record.end - record.start
      const source = this.#sources[record.key] as OnceSource
      const offset = source.offsets.toFile(record.offset)
      const bytes = formatRecord(this.#opts.format, { ...record, offset }, source.info)
      arena.append(bytes, 0, bytes.length)
      source.written = record.endOffset
      source.touched = true
    }
    return taken
  }

  /** The marks of the sources written since the last write. */
  #marks(): SourceMark[] {
    const marks: SourceMark[] = []
    for (const s of this.#sources) {
      if (!s.touched) continue
      s.touched = false
      marks.push({ key: s.key, offset: s.offsets.toFile(s.written) })
    }
    return marks
  }

  /** One read of `s` into `slot`: its lines go to the merge; at its end, it ends. */
  #readOne(s: OnceSource, slot: Buffer, want: number): void {
    const committed = s.cursor.committedOffset
    const { buf, start } = s.cursor.readBuffer(want, slot)
    let n: number
    try {
      n = readSync(s.fd, buf, start, want, s.cursor.offset)
    } catch (err) {
      this.#opts.log.warn(
        `cannot read ${s.state.path}: ${describeErrno(err as NodeJS.ErrnoException)}; merging what was read`,
      )
      this.#unreadable.push(s.state.path)
      n = 0
    }
    const block = n === 0 ? s.cursor.flush() : s.cursor.frameRead(buf, start, n)
    if (block !== null) {
      const at = s.offsets.add(block.length, committed, s.cursor.inserted)
      this.#order.push(s.index, block, 0, at)
    }
    if (n === 0) {
      this.#order.end(s.index)
      s.done = true
      closeSync(s.fd)
    }
  }

  #openOne(path: string, writer: OnceWriter): void {
    let fd: number
    try {
      fd = openSync(path, 'r')
    } catch (err) {
      this.#opts.log.warn(`cannot open ${path}: ${describeErrno(err as NodeJS.ErrnoException)}`)
      this.#unreadable.push(path)
      return
    }
    const st = fstatSync(fd, { bigint: false })
    const head = Buffer.alloc(FINGERPRINT_BYTES)
    const headBytes = readSync(fd, head, 0, FINGERPRINT_BYTES, 0)
    const key = identityKey(st)
    const headText = head.subarray(0, headBytes).toString('base64')
    const known = this.#opts.resume.find((r) => identityKey(r) === key)
    const startOffset =
      known &&
      known.offset <= st.size &&
      sameStart(Buffer.from(known.head, 'base64'), head.subarray(0, headBytes))
        ? known.offset
        : this.#opts.from === 'start'
          ? 0
          : lineStartBeforeSync(fd, st.size)
    const index = this.#sources.length
    const label = this.#opts.labels.labelOf(path)
    this.#order.open(index, {
      format: this.#opts.timestampFormat,
      // RFC 3164 dates have no year: a file at rest is placed by its modification time.
      timestamps: {
        ...(this.#opts.zone === undefined ? {} : { zone: this.#opts.zone }),
        referenceMs: st.mtimeMs,
      },
    })
    this.#sources.push({
      index,
      fd,
      cursor: new Cursor({
        identity: st,
        offset: startOffset,
        head: head.subarray(0, headBytes),
        maxLineBytes: this.#opts.maxLineBytes,
      }),
      offsets: new FileOffsets(),
      key,
      state: { path, dev: st.dev, ino: st.ino, head: headText, offset: startOffset },
      info: { label, path, prefix: labelPrefix(label) },
      startOffset,
      size: st.size,
      reads: 0,
      done: false,
      written: 0,
      touched: false,
    })
    writer.note({ key, offset: startOffset })
  }
}

/** The file still starts with the bytes a checkpoint saw (it is the same file, not a reused inode). */
function sameStart(known: Buffer, now: Buffer): boolean {
  return known.length <= now.length && now.subarray(0, known.length).equals(known)
}
