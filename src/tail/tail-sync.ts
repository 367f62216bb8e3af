/**
 * The blocking reader shell (the notes' `tail_file`): statSync/readSync around the pure core
 * (Cursor, FileTable, and the decisions both shells share: FileLook, OpenOutcomes, the
 * searches of generation-search.ts, whose I/O is tail-sync-search.ts). It runs inside a worker
 * thread, which sleeps with Atomics.wait between looks. Compare tail-async.ts, the event-loop
 * shell: same steps, same order; only the I/O differs.
 */
import { fstatSync, readSync, type Stats, statSync } from 'node:fs'
import { dirname } from 'node:path'
import { isSystemError } from '../errors.js'
import type { SyncSink } from '../sink/sink.js'
import { identityKey } from './cursor.js'
import { checkReadFault } from './fault.js'
import { inputFileBudget } from './fd-budget.js'
import { FileLook } from './file-look.js'
import { FileTable, sweepBudget } from './file-table.js'
import { lineStartBeforeSync } from './from-end.js'
import { MISSING_SCAN_SWEEPS } from './generation-rules.js'
import { lookNote } from './generation-search.js'
import { readHeadSync, statQuietly } from './input-fs.js'
import { SyncInputSlots } from './input-slots.js'
import { OpenOutcomes } from './open-outcomes.js'
import { Pacer } from './pacer.js'
import { readSize } from './read-size.js'
import type { ReaderOptions } from './reader-options.js'
import { SourceTeller } from './source-teller.js'
import { SyncSearches, type SyncSearchReader } from './tail-sync-search.js'
import {
  grewSince,
  markOf,
  type RememberedSource,
  type TableSummary,
  type Tracked,
} from './tracked.js'

/** The blocking shell's options: the shared ones (see reader-options.ts) and its writer. */
export interface SyncFollowOptions extends ReaderOptions {
  readonly sink: SyncSink
}

type File = Tracked<number>

export class SyncFollower {
  readonly #opts: SyncFollowOptions
  readonly #table: FileTable<number>
  #scratch = Buffer.alloc(0)
  /** The input descriptors within this reader's budget (see input-slots.ts). */
  readonly #slots: SyncInputSlots
  /** The directory searches' I/O (see tail-sync-search.ts). */
  readonly #search: SyncSearches
  /** The file being read: never parked under its own read (copytruncate opens a copy). */
  #reading: File | null = null
  #sweeps = 0
  /** Names each sweep looks at (see sweepBudget). */
  readonly #sweepBudget: number
  /** When files that keep changing are read (see Pacer). */
  readonly #pacer: Pacer<File>
  /** What the writer and the owner are told about each file. */
  readonly #teller: SourceTeller
  /** What each outcome of opening a name means (see open-outcomes.ts). */
  readonly #outcomes: OpenOutcomes<number>
  /** Some rotated file is still open (cleared by the sweep): see changed(). */
  #orphansMayGrow = false
  /** Files born after this are new to this run (see ReaderOptions.startedAt). */
  readonly #startedAt: number
  /** The path being worked on, so a thread that fails can say which file it was at. */
  current: string | null = null

