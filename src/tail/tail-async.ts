/**
 * The event-loop reader shell (the notes' `tail_async`): the I/O of async-fs.ts around the pure
 * core (Cursor, FileTable, and the decisions both shells share: FileLook, OpenOutcomes, the
 * searches of generation-search.ts, whose I/O is tail-async-search.ts). Woken by chokidar
 * events, with a cheap periodic sweep as a safety net; p-limit bounds the reads in flight, and
 * InputSlots the descriptors. Compare tail-sync.ts, the blocking shell: same steps, same order.
 */
import { fstatSync, type Stats } from 'node:fs'
import { dirname } from 'node:path'
import type { LimitFunction } from 'p-limit'
import { isSystemError } from '../errors.js'
import type { BlockSink } from '../sink/sink.js'
import {
  closeNow,
  fstatFd,
  fstatNow,
  readAt,
  readHead,
  SYNC_READ_MAX,
  statNow,
} from './async-fs.js'
import { identityKey } from './cursor.js'
import { checkReadFault } from './fault.js'
import { inputFileBudget } from './fd-budget.js'
import { FileLook } from './file-look.js'
import { FileTable, sweepBudget } from './file-table.js'
import { forEachLimited } from './for-each-limited.js'
import { lineStartBefore } from './from-end.js'
import { MISSING_SCAN_SWEEPS } from './generation-rules.js'
import { lookNote } from './generation-search.js'
import { readHeadSync, statQuietly } from './input-fs.js'
import { InputSlots } from './input-slots.js'
import { OpenOutcomes } from './open-outcomes.js'
import type { KeptOpen } from './prescan.js'
import { ReadBuffers } from './read-buffers.js'
import { ReadSchedule } from './read-schedule.js'
import { readSize } from './read-size.js'
import type { ReaderOptions } from './reader-options.js'
import type { SourceState } from './source-state.js'
import { SourceTeller } from './source-teller.js'
import { AsyncSearches, type AsyncSearchReader } from './tail-async-search.js'
import {
  grewSince,
  markOf,
  type RememberedSource,
  type TableSummary,
  type Tracked,
} from './tracked.js'

/** The event-loop shell's options: the shared ones (see reader-options.ts), its writer and pool. */
export interface FollowOptions extends ReaderOptions {
  readonly sink: BlockSink
  /** Bounds the reads in flight (p-limit). */
  readonly limit: LimitFunction
}

type File = Tracked<number>

/** Names looked at, opened or read at once during the start-up and catch-up passes. */
const STARTUP_CONCURRENCY = 64
/** A big read's buffer holds a partial line of up to this much before the new bytes. */
const HELD_LINE_ROOM = 64 * 1024

export class AsyncFollower {
  readonly #opts: FollowOptions
  readonly #table: FileTable<number>
  /** Serialises the work on each name (each file's reads are serialised by #reads). */
  readonly #nameWork = new Map<string, Promise<void>>()
  #closed = false
  /** What the writer and the owner are told about each file. */
  readonly #teller: SourceTeller
  /** What each outcome of opening a name means (see open-outcomes.ts). */
  readonly #outcomes: OpenOutcomes<number>
  /** Some rotated file is still open (cleared by the sweep): see changed(). */
  #orphansMayGrow = false
  /** Files born after this are new to this run (see ReaderOptions.startedAt). */
  readonly #startedAt: number
  #sweeps = 0
  /** The periodic search a sweep started, while it runs (one at a time). */
  #scan: Promise<void> | null = null
  /** Names each sweep looks at (see sweepBudget). */
  readonly #sweepBudget: number
  /** When each file is read: one read at a time, change events folded (see read-schedule.ts). */
  readonly #reads: ReadSchedule<File>
  /** Files prescan left open for the start-up pass (see start), until it takes them. */
  #kept: Map<string, KeptOpen> | null = null
  /** Events wait for the start-up pass: a file must not be opened before its resume point is set. */
  #started: Promise<void>
  #markStarted!: () => void
  /** The input descriptors within this reader's budget (see input-slots.ts). */
  readonly #slots: InputSlots
  /** The directory searches' I/O (see tail-async-search.ts). */
  readonly #search: AsyncSearches
  /** Buffers for big reads, used again once the writer is done with them (read-buffers.ts). */
  readonly #buffers: ReadBuffers

