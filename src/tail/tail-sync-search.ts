/**
 * The blocking shell's directory searches: the listing, stats, opens and reads of the three
 * searches whose decisions are generation-search.ts's (MissingScan, SkippedSearch, CopySearch),
 * with readdirSync, statSync and readSync. Compare tail-async-search.ts, the event-loop
 * shell's: same steps, same order; only the I/O differs.
 */
import { fstatSync, readdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import type { SyncSink } from '../sink/sink.js'
import type { FileTable } from './file-table.js'
import type { SearchHow } from './generation-rules.js'
import { CopySearch, MissingScan, type SkippedSearch } from './generation-search.js'
import {
  changedSince,
  directoryStamp,
  entriesChangedSince,
  readHeadSync,
  statQuietly,
} from './input-fs.js'
import type { SyncInputSlots } from './input-slots.js'
import type { ReaderOptions } from './reader-options.js'
import type { SourceTeller } from './source-teller.js'
import { markOf, type NameSet, openedFile, type Tracked } from './tracked.js'

type File = Tracked<number>

/** What the searches ask of the shell that reads (see AsyncSearchReader). */
export interface SyncSearchReader {
  /** Reads a file the search took over (it is open, nameless or not yet looked at by name). */
  readonly readNew: (file: File) => void
  /** Reads `fd` from `file`'s offset to `size` and on (see the shell's #readFrom). */
  readonly readFrom: (fd: number, file: File, size: number) => boolean
  /** Flushes (optionally) and closes `file`. */
  readonly release: (file: File, flush: boolean) => void
  /** A file open without a name was taken: its writer may not have reopened yet. */
  readonly orphanTaken: () => void
}

export interface SyncSearchOptions extends Pick<ReaderOptions, 'log' | 'searchHook'> {
  readonly sink: SyncSink
}

export class SyncSearches {
  readonly #table: FileTable<number>
  readonly #teller: SourceTeller
  readonly #slots: SyncInputSlots
  readonly #reader: SyncSearchReader
  readonly #opts: SyncSearchOptions

  constructor(
    table: FileTable<number>,
    teller: SourceTeller,
    slots: SyncInputSlots,
    reader: SyncSearchReader,
    opts: SyncSearchOptions,
  ) {
    this.#table = table
    this.#teller = teller
    this.#slots = slots
    this.#reader = reader
    this.#opts = opts
  }

  /** Looks through `dirs` for the missing files (see tail-async-search.ts). */
  scanMissing(current: NameSet, dirs: ReadonlySet<string>, how: SearchHow = {}, attempt = 1): void {
    const scan = new MissingScan(this.#table, current, dirs, how, attempt)
    const stamps = new Map<string, number>()
    for (const dir of dirs) {
      stamps.set(dir, directoryStamp(dir))
      const names = listDir(dir)
      this.#opts.searchHook?.(dir)
      for (const name of names) {
        const path = join(dir, name)
        if (!scan.wants(path)) continue
        const st = statQuietly(path)
        if (st?.isFile()) scan.saw(path, st)
      }
    }
    if ([...stamps].some(([dir, stamp]) => changedSince(dir, stamp))) scan.dirChanged()
    for (const file of scan.settle()) this.#teller.gone(file, dirname(file.path))
    for (const { path, st, hit } of scan.toOpen()) {
      this.#opts.log.debug(scan.note(path, st, hit))
      let fd: number
      try {
        fd = this.#slots.open(path)
      } catch (err) {
        scan.openFailed(err)
        continue
      }
      const opened = fstatSync(fd)
      if (!scan.isStated(st, opened)) {
        this.#slots.close(fd)
        continue
      }
      let head: Buffer
      try {
        head = readHeadSync(fd)
      } catch {
        head = Buffer.alloc(0)
      }
      const taken = scan.take(path, fd, openedFile(opened, head), hit)
      if (!taken) {
        this.#slots.close(fd)
        continue
      }
      this.#teller.taken(taken)
      this.#reader.orphanTaken()
      this.#reader.readNew(taken.file)
    }
    if (scan.again()) this.scanMissing(current, dirs, how, attempt + 1)
  }

  /** Generations a truncation may have skipped, looked for before a read (see SkippedSearch). */
  findSkippedGenerations(fd: number, search: SkippedSearch): void {
    if (!search.wanted(entriesChangedSince)) return
    for (let again = true; again; ) {
      const before = readHeadSync(fd)
      this.scanMissing(this.#table.names, new Set([search.dir]), search.how(before))
      again = search.again(before, readHeadSync(fd))
    }
  }

  /** copytruncate: finish from logrotate's copy first (see tail-async-search.ts). */
  finishFromCopy(file: File, attempt = 1): void {
    const search = new CopySearch(this.#table, file, attempt)
    if (!search.wanted) return
    const dir = dirname(file.path)
    const stamp = directoryStamp(dir)
    const names = listDir(dir)
    this.#opts.searchHook?.(dir)
    for (const name of names) {
      const path = join(dir, name)
      if (!search.wants(path)) continue
      const st = statQuietly(path)
      if (!st?.isFile() || !search.mayBe(st)) continue
      let fd: number
      try {
        fd = this.#slots.open(path)
      } catch {
        search.openFailed()
        continue
      }
      try {
        const opened = fstatSync(fd)
        if (!search.isStated(st, opened)) continue
        if (!search.isCopy(openedFile(opened, readHeadSync(fd)))) continue
        // Still open, being read to its end as a rotated file: see tail-async-search.ts.
        const held = search.held(opened)
        if (held) {
          const rest = held.cursor.flush()
          if (rest) this.#opts.sink.write(rest, markOf(held))
        }
        const message = search.restMessage(path, opened.size)
        if (message) {
          this.#opts.log.info(message)
          this.#reader.readFrom(fd, file, opened.size)
        }
        const copy = search.recorded(path, openedFile(opened, readHeadSync(fd)))
        if (copy?.release) this.#reader.release(copy.release, false)
        if (copy) this.#teller.copyRecorded(copy)
        return
      } finally {
        this.#slots.close(fd)
      }
    }
    if (search.again(() => changedSince(dir, stamp))) this.finishFromCopy(file, attempt + 1)
    else
      this.#opts.log.debug(
        `${file.path}: truncated; no copy of its unread bytes found (${attempt} searches)`,
      )
  }
}

/** The names in `dir`, or none when it cannot be listed (gone, or not ours to read). */
function listDir(dir: string): string[] {
  try {
    return readdirSync(dir)
  } catch {
    return []
  }
}