  constructor(opts: SyncFollowOptions) {
    this.#opts = opts
    this.#startedAt = opts.startedAt ?? Date.now()
    this.#table = new FileTable(opts.maxLineBytes)
    this.#teller = new SourceTeller(opts.sink, opts.log, opts.onSource)
    this.#outcomes = new OpenOutcomes(this.#table, this.#teller, opts.log, opts)
    this.#slots = new SyncInputSlots(opts.maxOpenFiles ?? inputFileBudget(1), (count) =>
      this.#parkIdle(count),
    )
    this.#search = new SyncSearches(
      this.#table,
      this.#teller,
      this.#slots,
      this.#searchReader(),
      opts,
    )
    this.#sweepBudget = sweepBudget(opts.pollMs ?? 1000, opts.sweepPerSecond)
    this.#pacer = new Pacer(opts.foldMs)
  }

  /** Inputs that could not be read at their last look (for --once's exit status). */
  get unreadable(): readonly string[] {
    return this.#table.unreadableNow()
  }

  /** Files open, parked and missing, rotations and copies per name (for metrics). */
  summary(): TableSummary {
    return this.#table.summary()
  }

  /** Files a checkpoint recorded: they resume where they were when found again. */
  remember(sources: readonly RememberedSource[]): void {
    this.#table.remember(sources)
  }

  /** Before the start-up pass: finish remembered files found beside their names (see tail-async). */
  findRotated(names: readonly string[]): void {
    // Files at an input name now are for the start-up pass (after the rotated ones).
    this.#search.scanMissing(new Set(names), this.#table.missingDirs())
  }

  start(paths: Iterable<string>): void {
    const all = [...paths]
    this.#table.beginStartup(all)
    for (const p of all) this.resolve(p)
    this.#table.endStartup()
  }

  /** Something happened at `path`: look again and read. */
  resolve(path: string, attempt = 1): void {
    this.current = path
    const st = this.#statName(path)
    const movedOn = this.#table.movedOn(path, st)
    const was = this.#table.names.get(path)
    const { step, orphaned } = this.#table.look(path, st)
    if (this.#table.awayMayGrow(this.#opts.quietMs)) this.#orphansMayGrow = true
    if (step.kind !== 'same') this.#opts.log.debug(lookNote(path, was, st, step.kind, movedOn))
    if (orphaned) {
      this.#opts.log.info(`${path}: rotated or removed; reading the old file to its end`)
      this.#orphansMayGrow = true
      this.#readNew(orphaned)
    }
    if (step.kind !== 'same' && (movedOn || this.#table.strandedAt(path, st))) {
      // Before the file now at the name: see tail-async's #resolve.
      this.#search.scanMissing(this.#table.names, new Set([dirname(path)]), {
        unknownSince: this.#startedAt,
        family: path,
      })
    }
    if (step.kind === 'open' && st && this.#open(path, st, attempt) === 'moved') {
      this.resolve(path, attempt + 1) // the name moved on since the stat (see movedOn)
      return
    }
    const file = this.#table.fileOf(path)
    if (file?.parked && st && st.size !== file.cursor.offset) this.#unpark(file, path)
    if (file?.handle != null) {
      // As in changed(): an old generation's late lines first (see tail-async.ts).
      if (this.#orphansMayGrow) for (const old of this.#table.orphansNamed(path)) this.#readNew(old)
      if (grewSince(file, st)) this.#readNew(file)
    }
    this.current = null
  }

  /**
   * A file at `path` was written to: read it, at once or, while it keeps changing, folded into a
   * read due shortly (see Pacer; the thread calls readDue when nextDueIn says).
   */
  changed(path: string): void {
    const file = this.#table.fileOf(path)
    if (file?.handle == null) {
      this.resolve(path)
      return
    }
    this.current = path
    if (this.#pacer.changed(file, performance.now())) this.#readNamed(file)
    this.current = null
  }

  /** Reads the files whose folded read is due now. */
  readDue(): void {
    for (const file of this.#pacer.takeDue(performance.now())) {
      this.current = file.path
      this.#readNamed(file)
    }
    this.current = null
  }

  /** Reads `file`, after the files that lost its name and may still grow (see tail-async.ts). */
  #readNamed(file: File): void {
    if (this.#orphansMayGrow)
      for (const old of this.#table.orphansNamed(file.path)) this.#readNew(old)
    this.#readNew(file)
  }

  /** Milliseconds until the next folded read is due (0: now), or null: none. */
  nextDueIn(): number | null {
    return this.#pacer.nextIn(performance.now())
  }

  /** The periodic look at every name and every nameless open file. Returns true if any grew. */
  sweep(): boolean {
    let grew = false
    if (++this.#sweeps % MISSING_SCAN_SWEEPS === 0) {
      this.#search.scanMissing(this.#table.names, this.#table.missingDirs(), { settle: true })
    }
    // A bounded number of names a tick, going round (see SWEEP_NAMES_PER_SECOND).
    for (const [path, key] of this.#table.sweepNames(this.#sweepBudget)) {
      if (!this.#table.sweepSaw(key, statQuietly(path))) continue
      const before = key ? this.#table.files.get(key)?.cursor.offset : undefined
      this.resolve(path)
      grew ||= before !== this.#table.fileOf(path)?.cursor.offset
    }
    this.#orphansMayGrow = this.#table.awayMayGrow(this.#opts.quietMs)
    for (const file of [...this.#table.orphans()]) {
      this.#orphansMayGrow = true
      const step = FileTable.orphanStep(file, sizeOf(file), this.#opts.quietMs)
      if (step === 'read') {
        this.#readNew(file)
        grew = true
      } else if (step === 'retire') this.#retire(file)
    }
    return grew
  }

  /** Reads every file to its end once more (see tail-async.ts). */
  catchUp(): void {
    for (const p of [...this.#table.names.keys()]) this.resolve(p)
    for (const f of [...this.#table.orphans()]) this.#readNew(f)
  }

  close(flush: boolean): void {
    for (const f of [...this.#table.open()]) this.#release(f, flush)
    for (const file of flush ? [...this.#table.parkedFiles()] : []) {
      const rest = file.cursor.flush()
      if (rest) this.#opts.sink.write(rest, markOf(file))
    }
  }

  /** Parks up to `count` of the idlest named files but the one being read (see tail-async.ts). */
  #parkIdle(count: number): number {
    const idle = this.#table
      .idlest(count + 1)
      .filter((f) => f !== this.#reading)
      .slice(0, count)
    for (const f of idle) this.#slots.close(this.#table.park(f))
    return idle.length
  }

  /** What the directory searches ask of this reader (see SyncSearchReader). */
  #searchReader(): SyncSearchReader {
    return {
      readNew: (file) => this.#readNew(file),
      readFrom: (fd, file, size) => this.#readFrom(fd, file, size),
      release: (file, flush) => this.#release(file, flush),
      orphanTaken: () => {
        this.#orphansMayGrow = true
      },
    }
  }

  /** Reopens a parked file by its name, if the name still leads to it (see tail-async.ts). */
  #unpark(file: File, path: string): void {
    let fd: number
    try {
      fd = this.#slots.open(path)
    } catch (err) {
      this.#outcomes.reopenFailed(path, err)
      return
    }
    let same = false
    try {
      same = identityKey(fstatSync(fd)) === file.key
    } catch {}
    if (same) this.#table.unparked(file, fd)
    else this.#slots.close(fd)
  }

  #statName(path: string): Stats | null {
    let seen: { stats: Stats } | { error: unknown }
    try {
      seen = { stats: statSync(path) }
    } catch (error) {
      seen = { error }
    }
    return this.#table.judgeName(path, seen, this.#opts.follow, this.#opts.log)
  }

  /** Opens the file a stat of `path` showed to be `named` (see tail-async.ts). */
  #open(path: string, named: Stats, attempt: number): 'moved' | undefined {
    const outcome = this.#outcomes
    let fd: number
    try {
      this.#opts.openHook?.(path)
      fd = this.#slots.open(path)
    } catch (err) {
      outcome.failed(path, named, err)
      return
    }
    outcome.worked(path)
    let file: File | null = null
    try {
      const st = fstatSync(fd)
      if (outcome.movedOn(named, st, attempt)) return 'moved'
      if (!outcome.readable(path, st)) return // a FIFO or a device now: never read one
      const head = readHeadSync(fd)
      const startSize = outcome.startSize(path, st)
      const lineStart = startSize === null ? 0 : lineStartBeforeSync(fd, startSize)
      file = outcome.taken(path, fd, st, head, startSize, lineStart)
    } catch (err) {
      outcome.readFailed(path, err)
    } finally {
      if (file === null) this.#slots.close(fd)
    }
    if (file !== null) this.#teller.announce(file)
  }

  #readNew(file: File): void {
    const fd = file.handle
    // Replaced by another file of its identity (see FileTable.rememberCopy): never read again.
    if (fd === null || !this.#table.holds(file)) return
    const { sink, log } = this.#opts
    this.#pacer.reading(file, performance.now())
    const outer = this.#reading // a search made while reading reads other files
    this.#reading = file
    let raced = false
    try {
      checkReadFault(file.path)
      const lookedAt = Date.now() // before the stat: a truncation it misses came after this
      const st = fstatSync(fd)
      // What the look says (see file-look.ts for each step and why it comes where it does).
      const look = new FileLook(this.#table, file, st, lookedAt, () => readHeadSync(fd))
      const left = look.left(this.#opts.quietMs)
      if (left === 'release') this.#release(file, true)
      if (left) return
      if (look.truncated) {
        this.#search.finishFromCopy(file) // copytruncate: the copy's rest first
        // Then the open rotated files of its name (see tail-async.ts).
        for (const old of this.#table.orphansNamed(file.path)) if (old !== file) this.#readNew(old)
      }
      const rest = look.restart(log)
      if (rest) sink.write(rest, markOf(file))
      look.restarted(this.#teller, this.#startedAt)
      const skipped = look.skippedSearch()
      if (skipped) this.#search.findSkippedGenerations(fd, skipped)
      if (look.change !== 'idle') raced = this.#readFrom(fd, file, look.size)
      this.#table.readWorked(file, log)
    } catch (err) {
      if (!isSystemError(err)) throw err // a bug, not the disk: let the thread fail loudly
      this.#table.readFailed(file, err, log)
    } finally {
      this.#reading = outer
    }
    // Truncated under the read (see Cursor.readStillOurs): looked at again, it is seen so.
    if (raced) this.#readNew(file)
  }

  /**
   * Reads `fd` from the cursor's offset to its end (the file `file`, or its copy), in chunks.
   * True when it stopped because the file was truncated under a read (see tail-async.ts).
   */
  #readFrom(fd: number, file: File, size: number): boolean {
    const { sink, readChunkBytes } = this.#opts
    const cursor = file.cursor
    let end = size
    for (let more = false; ; more = true) {
      checkReadFault(file.path)
      if (more) end = fstatSync(fd).size // it grew while we read (see tail-async.ts)
      const want = readSize(end, cursor.offset, readChunkBytes)
      // Blocks are consumed before the next read (the sink copies or writes them at once), so
      // one scratch buffer serves every read of this thread.
      if (this.#scratch.length < cursor.pendingBytes + want) {
        this.#scratch = Buffer.allocUnsafe(cursor.pendingBytes + want)
      }
      const { buf, start } = cursor.readBuffer(want, this.#scratch)
      const bytesRead = readSync(fd, buf, start, want, cursor.offset)
      if (bytesRead === 0) break
      if (!cursor.readStillOurs(readHeadSync(fd))) return true
      file.lastActivity = Date.now()
      const block = cursor.frameRead(buf, start, bytesRead)
      this.#teller.retellIfHeadChanged(file)
      if (block) sink.write(block, markOf(file))
      if (bytesRead < want) break
    }
    return false
  }

  /** A nameless file has been quiet long enough: one last read, then flush and close. */
  #retire(file: File): void {
    this.#readNew(file)
    if (file.names === 0) this.#release(file, true)
  }

  #release(file: File, flush: boolean): void {
    const fd = file.handle
    if (fd === null) return
    file.handle = null
    this.#pacer.forget(file)
    this.#table.released(file)
    const rest = flush ? file.cursor.flush() : null
    if (rest) this.#opts.sink.write(rest, markOf(file))
    this.#opts.onRelease?.(file)
    this.#slots.close(fd)
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