  constructor(opts: FollowOptions) {
    this.#started = new Promise((resolve) => {
      this.#markStarted = resolve
    })
    this.#opts = opts
    this.#startedAt = opts.startedAt ?? Date.now()
    this.#table = new FileTable(opts.maxLineBytes)
    this.#teller = new SourceTeller(opts.sink, opts.log, opts.onSource)
    this.#outcomes = new OpenOutcomes(this.#table, this.#teller, opts.log, opts)
    this.#slots = new InputSlots(opts.maxOpenFiles ?? inputFileBudget(1), (count) =>
      this.#parkIdle(count),
    )
    this.#search = new AsyncSearches(
      this.#table,
      this.#teller,
      this.#slots,
      this.#searchReader(),
      opts,
    )
    this.#sweepBudget = sweepBudget(opts.pollMs ?? 1000, opts.sweepPerSecond)
    this.#reads = new ReadSchedule({
      foldMs: opts.foldMs,
      limit: opts.limit,
      read: (file) => this.#readNew(file),
      readNamed: (file) => this.#readNamed(file),
      ended: () => this.#slots.wake(), // the file may be parked now
    })
    this.#buffers = new ReadBuffers(opts.readChunkBytes + HELD_LINE_ROOM)
  }

  /** Inputs that could not be read at their last look (for --once's exit status). */
  get unreadable(): readonly string[] {
    return this.#table.unreadableNow()
  }

  /** Files a checkpoint recorded: they resume where they were when found again. */
  remember(sources: readonly RememberedSource[]): void {
    this.#table.remember(sources)
  }

  /** Files open, parked and missing, rotations and copies per name (for metrics). */
  summary(): TableSummary {
    return this.#table.summary()
  }

  /** Where every file stands, for a checkpoint (see FileTable.checkpoint). */
  checkpoint(offsets: ReadonlyMap<string, number>): SourceState[] {
    return this.#table.checkpoint(offsets)
  }

  /**
   * Before the start-up pass: find every remembered file by identity among the files beside its
   * old name (a.log.1, a.log-20261124: rotated while we were down, or still at its name) and
   * read it from where we were to its end. The start-up pass then gives names back to those
   * still named; the rest are read out and closed like any rotated file.
   */
  async findRotated(names: readonly string[]): Promise<void> {
    // Files at an input name now are for the start-up pass (after the rotated ones).
    await this.#search.scanMissing(new Set(names), this.#table.missingDirs())
  }

  /**
   * Adds the input names found at start-up and reads what they hold. `kept`: files prescan left
   * open (see KeptOpen), taken instead of looking at and opening those names again; the pass
   * closes the ones it does not take.
   */
  async start(paths: Iterable<string>, kept?: Map<string, KeptOpen>): Promise<void> {
    const all = [...paths]
    this.#kept = kept ?? null
    this.#table.beginStartup(all)
    this.#markStarted()
    try {
      await forEachLimited(all, STARTUP_CONCURRENCY, (p) => this.resolve(p))
    } finally {
      this.#table.endStartup()
      const left = [...(this.#kept?.values() ?? [])]
      this.#kept = null
      for (const k of left) closeNow(k.fd)
    }
  }

  /** Input descriptors this reader may hold at once (prescan leaves at most this many open). */
  get openBudget(): number {
    return this.#slots.budget
  }

  /** Something happened at `path` (created, changed, removed): look again and read. */
  resolve(path: string): Promise<void> {
    if (this.#closed) return Promise.resolve()
    const next = (this.#nameWork.get(path) ?? this.#started).then(() => this.#resolve(path))
    this.#nameWork.set(path, next)
    void next.finally(() => {
      if (this.#nameWork.get(path) === next) this.#nameWork.delete(path)
    })
    return next
  }

  /**
   * A file at `path` was written to: read it (cheaper than resolve: no stat of the name), at once
   * or, while it keeps changing, folded into a read due shortly (see Pacer).
   */
  async changed(path: string): Promise<void> {
    const file = this.#table.fileOf(path)
    if (!file?.handle) return this.resolve(path)
    return this.#reads.changed(file)
  }

  /**
   * Reads `file`, after the files that lost its name and may still grow: an application writes
   * to its old file until it reopens, and those lines came first.
   */
  async #readNamed(file: File): Promise<void> {
    if (this.#orphansMayGrow)
      for (const old of this.#table.orphansNamed(file.path)) await this.#reads.pump(old)
    return this.#reads.pump(file)
  }

  /**
   * The safety net for missed events (inotify drops them under load): a cheap synchronous stat
   * of every name and every nameless open file; read only those that changed.
   */
  sweep(): void {
    if (this.#closed) return
    this.#buffers.trim()
    if (++this.#sweeps % MISSING_SCAN_SWEEPS === 0 && this.#scan === null) {
      this.#scan = this.#search
        .scanMissing(this.#table.names, this.#table.missingDirs(), { settle: true })
        .catch((err: Error) => this.#opts.log.warn(`looking for rotated files: ${err.message}`))
        .finally(() => {
          this.#scan = null
        })
    }
    // A bounded number of names a tick, going round (see SWEEP_NAMES_PER_SECOND).
    for (const [path, key] of this.#table.sweepNames(this.#sweepBudget))
      if (this.#table.sweepSaw(key, statQuietly(path))) void this.resolve(path)
    this.#orphansMayGrow = this.#table.awayMayGrow(this.#opts.quietMs)
    for (const file of this.#table.orphans()) {
      this.#orphansMayGrow = true
      const step = FileTable.orphanStep(file, sizeOf(file), this.#opts.quietMs)
      if (step === 'read') void this.#reads.pump(file)
      else if (step === 'retire') void this.#retire(file)
    }
  }

  /**
   * Resolves once the work sweep() and resolve() started is done: the periodic search, the
   * looks at names and the reads they began. For tests that drive sweeps by hand: a fixed wait
   * after sweep() was too short on a loaded machine (missing.test.ts, 1 run in 19 under load).
   */
  async settled(): Promise<void> {
    for (;;) {
      const pending = [
        ...(this.#scan ? [this.#scan] : []),
        ...this.#nameWork.values(),
        ...this.#reads.running(),
      ]
      if (pending.length === 0) return
      await Promise.allSettled(pending)
    }
  }

  /**
   * Reads every file to its end once more (for --once and the drain at shutdown): a look at
   * each name reads the file it leads to if it grew; the nameless ones are read too.
   */
  async catchUp(): Promise<void> {
    await forEachLimited([...this.#table.names.keys()], STARTUP_CONCURRENCY, (p) => this.resolve(p))
    await forEachLimited([...this.#table.orphans()], STARTUP_CONCURRENCY, (f) =>
      this.#reads.pump(f),
    )
  }

  /**
   * Stops following. With `flush`, held partial lines are written with a newline added (--once);
   * otherwise they are left unwritten (they are not complete lines yet).
   */
  async close(flush: boolean): Promise<void> {
    this.#closed = true
    this.#reads.close()
    await Promise.all([...this.#nameWork.values()])
    await Promise.all([...this.#table.open()].map((f) => this.#release(f, flush)))
    for (const file of flush ? [...this.#table.parkedFiles()] : []) {
      const rest = file.cursor.flush()
      if (rest) await this.#opts.sink.write(rest, markOf(file))
    }
  }

  async #resolve(path: string, attempt = 1): Promise<void> {
    if (this.#closed) return
    const kept = this.#kept?.get(path)
    if (kept) this.#kept?.delete(path)
    const st = kept
      ? this.#table.judgeName(path, { stats: kept.stats }, this.#opts.follow, this.#opts.log)
      : await this.#statName(path)
    if (kept && !(st && this.#table.names.get(path) !== identityKey(st))) {
      closeNow(kept.fd) // the name leads to a file already open (or to none)
      return this.#resolveWith(path, st, null, attempt)
    }
    return this.#resolveWith(path, st, kept ?? null, attempt)
  }

  async #resolveWith(
    path: string,
    st: Stats | null,
    kept: KeptOpen | null,
    attempt: number,
  ): Promise<void> {
    const movedOn = this.#table.movedOn(path, st)
    const was = this.#table.names.get(path)
    const { step, orphaned } = this.#table.look(path, st)
    if (this.#table.awayMayGrow(this.#opts.quietMs)) this.#orphansMayGrow = true
    if (step.kind !== 'same') this.#opts.log.debug(lookNote(path, was, st, step.kind, movedOn))
    if (orphaned) {
      this.#opts.log.info(`${path}: rotated or removed; reading the old file to its end`)
      this.#orphansMayGrow = true
      await this.#reads.pump(orphaned) // the rest of the old file first, then the new one
    }
    if (step.kind !== 'same' && (movedOn || this.#table.strandedAt(path, st))) {
      // Before the file now at the name: the one a checkpoint recorded there, if it was rotated
      // before we first looked, and generations created and rotated away between two looks.
      await this.#search.scanMissing(this.#table.names, new Set([dirname(path)]), {
        unknownSince: this.#startedAt,
        family: path,
      })
    }
    if (step.kind === 'open' && st) {
      if ((await this.#open(path, st, kept, attempt)) === 'moved')
        return this.#resolve(path, attempt + 1) // the name moved on since the stat (see movedOn)
    } else if (kept) closeNow(kept.fd)
    const file = this.#table.fileOf(path)
    if (file?.parked && st && st.size !== file.cursor.offset) await this.#unpark(file, path)
    if (!file?.handle) return
    // As in changed(): an old generation's late lines first (the start-up pass reads a.log
    // right after a.log.1; the application may have written to both in between).
    if (this.#orphansMayGrow)
      for (const old of this.#table.orphansNamed(path)) await this.#reads.pump(old)
    if (!grewSince(file, st)) return
    await this.#reads.pump(file)
  }

  /**
   * Reopens a parked file by `path`, its name, if the name still leads to it; otherwise the
   * next look at the name finds what it leads to now (and the parked file by identity).
   */
  async #unpark(file: File, path: string): Promise<void> {
    let fh: number
    try {
      fh = await this.#slots.open(path)
    } catch (err) {
      this.#outcomes.reopenFailed(path, err)
      return
    }
    const st = await fstatFd(fh).catch(() => null)
    if (file.parked && st !== null && identityKey(st) === file.key) this.#table.unparked(file, fh)
    else this.#slots.close(fh)
  }

  /**
   * Parks up to `count` of the idlest named files that are not being read or waiting to be
   * (their reads need the handle); their descriptors are closed at once. Returns how many.
   */
  #parkIdle(count: number): number {
    const idle = this.#table
      .idlest(count + this.#reads.reads)
      .filter((f) => !this.#reads.reading(f))
      .slice(0, count)
    for (const f of idle) this.#slots.close(this.#table.park(f))
    return idle.length
  }

  /** What the directory searches ask of this reader (see AsyncSearchReader). */
  #searchReader(): AsyncSearchReader {
    return {
      pump: (file) => this.#reads.pump(file),
      reading: (file) => this.#reads.reading(file),
      readFrom: (fh, file, size) => this.#readFrom(fh, file, size),
      release: (file, flush) => this.#release(file, flush),
      orphanTaken: () => {
        this.#orphansMayGrow = true
      },
    }
  }

  /** The file a name points to now, or null (with a warning where one is due). */
  async #statName(path: string): Promise<Stats | null> {
    return this.#table.judgeName(path, statNow(path), this.#opts.follow, this.#opts.log)
  }

  /**
   * Opens the file a stat of `path` showed to be `named` (see FileTable.opened), or takes the
   * one prescan left open (`kept`, its descriptor, stat and first bytes).
   */
  async #open(
    path: string,
    named: Stats,
    kept: KeptOpen | null,
    attempt: number,
  ): Promise<'moved' | undefined> {
    const outcome = this.#outcomes
    let fh: number
    try {
      if (kept) {
        fh = kept.fd
        this.#slots.adopt() // opened outside the budget's count, within its size (see openBudget)
      } else {
        this.#opts.openHook?.(path)
        fh = await this.#slots.open(path)
      }
    } catch (err) {
      outcome.failed(path, named, err)
      return
    }
    outcome.worked(path)
    let file: File | null = null
    try {
      const st = kept ? kept.stats : await fstatFd(fh)
      if (outcome.movedOn(named, st, attempt)) return 'moved'
      if (!outcome.readable(path, st)) return // a FIFO or a device now: never read one
      const head = kept ? kept.head : await readHead(fh)
      const startSize = outcome.startSize(path, st)
      const lineStart = startSize === null ? 0 : await lineStartBefore(fh, startSize)
      file = outcome.taken(path, fh, st, head, startSize, lineStart)
    } catch (err) {
      outcome.readFailed(path, err)
    } finally {
      if (file === null) this.#slots.close(fh)
    }
    if (file !== null) {
      this.#teller.announce(file)
      this.#slots.wake() // it may be parked now
    }
  }

  async #readNew(file: File): Promise<void> {
    const fh = file.handle
    // Replaced by another file of its identity (see FileTable.rememberCopy): never read again.
    if (fh === null || !this.#table.holds(file)) return
    const { sink, log } = this.#opts
    try {
      checkReadFault(file.path)
      const lookedAt = Date.now() // before the stat: a truncation it misses came after this
      const st = fstatNow(fh)
      // What the look says (see file-look.ts for each step and why it comes where it does).
      const look = new FileLook(this.#table, file, st, lookedAt, () => readHeadSync(fh))
      // Left alone; quiet for long enough, closed as any rotated file (after this read).
      const left = look.left(this.#opts.quietMs)
      if (left === 'release') void this.#release(file, true)
      if (left) return
      if (look.truncated) {
        await this.#search.finishFromCopy(file) // copytruncate: the copy's rest first
        // Then the open rotated files of its name: one written over in place meanwhile holds a
        // whole generation between the truncated one and what the name holds now.
        for (const old of this.#table.orphansNamed(file.path)) await this.#reads.readInside(old)
      }
      const rest = look.restart(log)
      if (rest) await sink.write(rest, markOf(file))
      look.restarted(this.#teller, this.#startedAt)
      const skipped = look.skippedSearch()
      if (skipped) await this.#search.findSkippedGenerations(fh, skipped)
      // Truncated under the read (see Cursor.readStillOurs): the pump looks again, and sees it.
      if (look.change !== 'idle' && (await this.#readFrom(fh, file, look.size))) {
        this.#reads.again(file)
      }
      this.#table.readWorked(file, log)
    } catch (err) {
      if (!isSystemError(err)) throw err // a bug, not the disk: fail loudly
      // The fd stays valid after rename or unlink; an error here is the device or the fs.
      this.#table.readFailed(file, err, log)
    }
  }

  /**
   * Reads `fh` from the cursor's offset to its end (the file `file`, or its copy), in chunks.
   * Each chunk is taken only when the file still begins as ours after it was read: the look
   * that decided to read came before a read through the pool, and before the waits for the
   * sink between chunks, and a copytruncate in between left the next generation at our offset
   * (see Cursor.readStillOurs). True when it stopped for that: the bytes read are dropped, and
   * the next look sees the truncation (and reads the rest from the copy).
   */
  async #readFrom(fh: number, file: File, size: number): Promise<boolean> {
    const { sink, readChunkBytes } = this.#opts
    const cursor = file.cursor
    let end = size
    for (let more = false; ; more = true) {
      checkReadFault(file.path)
      // It grew while we read: how much now, so a big append is read in big reads (which go
      // through the pool and let the loop run) rather than in many small ones at once.
      if (more) end = fstatNow(fh).size
      const want = readSize(end, cursor.offset, readChunkBytes)
      // A big read goes into a buffer used before (see read-buffers.ts); back to the pool
      // below, or by the writer once the block is out.
      let lent = want > SYNC_READ_MAX ? this.#buffers.take(cursor.pendingBytes + want) : null
      try {
        const { buf, start } = cursor.readBuffer(want, lent ?? undefined)
        const bytesRead = await readAt(fh, buf, start, want, cursor.offset)
        if (bytesRead === 0) break
        if (!cursor.readStillOurs(readHeadSync(fh))) return true
        file.lastActivity = Date.now()
        const block = cursor.frameRead(buf, start, bytesRead)
        this.#teller.retellIfHeadChanged(file)
        if (block) {
          // The block is a view of the lent buffer, or a copy (a long line cut): only a view
          // keeps the buffer from the pool until written.
          const scratch = lent !== null && block.buffer === lent.buffer ? lent : null
          if (scratch) lent = null
          const done = scratch ? () => this.#buffers.give(scratch) : undefined
          await sink.write(block, markOf(file), done)
        }
        if (bytesRead < want) break
      } finally {
        if (lent) this.#buffers.give(lent)
      }
    }
    return false
  }

  /** A nameless file has been quiet long enough: one last read, then flush and close. */
  async #retire(file: File): Promise<void> {
    await this.#reads.pump(file)
    if (file.names === 0) await this.#release(file, true)
  }

  /** Flushes the partial line (optionally) and closes the handle; the cursor is remembered. */
  async #release(file: File, flush: boolean): Promise<void> {
    await this.#reads.whenRead(file)
    const fh = file.handle
    if (fh === null) return
    file.handle = null
    this.#reads.forget(file)
    this.#table.released(file)
    const rest = flush ? file.cursor.flush() : null
    if (rest) await this.#opts.sink.write(rest, markOf(file))
    this.#opts.onRelease?.(file)
    this.#slots.close(fh)
  }
}

/** The size of an open file now, or -1 when fstat fails (the next read says why, once). */
function sizeOf(file: File): number {
  try {
    return fstatSync(file.handle as number).size
  } catch {
    return -1
  }
}
