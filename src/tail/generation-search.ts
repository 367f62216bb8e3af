/**
 * The steps of the directory searches both shells make, as pure objects the shells walk:
 * MissingScan (the search for missing files and unseen generations beside the input names:
 * the shells' scanMissing), SkippedSearch (the MissingScans made before a read for
 * generations a truncation may have skipped: findSkippedGenerations) and CopySearch (the
 * search for logrotate's copy of a file seen truncated: finishFromCopy). A shell lists, stats,
 * opens and reads, blocking (tail-sync-search.ts) or on the event loop (tail-async-search.ts),
 * and asks the search at each step what to skip, what to open, what a file it opened is, what
 * to tell the writer and the operator, and whether to search again: one copy of the decisions,
 * the I/O side by side (docs/migration.md).
 */
import { dirname } from 'node:path'
import { isErrno } from '../errors.js'
import type { SourceMark } from '../sink/sink.js'
import { type Identity, identityKey, sameIdentity } from './cursor.js'
import { type SearchHit, type SearchHow, stillHolds } from './generation-rules.js'
import type { GenerationTable } from './generation-table.js'
import { type Dated, isRotatedSibling, olderFirst, rotationFamily } from './rotation.js'
import { type FoundStat, markOf, type NameSet, type OpenedFile, type Tracked } from './tracked.js'

/**
 * How many times a directory search is made again when the directory changed under it (see
 * changedSince in input-fs.ts). A rotation renames every generation in a few hundred
 * microseconds; two more looks are enough unless the directory never stops changing, and then
 * the periodic scan and the looks at the names go on finding what is left.
 */
export const SEARCH_ATTEMPTS = 3

/** What a search knows of a file it listed and stat'ed (a subset of fs.Stats). */
export type ListedStat = FoundStat & Omit<Dated, 'path'>

/** What a shell does with a file a search took over: tell the writer and the operator, then read it. */
export interface TakenFile<H> {
  readonly file: Tracked<H>
  /** The writer forgets this identity's offset first (an entry of it was replaced). */
  readonly forget: string | null
  /** The writer notes where the file starts (it is new to it). */
  readonly note: SourceMark | null
  readonly message: string | null
}

/**
 * The debug line for a look at `path` that found another file than before (`was`: the key the
 * name led to, null: no file, undefined: never looked): what the shell decided, for tracing a
 * generation read out of order from a run's log (--log-level debug).
 */
export function lookNote(
  path: string,
  was: string | null | undefined,
  now: Identity | null,
  step: string,
  movedOn: boolean,
): string {
  const key = now ? identityKey(now) : 'no file'
  const before = was === undefined ? 'not looked at' : (was ?? 'no file')
  return `${path}: leads to ${key} (was ${before}); ${step}${movedOn ? '; moved on: searching' : ''}`
}

/**
 * One pass of the search for missing files in `dirs` (remembered from a checkpoint, or
 * finished and grown since) and, with `how.unknownSince`, for older generations of the input
 * names in `current` that no one has seen: each found is read from where it was (or from its
 * start) to its end, oldest first. A periodic scan (`how.settle`) also drops the files it has
 * missed too often (see GenerationTable.settleScan).
 */
export class MissingScan<H> {
  readonly #table: GenerationTable<H>
  readonly #current: NameSet
  readonly #dirs: ReadonlySet<string>
  readonly #how: SearchHow
  readonly #attempt: number
  readonly #found: { path: string; st: ListedStat }[] = []
  readonly #seen = new Set<string>()
  /** Entries dropped because another file has their inode now (see saw). */
  readonly #reborn: Tracked<H>[] = []
  /** Missing when the scan began: only these are judged (see settleScan). */
  readonly #before: Set<string>
  /** A rename raced the search: it is made again (see again()). */
  #raced = false
  /**
   * Rotation families whose younger unknown generations wait for a later search: this one
   * skipped a copy of content read through their name (see isReadThroughName, and toOpen).
   */
  readonly #heldBack = new Set<string>()

  constructor(
    table: GenerationTable<H>,
    current: NameSet,
    dirs: ReadonlySet<string>,
    how: SearchHow,
    attempt: number,
  ) {
    this.#table = table
    this.#current = current
    this.#dirs = dirs
    this.#how = how
    this.#attempt = attempt
    this.#before = table.missingKeys()
  }

