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
 * Both the async and the top-down engine run the merge on the main thread. The framing into
 * lines and the parsing of timestamps (a third of the work) are done by a reader thread that
 * works ahead of the merge (feed.ts), or, for small inputs, where starting a thread costs more
 * than it saves, on the main thread when the merge asks. Reads are synchronous: the files are
 * at rest and each read is a page-cache copy. With enough bytes and free cores, partition
 * threads run this same merge over byte ranges instead (partitioned.ts).
 *
 * Output: runs of records are copied into output areas (OUT_AREAS of OUT_BYTES) carved from
 * the same memory as the read slots (CopyArena), which makes each copy one WebAssembly
 * memory.copy (copyWithin where WebAssembly is missing). A full area goes to the writer as it
 * is, and the merge fills others while it is written; each write carries the file offset just
 * past the last record of every source in it, so a checkpoint of a long --once that is killed
 * resumes exactly once.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { describeErrno } from '../errors.js'
import { formatRecord, labelPrefix, type OutputFormat, type SourceInfo } from '../format/formats.js'
import type { Labels } from '../format/labels.js'
import { collectGarbage } from '../gc.js'
import type { Logger } from '../log.js'
import { FileOffsets } from '../order/file-offsets.js'
import { TimeOrder } from '../order/time-order.js'
import type { SourceMark } from '../sink/sink.js'
import { FINGERPRINT_BYTES, identityKey } from '../tail/cursor.js'
import { lineStartBeforeSync } from '../tail/from-end.js'
import { type SourceState, sourceIdentity } from '../tail/source-state.js'
import type { TimestampFormat, TimestampOptions } from '../time/timestamps.js'
import { CopyArena } from './arena.js'
import { type ArenaMemory, MAX_WASM_BYTES, wasmAvailable } from './arena-memory.js'
import { busyCoresNow } from './busy-cores.js'
import { type Feed, INLINE_SLOTS, InlineFeed, THREAD_SLOTS, ThreadFeed } from './feed.js'
import { wantsReaderThread } from './prestart.js'
import type { ReaderInit, ReadResult } from './source-reader.js'

/** The writer the merge writes to (LoopWriter). */
export interface OnceWriter {
  /** Queues `block`, which the writer may hold until written (see queuedBytes). */
  write(block: Buffer, marks?: readonly SourceMark[]): Promise<void> | undefined
  note(mark: SourceMark): void
  /** Bytes queued and not yet written: the newest ones handed over, as writes go in order. */
  readonly queuedBytes: number
  /** Resolves once everything queued so far is written. */
  drain(): Promise<void>
  /** Resolves once at most `bytes` are queued (the writer writes a long queue a part at a time). */
  drainTo(bytes: number): Promise<void>
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
  /**
   * Read and parse in a reader thread (true), on the main thread (false), or as
   * wantsReaderThread says for the bytes to read and the machine (undefined).
   */
  readonly readerThread?: boolean
  /** The output areas' size and number (tests make them small); default 256 KiB x 16. */
  readonly outBytes?: number
  readonly outAreas?: number
  /** The full collection at the end (gc.ts); a partition thread, which goes on, skips it. */
  readonly collectAtEnd?: boolean
  /**
   * The arena's memory from one merge to the next (a partition thread): used when large
   * enough, and set to the memory this merge used.
   */
  readonly arenaMemory?: { memory: ArenaMemory | null }
}

interface OnceSource {
  readonly index: number
  readonly fd: number
  readonly offsets: FileOffsets
  /** Its identity key (dev:ino), as the writer's marks name it. */
  readonly key: string
  readonly state: SourceState
  readonly info: SourceInfo & { readonly prefix: Buffer }
  /** Where reading starts (moved by resumeAt) and stops (a partition's end; default the file's). */
  startOffset: number
  end?: number
  /** The timestamp format found by a planner (plan.ts); default --timestamp-format or auto. */
  format?: TimestampFormat
  readonly size: number
  readonly mtimeMs: number
  /** The file offset read up to (progress). */
  readTo: number
  /** The block runs were last copied from, and where it lies in the arena (CopyArena.baseOf). */
  block: Buffer | null
  base: number
  done: boolean
  /** The merge's offset just past the last record written (for the next write's marks). */
  written: number
  touched: boolean
  /** Its fd belongs to another thread's merge (openParts): not closed here. */
  borrowed?: boolean
}

/** A source as the planner of a partitioned merge sees it (plan.ts). */
export interface PlanSource {
  readonly fd: number
  readonly key: string
  readonly path: string
  readonly label: string
  /** Where its merge starts (checkpoint, --from) and its size when opened. */
  readonly start: number
  readonly size: number
  readonly mtimeMs: number
}

