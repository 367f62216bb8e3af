/**
 * The event-loop shell's directory searches: the listing, stats, opens and reads of the three
 * searches whose decisions are generation-search.ts's (MissingScan, SkippedSearch, CopySearch).
 * Apart from tail-async.ts because a search is a job of its own (find the generations a name
 * left behind, or logrotate's copy of a truncated file), and reading a file it finds is the
 * shell's job, asked for through AsyncSearchReader. Compare tail-sync-search.ts, the blocking
 * shell's: same steps, same order; only the I/O differs.
 */
import { dirname, join } from 'node:path'
import type { BlockSink } from '../sink/sink.js'
import { fstatFd, listDir, readHead, statPath } from './async-fs.js'
import type { FileTable } from './file-table.js'
import type { SearchHow } from './generation-rules.js'
import { CopySearch, MissingScan, type SkippedSearch } from './generation-search.js'
import { changedSince, directoryStamp, entriesChangedSince } from './input-fs.js'
import type { InputSlots } from './input-slots.js'
import type { ReaderOptions } from './reader-options.js'
import type { SourceTeller } from './source-teller.js'
import { markOf, type NameSet, openedFile, type Tracked } from './tracked.js'

type File = Tracked<number>

/** What the searches ask of the shell that reads. */
export interface AsyncSearchReader {
  /** Reads a file the search took over (it is open, nameless or not yet looked at by name). */
  readonly pump: (file: File) => Promise<void>
  /** Whether a read of `file` is under way (its partial line is that read's, not ours). */
  readonly reading: (file: File) => boolean
  /** Reads `fh` from `file`'s offset to `size` and on (see the shell's #readFrom). */
  readonly readFrom: (fh: number, file: File, size: number) => Promise<boolean>
  /** Flushes (optionally) and closes `file`. */
  readonly release: (file: File, flush: boolean) => Promise<void>
  /** A file open without a name was taken: its writer may not have reopened yet. */
  readonly orphanTaken: () => void
}

export interface AsyncSearchOptions extends Pick<ReaderOptions, 'log' | 'searchHook'> {
  readonly sink: BlockSink
}

export class AsyncSearches {
  readonly #table: FileTable<number>
  readonly #teller: SourceTeller
  readonly #slots: InputSlots
  readonly #reader: AsyncSearchReader
  readonly #opts: AsyncSearchOptions

  constructor(
    table: FileTable<number>,
    teller: SourceTeller,
    slots: InputSlots,
    reader: AsyncSearchReader,
    opts: AsyncSearchOptions,
  ) {
    this.#table = table
    this.#teller = teller
    this.#slots = slots
    this.#reader = reader
    this.#opts = opts
  }

  /**
   * Looks through `dirs` for the missing files (remembered, or finished): an unfinished one found
   * under a name that is not an input name in `current` is read from where it was to its end;
   * one not seen in two scans in a row is dropped from the table (see FileTable.settleScan).
   * With `unknownSince`, older generations of the `current` names born after it that no one has
   * seen are read too, from their start (see isUnknownGeneration, generation-rules.ts).
   */
  async scanMissing(
    current: NameSet,
    dirs: ReadonlySet<string>,
    how: SearchHow = {},
    attempt = 1,
  ): Promise<void> {
    const scan = new MissingScan(this.#table, current, dirs, how, attempt)
    const stamps = new Map<string, number>()
    for (const dir of dirs) {
      stamps.set(dir, directoryStamp(dir))
      const names = await listDir(dir)
      this.#opts.searchHook?.(dir)
      for (const name of names) {
        const path = join(dir, name)
        if (!scan.wants(path)) continue
        const st = await statPath(path).catch(() => null)
        if (st?.isFile()) scan.saw(path, st)
      }
    }
    // A rename racing the search (see changedSince in input-fs.ts): search again.
    if ([...stamps].some(([dir, stamp]) => changedSince(dir, stamp))) scan.dirChanged()
    for (const file of scan.settle()) this.#teller.gone(file, dirname(file.path))
    for (const { path, st, hit } of scan.toOpen()) {
      this.#opts.log.debug(scan.note(path, st, hit))
      const fh = await this.#slots.open(path).catch((err: unknown) => {
        scan.openFailed(err)
        return null
      })
      if (!fh) continue
      const opened = await fstatFd(fh)
      if (!scan.isStated(st, opened)) {
        this.#slots.close(fh)
        continue
      }
      const head = await readHead(fh).catch(() => Buffer.alloc(0))
      const taken = scan.take(path, fh, openedFile(opened, head), hit)
      if (!taken) {
        this.#slots.close(fh)
        continue
      }
      this.#teller.taken(taken)
      this.#reader.orphanTaken()
      await this.#reader.pump(taken.file)
    }
    if (scan.again()) await this.scanMissing(current, dirs, how, attempt + 1)
  }

  /** Generations a truncation may have skipped, looked for before a read (see SkippedSearch). */
  async findSkippedGenerations(fh: number, search: SkippedSearch): Promise<void> {
    if (!search.wanted(entriesChangedSince)) return
    for (let again = true; again; ) {
      const before = await readHead(fh)
      await this.scanMissing(this.#table.names, new Set([search.dir]), search.how(before))
      again = search.again(before, await readHead(fh))
    }
  }

  /**
   * copytruncate: logrotate copied the file to a sibling (app.log.1) and then truncated it. The
   * copy holds what we had not read yet, so read it from our offset to its end first. (Lines
   * written between logrotate's copy and its truncate are in neither file: lost by logrotate.)
   */
  async finishFromCopy(file: File, attempt = 1): Promise<void> {
    const search = new CopySearch(this.#table, file, attempt)
    if (!search.wanted) return
    const dir = dirname(file.path)
    const stamp = directoryStamp(dir)
    const names = await listDir(dir)
    this.#opts.searchHook?.(dir)
    for (const name of names) {
      const path = join(dir, name)
      if (!search.wants(path)) continue
      const st = await statPath(path).catch(() => null)
      if (!st?.isFile() || !search.mayBe(st)) continue
      const fh = await this.#slots.open(path).catch(() => null)
      if (!fh) {
        search.openFailed()
        continue
      }
      try {
        const opened = await fstatFd(fh)
        if (!search.isStated(st, opened)) continue
        if (!search.isCopy(openedFile(opened, await readHead(fh)))) continue
        // Still open, being read to its end as a rotated file when the copy was written over
        // it: its partial line first; the entry is replaced below. One being read now finds
        // itself written over (see FileTable.overwritten) and reads on from our offset.
        const held = search.held(opened)
        if (held) {
          if (this.#reader.reading(held)) continue
          const rest = held.cursor.flush()
          if (rest) await this.#opts.sink.write(rest, markOf(held))
        }
        const message = search.restMessage(path, opened.size)
        if (message) {
          this.#opts.log.info(message)
          await this.#reader.readFrom(fh, file, opened.size)
        }
        const copy = search.recorded(path, openedFile(opened, await readHead(fh)))
        if (copy?.release) void this.#reader.release(copy.release, false)
        if (copy) this.#teller.copyRecorded(copy)
        return
      } finally {
        this.#slots.close(fh)
      }
    }
    if (search.again(() => changedSince(dir, stamp))) await this.finishFromCopy(file, attempt + 1)
    else
      this.#opts.log.debug(
        `${file.path}: truncated; no copy of its unread bytes found (${attempt} searches)`,
      )
  }
}