  /** Whether the entry `path` of a listed directory is to be stat'ed. */
  wants(path: string): boolean {
    const { family, settle } = this.#how
    if (family !== undefined && !isRotatedSibling(path, family)) return false
    // Input names are the looks' business (searchHit skips them); only a periodic scan must
    // see every file, to count the missing ones it did not find (see settleScan).
    return settle === true || !this.#current.has(path)
  }

  /**
   * The regular file `st` is at `path`: seen (for settleScan), and kept if it is a hit. An entry
   * at its inode whose birth time is another (see anotherFile) is a deleted file's: dropped at
   * once (settle returns it), not counted as seen. Counted as seen by its inode, a deleted
   * generation whose inode another file of the directory took was never forgotten, and in the
   * thread engines, where that file is another thread's, the two entries of one key fought over
   * its checkpoint record.
   */
  saw(path: string, st: ListedStat): void {
    const key = identityKey(st)
    const reborn = this.#table.dropReborn(st)
    if (reborn) this.#reborn.push(reborn)
    else if (this.#table.files.has(key)) this.#seen.add(key)
    if (this.#hit(path, st)) this.#found.push({ path, st })
  }

  #hit(path: string, st: FoundStat): SearchHit | null {
    const { unknownSince, afterTruncation } = this.#how
    return this.#table.searchHit(path, st, this.#current, unknownSince, afterTruncation)
  }

  /** The debug line for a file found (see lookNote): what the search was and what it found. */
  note(path: string, st: ListedStat, hit: SearchHit): string {
    const { family, unknownSince, afterTruncation, settle } = this.#how
    const why = settle ? 'periodic' : family !== undefined ? `for ${family}` : 'at start-up'
    const kinds = `${unknownSince !== undefined ? ', unknown too' : ''}${afterTruncation ? ', after a truncation' : ''}`
    return `search ${why}${kinds} (attempt ${this.#attempt}): ${path} (${identityKey(st)}, born ${st.birthtimeMs}): ${hit}`
  }

  /** A directory changed between its listing and the end of the stats. */
  dirChanged(): void {
    this.#raced = true
  }

  /**
   * After the listing: the missing files this scan drops (the shell has the writer forget
   * them). Only once per scan: a search made again must not count the same misses twice.
   */
  settle(): Tracked<H>[] {
    const reborn = this.#reborn.splice(0)
    if (!this.#how.settle || this.#attempt !== 1) return reborn
    return [...reborn, ...this.#table.settleScan(this.#dirs, this.#seen, this.#before)]
  }

  /**
   * The files to open, oldest first (of two generations of one file, a.log.2 and a.log.1, the
   * older was written first), each judged again when its turn comes: taking one over changes
   * what the next one is. After a copy of content read through its name was skipped (see
   * take), no younger unknown generation of that family is: its content came after the
   * copy's, which is read once the name's truncation is seen. Read now, they came before it:
   * a search that began while the name held a generation found that generation's copy (left
   * to the name) and the copies of the two after it (read at once), all made while earlier
   * files were read out (the mixed soak, async: a whole generation after the next two).
   */
  *toOpen(): Generator<{ path: string; st: ListedStat; hit: SearchHit }> {
    const sorted = this.#found.sort((x, y) =>
      olderFirst({ ...x.st, path: x.path }, { ...y.st, path: y.path }),
    )
    for (const { path, st } of sorted) {
      const hit = this.#hit(path, st)
      if (hit === 'unknown' && this.#heldBack.has(rotationFamily(path))) continue
      if (hit) yield { path, st, hit }
    }
  }

  /** Opening `path` failed with `err`: renamed away since the stat, or unreadable. */
  openFailed(err: unknown): void {
    if (isErrno(err, 'ENOENT')) this.#raced = true
  }

  /**
   * Whether the file the shell opened at a hit's path (`opened`, its fstat) is the one stat'ed
   * (`st`): another file, renamed to this name since the stat, is not read (the shell closes
   * it), and the scan is made again.
   */
  isStated(st: Identity, opened: Identity): boolean {
    if (sameIdentity(opened, st)) return true
    this.#raced = true
    return false
  }

  /**
   * The shell opened `path` and got `handle` on `opened` (its fstat and first bytes): the file
   * to read, with what to tell the writer and the operator; null when it is not to be read
   * (the shell closes `handle`).
   */
  take(path: string, handle: H, opened: OpenedFile, hit: SearchHit): TakenFile<H> | null {
    const how = { ...this.#how, current: this.#current }
    const taken = this.#table.adoptHit(path, handle, opened, hit, how)
    if (!taken) {
      if (this.#table.isReadThroughName(path, opened.head, this.#how.nowAtName))
        this.#heldBack.add(rotationFamily(path))
      return null
    }
    return {
      file: taken.file,
      forget: taken.replaced ? taken.file.key : null,
      note: taken.isNew ? markOf(taken.file) : null,
      message: taken.message,
    }
  }

  /** Whether the scan is to be made again (a rename raced it, and attempts are left). */
  again(): boolean {
    return this.#raced && this.#attempt < SEARCH_ATTEMPTS
  }
}

/**
 * Copied and truncated again before we read a byte of it: the search, before a read of the
 * file at `path`, for the generations born beside it since `since` (see
 * Truncations.generationsToFind), as MissingScans of its family, made again while the name's
 * content changes under the search (see stillHolds).
 */
export class SkippedSearch {
  /** The directory searched. */
  readonly dir: string
  readonly #path: string
  readonly #since: number
  readonly #truncated: boolean
  /** When the shell's stat of the file returned (performance.now(); see entriesChangedSince). */
  readonly #statedAt: number
  /** Gives the file, none of whose bytes are read yet, the first bytes found at its name. */
  readonly #learn: ((head: Buffer, at: number) => void) | undefined
  /** When the pass under way began (Date.now(), see how()). */
  #passAt = 0
  #attempt = 1
  /** What the name held when the first pass began, and when (see again). */
  #first: { head: Buffer; at: number } | null = null

  constructor(
    path: string,
    { since, truncated }: { readonly since: number; readonly truncated: boolean },
    statedAt: number,
    learn?: (head: Buffer, at: number) => void,
  ) {
    this.dir = dirname(path)
    this.#path = path
    this.#since = since
    this.#truncated = truncated
    this.#statedAt = statedAt
    this.#learn = learn
  }

  /**
   * Whether to search at all: after a truncation always (a copy written in place over an old
   * copy adds no entry), otherwise only when `entriesChanged`, the shell's look at the
   * directory (entriesChangedSince in input-fs.ts), says an entry may have been added since.
   */
  wanted(entriesChanged: (dir: string, since: number, statedAt: number) => boolean): boolean {
    return this.#truncated || entriesChanged(this.dir, this.#since, this.#statedAt)
  }

  /** How a pass searches, `before` being the first bytes at the name when it begins. */
  how(before: Buffer): SearchHow {
    this.#passAt = Date.now()
    this.#first ??= { head: before, at: this.#passAt }
    return {
      unknownSince: this.#since,
      nowAtName: before,
      family: this.#path,
      afterTruncation: this.#truncated,
    }
  }

  /**
   * After a pass that began with `before` at the name: whether to make another, the name now
   * beginning with `after` (its content changed under the search), while attempts are left.
   *
   * When the search ends, the file learns the first bytes its name held (see learnt): the
   * content the search left to the name (the copies it skipped agree with it), still to be
   * read. With no fingerprint, nothing tells that content's truncation: copied away and
   * truncated after the search (or during the last pass allowed), it was in no file the read
   * knew, and the read took the next generation from 0 as if it were the same content (the
   * mixed soak, async: whole generations read by the next run, after later ones). Known, the
   * read checks its bytes against it (Cursor.readStillOurs), the next look sees the
   * truncation, and the copy is read from the start, before what the name holds now.
   */
  again(before: Buffer, after: Buffer): boolean {
    const holds = stillHolds(before, after)
    if (!holds && this.#attempt < SEARCH_ATTEMPTS) {
      this.#attempt++
      return true
    }
    // The name changed under the search: the content it held when the search began went
    // somewhere (copied away, the next copy written over the last one) and is still to be read.
    // The file learns that content's first bytes, not the newest: its read then finds the name
    // holding other bytes, the next look sees the truncation, and the copy search reads that
    // content first. Learning the newest, the read took the next generation as this one, and
    // the one copied away came after it (the mixed soak on top-down; restart-race.test.ts).
    const first = this.#first
    if (this.#attempt > 1 && first !== null && first.head.length > 0) {
      this.#learn?.(first.head, first.at)
      return false
    }
    const learnt = SkippedSearch.learnt(before, after, holds)
    if (learnt) this.#learn?.(learnt, this.#passAt)
    return false
  }

  /**
   * The first bytes a file is to know once its search ends (see again): what the name held
   * when the last pass began (`before`), or `after` if the name still holds that and `after`
   * knows more of it; null when the name was empty then (the look that finds it filled
   * searches again: see Truncations.generationsToFind).
   */
  static learnt(before: Buffer, after: Buffer, holds: boolean): Buffer | null {
    if (holds && after.length > before.length) return after
    return before.length > 0 ? before : null
  }
}

/** What a shell does once a copy's rest is read (see CopySearch.recorded). */
export interface RecordedCopy<H> {
  /** The copy before it, written over in place and still open: closed without a flush. */
  readonly release: Tracked<H> | null
  /** The writer forgets this identity's offset (the copy before it had it). */
  readonly forget: string | null
  /** Told to the writer and the owner: checkpointed as read to its end. */
  readonly announce: Tracked<H>
}

/**
 * copytruncate: logrotate copied `file` to a sibling (app.log.1) and then truncated it. The
 * copy holds what we had not read yet, so it is read from our offset to its end first. (Lines
 * written between logrotate's copy and its truncate are in neither file: lost by logrotate.)
 */
export class CopySearch<H> {
  readonly #table: GenerationTable<H>
  readonly #file: Tracked<H>
  readonly #attempt: number
  #raced = false

  constructor(table: GenerationTable<H>, file: Tracked<H>, attempt: number) {
    this.#table = table
    this.#file = file
    this.#attempt = attempt
  }

  /** A file with no first bytes of ours has no content a copy could be recognised by. */
  get wanted(): boolean {
    return this.#file.cursor.head.length > 0
  }

  /** Whether the entry `path` of the file's directory may be its copy (a rotated sibling). */
  wants(path: string): boolean {
    return isRotatedSibling(path, this.#file.path)
  }

  /** Whether the regular file `st`, a sibling, is to be opened (see mayBeCopy). */
  mayBe(st: Identity): boolean {
    return this.#table.mayBeCopy(this.#file, st)
  }

  /** Opening a sibling failed: renamed away since the listing (or unreadable: one more look is cheap). */
  openFailed(): void {
    this.#raced = true
  }

  /**
   * Whether the sibling stat'ed as `st` and opened as `opened` (its fstat) is the file stat'ed:
   * the file opened, not the one stat'ed, counts; a rotation may have renamed another one here,
   * and then the search is made again.
   */
  isStated(st: Identity, opened: Identity): boolean {
    if (sameIdentity(opened, st)) return true
    this.#raced = true
    return false
  }

  /** Whether the sibling opened (its fstat and first bytes) is the copy of the file. */
  isCopy(opened: OpenedFile): boolean {
    return this.#table.isCopyOf(this.#file, opened)
  }

  /**
   * The entry of the copy's identity that still has a handle: a rotated file being read to its
   * end when the copy was written over it. Its partial line goes out first; the entry is
   * replaced once the copy is recorded.
   */
  held(copy: Identity): Tracked<H> | null {
    const held = this.#table.files.get(identityKey(copy))
    return held?.handle != null ? held : null
  }

  /**
   * The message before reading the copy's rest, or null when there is none: a copy shorter
   * than our offset holds nothing we have not read (the lines written between logrotate's copy
   * and its truncate were read from the file itself); it is still recorded.
   */
  restMessage(path: string, size: number): string | null {
    if (size <= this.#file.cursor.offset) return null
    return `${this.#file.path}: copied to ${path} and truncated; reading the rest of the copy first`
  }

  /**
   * The copy's rest is read: record it (`copy`: its fstat and its first bytes now) as read to
   * its end (a restart must not take it for a new generation), replacing the copy before it,
   * written over in place.
   */
  recorded(path: string, copy: OpenedFile): RecordedCopy<H> | null {
    const taken = this.#table.rememberCopy(path, copy.identity, copy.head, copy.size)
    if (!taken) return null
    const { replaced } = taken
    return {
      release: replaced?.handle != null ? replaced : null,
      forget: replaced ? taken.copy.key : null,
      announce: taken.copy,
    }
  }

  /**
   * Not found while rotations renamed files under the search (the selftest's copy was shifted
   * to the next number between the listing and its look, and 8 of its lines lost): again.
   */
  again(dirChanged: () => boolean): boolean {
    return (this.#raced || dirChanged()) && this.#attempt < SEARCH_ATTEMPTS
  }
}