/** A source's part of one partition: its bytes [start, end), parsed as `format`. */
export interface PartSource extends Omit<PlanSource, 'size'> {
  readonly end: number
  readonly format: TimestampFormat
}

/**
 * Output areas: the merge fills some while the writer writes the others. Many of them, so that
 * it rarely waits: on 2 cores the writes (a third of the CPU time of the merge, in the kernel)
 * lag behind in bursts while other threads have the cores. With 4 areas the benchmark's merge
 * waited for the writer 180-560 ms of its ~1.1 s.
 */
const OUT_BYTES = 256 * 1024
const OUT_AREAS = 16
/** Room in a read slot for the partial line carried over from the previous read. */
const SLOT_SLACK = 64 * 1024
/** The read slots of all files together stay under this (many files: smaller reads). */
const ARENA_BUDGET = 64 * 1024 * 1024
const MIN_READ = 16 * 1024
/**
 * What each read of a merge of `sources` files asks for: the slots of all stay in budget
 * (`slots` a source: INLINE_SLOTS, or THREAD_SLOTS with the reader thread).
 */
export function readBytesFor(
  readChunkBytes: number,
  sources: number,
  slots = INLINE_SLOTS,
): number {
  return Math.max(
    MIN_READ,
    Math.min(readChunkBytes, Math.floor(ARENA_BUDGET / (slots * Math.max(1, sources)))),
  )
}

/**
 * LOGMERGE_READER_THREAD=on|off forces the choice (tests run the thread on small files, the
 * benchmark compares both); anything else, or unset, leaves it to wantsReaderThread.
 */
export function readerThreadChoice(env: NodeJS.ProcessEnv = process.env): boolean | undefined {
  const value = env.LOGMERGE_READER_THREAD
  return value === 'on' ? true : value === 'off' ? false : undefined
}

export class OnceTimeMerge {
  readonly #opts: OnceTimeOptions
  readonly #sources: OnceSource[] = []
  readonly #unreadable: string[] = []
  readonly #order: TimeOrder<number>
  #feed: Feed | null = null
  #closed: Promise<void> | null = null

