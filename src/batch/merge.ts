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
 * Output: runs of records are copied into output areas carved from the same memory as the
 * read slots (CopyArena, laid out by arena-layout.ts), which makes each copy one WebAssembly
 * memory.copy (copyWithin where WebAssembly is missing). A full area goes to the writer as it
 * is, with the checkpoint marks of the sources in it, and the merge fills others while it is
 * written (merge-output.ts). Where each file's merge starts: once-source.ts.
 */
import { closeSync } from 'node:fs'
import { describeErrno } from '../errors.js'
import type { OutputFormat } from '../format/formats.js'
import type { Labels } from '../format/labels.js'
import { collectGarbage } from '../gc.js'
import type { Logger } from '../log.js'
import { TimeOrder } from '../order/time-order.js'
import type { SourceState } from '../tail/source-state.js'
import type { TimestampFormat, TimestampOptions } from '../time/timestamps.js'
import type { CopyArena } from './arena.js'
import { type ArenaLayout, arenaLayout } from './arena-layout.js'
import type { ArenaMemory } from './arena-memory.js'
import { type Feed, InlineFeed, ThreadFeed } from './feed.js'
import type { OnceWriter } from './merge-output.js'
import { MergeOutput } from './merge-output.js'
import { newSource, type OnceSource, openInput, type SourceInit } from './once-source.js'
import type { ReaderInit, ReadResult } from './source-reader.js'

export type { OnceWriter }

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
  #add(init: SourceInit): void {
    const index = this.#sources.length
    // The reader finds the leaders and times (source-reader.ts); the source's own parser is idle.
    this.#order.open(index, {
      format: this.#opts.timestampFormat,
      timestamps: this.#timestamps(init.mtimeMs),
    })
    this.#sources.push(newSource(index, init))
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
    const layout = arenaLayout(this.#opts, sources.length, total)
    const memory = this.#opts.arenaMemory
    const output = new MergeOutput(
      sources,
      this.#order,
      writer,
      this.#opts.format,
      layout,
      memory?.memory,
    )
    if (memory) memory.memory = output.arena.memory
    const feed = this.#startFeed(output.arena, layout, total)
    // A round reads at most one block of each source and releases what it allows: the stop is
    // looked at between rounds, a few milliseconds apart (the waits for the writer inside a
    // round are where the event loop, and with it the signal handler, runs).
    while (!stop?.aborted && !sources.every((s) => s.done)) {
      for (const s of sources) {
        if (s.done || !this.#order.needsMore(s.index)) continue
        const read = feed.next(s.index)
        this.#take(s, read instanceof Promise ? await read : read)
      }
      await output.release(false)
      this.#opts.onProgress?.(this.#doneBytes(), total, this.#order.stats.written)
    }
    const finished = sources.every((s) => s.done)
    // Stopped: the held records wait in their files (no mark covers them), not forced out.
    if (finished) await output.release(true)
    await output.finish()
    this.#opts.onProgress?.(this.#doneBytes(), total, this.#order.stats.written)
    // See gc.ts: without it the process may never exit.
    if (this.#opts.collectAtEnd !== false) collectGarbage()
    return finished
  }

  /** The feed of every source's blocks into the arena's slots, as `layout` says (feed.ts). */
  #startFeed(arena: CopyArena, layout: ArenaLayout, total: number): Feed {
    const readers = this.#sources.map((s) => this.#readerInit(s, layout.slotBytes))
    const feed = layout.threaded ? new ThreadFeed(arena, readers) : new InlineFeed(arena, readers)
    this.#feed = feed
    const reader =
      feed instanceof ThreadFeed
        ? `in a reader thread${feed.prestarted ? ' (started with the process)' : ''}`
        : 'on the main thread'
    this.#opts.log.debug(
      `--once --order time: ${total} bytes in ${this.#sources.length} files, read and parsed ${reader}`,
    )
    return feed
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

  /** Opens `path` where its merge starts (once-source.ts), or notes it unreadable. */
  #openOne(path: string, writer: OnceWriter): void {
    const opened = openInput(path, this.#opts.resume, this.#opts.from, this.#opts.log)
    if (opened === null) {
      this.#unreadable.push(path)
      return
    }
    const { head, ...init } = opened
    this.#add({ ...init, label: this.#opts.labels.labelOf(path) })
    writer.note({ key: init.key, offset: init.startOffset, head })
  }
}
