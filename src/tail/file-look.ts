/**
 * What a shell's look at a followed file says before it reads: grown, idle, truncated (read
 * again from 0, after logrotate's copy), or, for a file rotated away, written over in place
 * (left alone, or read on from where a truncated file's copy was). Both shells take the same
 * look in the same order; only how they stat, read the first bytes and write differs, so the
 * decisions and the bookkeeping that goes with them (Truncations) are here once. No I/O: the
 * shell passes in its stat and a function that reads the file's first bytes now (synchronous
 * in both shells: see async-fs.ts), and does the reads, searches and writes this says.
 *
 * A shell's #readNew walks it in this order (each step after the one before, as the comments
 * in the shells say why): new FileLook, left, [finishFromCopy when truncated], restart, [write
 * the partial line], restarted, skippedSearch, [search], [read when change is not idle].
 */
import type { Logger } from '../log.js'
import type { Change } from './cursor.js'
import { FileIndex } from './file-index.js'
import type { Overwritten } from './generation-rules.js'
import { SkippedSearch } from './generation-search.js'
import type { GenerationTable } from './generation-table.js'
import type { SourceTeller } from './source-teller.js'
import type { Tracked } from './tracked.js'

export class FileLook<H> {
  readonly #table: GenerationTable<H>
  readonly #file: Tracked<H>
  readonly #head: () => Buffer
  /** When the look began: before the stat, so a truncation it misses came after this. */
  readonly #lookedAt: number
  /** When the stat returned (performance.now(): see SkippedSearch). */
  readonly #statedAt = performance.now()
  /** Rotated away and written over (see GenerationTable.overwritten), or null. */
  readonly #over: Overwritten | null
  /** The file's size at the look. */
  readonly size: number
  /** Why the look took the file for truncated (for the debug log), or ''. */
  readonly #why: string
  /** What happened to the file; after restart(), whether there is anything to read. */
  change: Change

  /**
   * `st`: the shell's fstat of `file`, made after `lookedAt` (Date.now()) and just returned
   * (the look is made at once, so its time is the stat's); `head` reads the file's first bytes
   * now, called only where the look needs them.
   */
  constructor(
    table: GenerationTable<H>,
    file: Tracked<H>,
    st: { readonly size: number; readonly mtimeMs: number },
    lookedAt: number,
    head: () => Buffer,
  ) {
    this.#table = table
    this.#file = file
    this.#head = head
    this.#lookedAt = lookedAt
    this.size = st.size
    const cursor = file.cursor
    let change = cursor.classify(st.size)
    let why = change === 'truncated' ? `${st.size} bytes now` : ''
    // Also when the size looks unchanged: truncated and rewritten to the same length (lines of
    // equal length) shows only in the first bytes. We were woken, so something changed.
    if (change !== 'truncated' && cursor.head.length > 0) {
      change = cursor.classify(st.size, head())
      if (change === 'truncated') why = `${st.size} bytes now, its first bytes changed`
    }
    this.change = change
    this.#why = why
    // Rotated away, and either truncated, or known by no first bytes at offset 0 and holding
    // bytes now: written over, or filled, by a copy (see overwritten). fs.copyFileSync and cp
    // empty (or create) their target before they write it, and a look in between records a
    // copy of a followed file as an empty file: read from 0 when the copy came, its lines up to
    // the followed file's offset came out twice (the mixed soak on top-down, 35 lines).
    const unknown = cursor.offset === 0 && cursor.head.length === 0 && st.size > 0
    this.#over =
      file.names === 0 && (change === 'truncated' || unknown)
        ? table.overwritten(file, head(), st)
        : null
  }

  /**
   * Rotated away and written over with content another file will take as its copy (see
   * overwritten's 'leave'): not read now. 'release' when it has been quiet for `quietMs`: the
   * shell closes it, flushing its partial line, as any quiet rotated file. Null: read on.
   */
  left(quietMs: number): 'stay' | 'release' | null {
    if (this.#over?.kind !== 'leave') return null
    return FileIndex.isQuiet(this.#file, quietMs) ? 'release' : 'stay'
  }

  /**
   * Truncated by its writer (not written over with a copy): the shell first reads the rest of
   * logrotate's copy (its finishFromCopy), then calls restart().
   */
  get truncated(): boolean {
    return this.change === 'truncated' && this.#over?.kind !== 'copy'
  }

  /**
   * Starts the cursor again where the look says: written over with a copy of content we were
   * reading, on from where we were in it; truncated, from 0 (what it held is remembered, see
   * Truncations.truncating); otherwise the file was seen whole. Returns the held partial line,
   * which the shell writes before anything else of the file, then calls restarted().
   */
  restart(log: Pick<Logger, 'info' | 'debug'>): Buffer | null {
    const file = this.#file
    if (this.#over?.kind === 'copy') {
      const { offset } = this.#over
      log.info(
        `${file.path}: written over with a copy of a truncated file; reading it on from byte ${offset}`,
      )
      const rest = file.cursor.restartAt(offset, this.#head())
      this.change = this.size > offset ? 'grown' : 'idle'
      return rest
    }
    if (this.change === 'truncated') {
      log.debug(`${file.path}: truncated (read to byte ${file.cursor.offset}; ${this.#why})`)
      log.info(`${file.path}: truncated; reading it again from the start`)
      this.#table.truncating(file)
      return file.cursor.restart()
    }
    if (this.#over?.kind === 'own')
      log.debug(
        `${file.path}: known by no first bytes, now a copy of no followed file; read from 0`,
      )
    this.#table.truncations.sawWhole(file, this.#lookedAt)
    return null
  }

  /**
   * After the partial line restart() returned was written: a file read on in a copy is told
   * again (its first bytes are the copy's); one truncated is remembered as emptied (see
   * Truncations.emptied; `startedAt`: when the shell started, for a file this run never saw
   * whole).
   */
  restarted(teller: Pick<SourceTeller, 'retellIfHeadChanged'>, startedAt: number): void {
    if (this.#over?.kind === 'copy') teller.retellIfHeadChanged(this.#file)
    else if (this.change === 'truncated') this.#table.truncations.emptied(this.#file, startedAt)
  }

  /**
   * The search to make beside the file before reading it, for generations a truncation may
   * have skipped (see Truncations.generationsToFind), or null.
   */
  skippedSearch(): SkippedSearch | null {
    const file = this.#file
    const { truncations } = this.#table
    const skipped = truncations.generationsToFind(file, this.size, this.#lookedAt)
    if (!skipped) return null
    // Once the search ends, the file knows the content its name held then (see
    // SkippedSearch.again), and that it held it at `at`: a later truncation searches from there.
    const learn = (head: Buffer, at: number) => {
      if (file.cursor.offset !== 0 || file.cursor.head.length > 0) return
      file.cursor.setHead(head)
      truncations.sawWhole(file, at)
    }
    return new SkippedSearch(file.path, skipped, this.#statedAt, learn)
  }
}