  constructor(opts: OnceTimeOptions) {
    this.#opts = opts
    this.#order = new TimeOrder<number>({
      windowMs: Number.POSITIVE_INFINITY,
      timestamps: opts.zone === undefined ? {} : { zone: opts.zone },
    })
  }

  /** Records written after a record with a later time (a file's own times went back). */
  get late(): number {
    return this.#order.stats.late
  }

  /** Records written. */
  get records(): number {
    return this.#order.stats.written
  }

  /** Input names that could not be opened. */
  get unreadable(): readonly string[] {
    return this.#unreadable
  }

  /** Every source as a checkpoint records it, at `offsets` (the writer's snapshot). */
  checkpoint(offsets: ReadonlyMap<string, number>): SourceState[] {
    return this.#sources.map((s) => ({ ...s.state, offset: offsets.get(s.key) ?? s.startOffset }))
  }

  /** The sources opened, as a partitioned merge plans them (plan.ts). */
  get planSources(): readonly PlanSource[] {
    return this.#sources.map((s) => ({
      fd: s.fd,
      key: s.key,
      path: s.state.path,
      label: s.info.label,
      start: s.startOffset,
      size: s.size,
      mtimeMs: s.mtimeMs,
    }))
  }

  /**
   * Merges parts of files already open elsewhere (a partition, in a partition thread): each
   * source is read from `start` to `end` with the format given. Instead of open().
   */
  openParts(parts: readonly PartSource[]): void {
    for (const part of parts) {
      this.#add({
        fd: part.fd,
        key: part.key,
        state: { path: part.path, dev: 0, ino: 0, head: '', offset: part.start },
        label: part.label,
        startOffset: part.start,
        end: part.end,
        format: part.format,
        size: part.end,
        mtimeMs: part.mtimeMs,
        borrowed: true,
      })
    }
  }

  /** Adds a source to read from `startOffset`, with nothing read yet. */
  #add(
    opened: Pick<
      OnceSource,
      'fd' | 'key' | 'state' | 'startOffset' | 'end' | 'format' | 'size' | 'mtimeMs' | 'borrowed'
    > & { readonly label: string },
  ): void {
    const { label, ...source } = opened
    const index = this.#sources.length
    // The reader finds the leaders and times (source-reader.ts); the source's own parser is idle.
    this.#order.open(index, {
      format: this.#opts.timestampFormat,
      timestamps: this.#timestamps(opened.mtimeMs),
    })
    this.#sources.push({
      ...source,
      index,
      offsets: new FileOffsets(),
      info: { label, path: opened.state.path, prefix: labelPrefix(label) },
      readTo: opened.startOffset,
      block: null,
      base: -1,
      done: false,
      written: 0,
      touched: false,
    })
  }

  /**
   * Goes on from where a partitioned merge stopped: every source from `offsets[i]`, parsed as
   * `formats[i]` (what the planner found at the file's start: parsing from the middle of a file
   * must not guess again), after records up to time `maxWritten`. Before run().
   */
  resumeAt(
    offsets: readonly number[],
    formats: readonly TimestampFormat[],
    maxWritten: number,
  ): void {
    for (const s of this.#sources) {
      const offset = offsets[s.index] ?? s.startOffset
      s.format = formats[s.index] ?? s.format
      if (Number.isFinite(offset)) {
        s.startOffset = offset
        s.readTo = offset
      } else {
        // Read to its end by a partition already written: nothing left of it to merge.
        s.done = true
        this.#order.end(s.index)
      }
    }
    this.#order.writtenUpTo(maxWritten)
  }

  /** The latest time written (a partitioned merge checks its partition against its bound). */
  get maxWritten(): number {
    return this.#order.maxWritten
  }

  /** Opens every input where the checkpoint or --from says, and notes it with the writer. */
  open(writer: OnceWriter): void {
    for (const path of this.#opts.paths) this.#openOne(path, writer)
  }

  /**
   * Merges every source to its end into `writer`, or until `stop` is aborted (SIGTERM): then
   * the merge reads nothing more, what it has released so far goes to the writer (whole
   * records, each write with its exact marks) and the records it still holds stay unwritten,
   * so a restart with the same state goes on with them. Returns whether every source was
   * merged to its end.
   */
  async run(writer: OnceWriter, stop?: AbortSignal): Promise<boolean> {
    const sources = this.#sources
    const total = sources.reduce((n, s) => n + Math.max(0, s.size - s.startOffset), 0)
    const outBytes = this.#opts.outBytes ?? OUT_BYTES
    const outAreas = this.#opts.outAreas ?? OUT_AREAS
    const files = Math.max(1, sources.length)
    const threadSlotBytes = readBytesFor(this.#opts.readChunkBytes, files, THREAD_SLOTS)
    const threadArenaBytes = CopyArena.bytesFor(
      threadSlotBytes + SLOT_SLACK,
      THREAD_SLOTS * files,
      outBytes,
      outAreas,
    )
    // The reader thread puts blocks into shared memory that only WebAssembly copies from fast
    // (arena-memory.ts): without it (--jitless), or for an arena over WebAssembly's 4 GiB
    // (some 10,000 files), the main thread reads.
    const threaded =
      (this.#opts.readerThread ??
        wantsReaderThread(total, availableParallelism(), busyCoresNow())) &&
      wasmAvailable() &&
      threadArenaBytes <= MAX_WASM_BYTES
    const slots = threaded ? THREAD_SLOTS : INLINE_SLOTS
    const slotBytes = threaded
      ? threadSlotBytes
      : readBytesFor(this.#opts.readChunkBytes, files, INLINE_SLOTS)
    const raw = this.#opts.format === 'raw'
    let pending: Promise<void> | undefined
    // The writer keeps each output area until it is written (no copy): see #makeRoom.
    const arena = new CopyArena(
      slotBytes + SLOT_SLACK,
      slots * files,
      outBytes,
      (bytes) => {
        pending = writer.write(bytes, this.#marks()) ?? pending
      },
      {
        outAreas,
        shared: threaded,
        ...(this.#opts.arenaMemory?.memory ? { memory: this.#opts.arenaMemory.memory } : {}),
      },
    )
    if (this.#opts.arenaMemory) this.#opts.arenaMemory.memory = arena.memory
    const readers = sources.map((s) => this.#readerInit(s, slotBytes))
    const feed = threaded ? new ThreadFeed(arena, readers) : new InlineFeed(arena, readers)
    this.#feed = feed
    const reader =
      feed instanceof ThreadFeed
        ? `in a reader thread${feed.prestarted ? ' (started with the process)' : ''}`
        : 'on the main thread'
    this.#opts.log.debug(
      `--once --order time: ${total} bytes in ${sources.length} files, read and parsed ${reader}`,
    )
    let released = 0
    const runSink = (key: number, block: Buffer, start: number, end: number, endOffset: number) => {
      const source = sources[key] as OnceSource
      if (block !== source.block) {
        source.block = block
        source.base = arena.baseOf(block)
      }
      arena.append(block, start, end, source.base)
      released += end - start
      // Mapped to a file offset only when the output area is written (#marks): once an area.
      source.written = endOffset
      source.touched = true
    }
    /**
     * Releases what the merge allows (everything held with `force`), a few areas at a time:
     * each step takes no more than the free output areas hold, then waits for room.
     */
    const release = async (force: boolean) => {
      for (;;) {
        await this.#makeRoom(arena, writer, outAreas)
        // Room for one more run past the limit (most are far shorter than an area); at least
        // one run a step, so that the merge always moves on.
        const limit = Math.max(1, arena.freeBytes - outBytes)
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
    // A round reads at most one block of each source and releases what it allows: the stop is
    // looked at between rounds, a few milliseconds apart (the waits for the writer inside a
    // round are where the event loop, and with it the signal handler, runs).
    while (!stop?.aborted && !sources.every((s) => s.done)) {
      for (const s of sources) {
        if (s.done || !this.#order.needsMore(s.index)) continue
        const read = feed.next(s.index)
        this.#take(s, read instanceof Promise ? await read : read)
      }
      await release(false)
      this.#opts.onProgress?.(this.#doneBytes(), total, this.#order.stats.written)
    }
    const finished = sources.every((s) => s.done)
    // Stopped: the held records wait in their files (no mark covers them), not forced out.
    if (finished) await release(true)
    arena.flush()
    if (pending) await pending
    this.#opts.onProgress?.(this.#doneBytes(), total, this.#order.stats.written)
    // See gc.ts: without it the process may never exit.
    if (this.#opts.collectAtEnd !== false) collectGarbage()
    return finished
  }

  /** What the reader of `s` needs (plain data: it may go to the reader thread). */
  #readerInit(s: OnceSource, slotBytes: number): ReaderInit {
    return {
      fd: s.fd,
      offset: s.startOffset,
      ...(s.end === undefined ? {} : { end: s.end }),
      maxLineBytes: this.#opts.maxLineBytes,
      readBytes: slotBytes,
      format: s.format ?? this.#opts.timestampFormat ?? 'auto',
      timestamps: this.#timestamps(s.mtimeMs),
    }
  }

  /** The timestamp options of a file: RFC 3164 dates have no year, placed by its mtime. */
  #timestamps(mtimeMs: number): TimestampOptions {
    return {
      ...(this.#opts.zone === undefined ? {} : { zone: this.#opts.zone }),
      referenceMs: mtimeMs,
    }
  }

  /** One read of `s`: its lines go to the merge; at its end, it ends. */
  #take(s: OnceSource, read: ReadResult): void {
    if (read.failure) {
      const { code, message } = read.failure
      // An errno from the read, or the reader thread's finding (the file changed meanwhile).
      const why =
        code === undefined ? message : describeErrno(Object.assign(new Error(message), { code }))
      this.#opts.log.warn(`cannot read ${s.state.path}: ${why}; merging what was read`)
      this.#unreadable.push(s.state.path)
    }
    if (read.block !== null) {
      const at = s.offsets.add(read.block.length, read.fileStart, read.inserted)
      this.#order.push(s.index, read.block, 0, at, read.leaders ?? undefined)
    }
    s.readTo = read.readTo
    if (read.end) {
      this.#order.end(s.index)
      s.done = true
    }
  }

  /**
   * Frees the output areas the writer is done with (writes go in order, so every byte handed
   * over before the last `queuedBytes` is written); while fewer than two are free, waits until
   * the writer holds no more than half of them (it frees them a batch at a time). A step of the
   * merge then fills at most the free ones (no spill).
   */
  async #makeRoom(arena: CopyArena, writer: OnceWriter, areas: number): Promise<void> {
    arena.written(arena.handedBytes - writer.queuedBytes)
    if (arena.freeBytes >= 2 * arena.outBytes) return
    const held = Math.max(0, Math.min(Math.floor(areas / 2), areas - 2))
    await writer.drainTo(held * arena.outBytes)
    arena.written(arena.handedBytes - writer.queuedBytes)
  }

  /**
   * Stops the reader thread, if any, then closes every file. Idempotent: every call returns
   * the same promise.
   */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      try {
        const feed = this.#feed
        await feed?.close()
        if (feed instanceof ThreadFeed) {
          this.#opts.log.debug(`--once --order time: the reader thread ended ${feed.ending}`)
        }
      } finally {
        // Only now: the reader thread may read ahead of the merge until it is stopped.
        for (const s of this.#sources) if (!s.borrowed) closeSync(s.fd)
      }
    })()
    return this.#closed
  }

  #doneBytes(): number {
    let done = 0
    for (const s of this.#sources) done += Math.max(0, s.readTo - s.startOffset)
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
    this.#add({
      fd,
      key,
      state: { ...sourceIdentity(st), path, head: headText, offset: startOffset },
      label: this.#opts.labels.labelOf(path),
      startOffset,
      size: st.size,
      mtimeMs: st.mtimeMs,
    })
    writer.note({ key, offset: startOffset, head: head.subarray(0, headBytes) })
  }
}

/** The file still starts with the bytes a checkpoint saw (it is the same file, not a reused inode). */
function sameStart(known: Buffer, now: Buffer): boolean {
  return known.length <= now.length && now.subarray(0, known.length).equals(known)
}
