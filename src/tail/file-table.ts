/**
 * Which files we follow and which input names lead to them: pure bookkeeping, no I/O, shared by
 * the sync and the async shell.
 *
 * Files are keyed by identity (device:inode); a name is only a way to reach one. When a name
 * comes to point to another file (rename rotation, delete and create), the old file loses that
 * name; a file with no name left is read to its end until it has been quiet for a while, then
 * its partial line is flushed and its handle closed, so the disk space is freed. A rotated file
 * that turns up under another matching name (app.log.1 in a directory input) is the same
 * identity and is not read twice; a file finished earlier and seen again resumes where it was.
 * When there are more files than descriptors to hold them, the idlest named files are parked:
 * closed, and reopened by name when the name shows a change (see park).
 */
import { dirname } from 'node:path'
import { describeErrno, isErrno } from '../errors.js'
import type { Logger } from '../log.js'
import type { SourceMark } from '../sink/sink.js'
import { Cursor, type CursorCounts, headsAgree, type Identity, identityKey } from './cursor.js'
import { isRotatedSibling, rotationFamily } from './rotation.js'
import type { SourceState } from './source-state.js'

export interface Tracked<H> {
  readonly key: string
  cursor: Cursor
  /** The open handle (an fd or a FileHandle), or null once released. */
  handle: H | null
  /** The name it was last seen under, for messages. */
  path: string
  /** How many input names point to it now. */
  names: number
  /** When it last grew, or lost its last name (ms since epoch). */
  lastActivity: number
  /** Read to its end with no name left, and closed: nothing more will come from it. */
  finished: boolean
  /** Consecutive scans of its directory that did not find it (see settleScan). */
  missed: number
  /** Closed to save a descriptor while it has a name; reopened by that name (see park). */
  parked: boolean
  /**
   * When it was finished (closed with no name left, or recorded as a copytruncate copy read to
   * its end), ms since epoch; null while it is open, and for a file remembered from a
   * checkpoint. A file born after this is not this one: its inode was freed and reused (see
   * replacedByStat).
   */
  closedAt: number | null
}

/** Where `file` stands: its offset safe to checkpoint, and how it is doing. */
export const markOf = (file: Tracked<unknown>): SourceMark => ({
  key: file.key,
  offset: file.cursor.committedOffset,
  head: file.cursor.head,
  stats: {
    lines: file.cursor.lines,
    bytes: file.cursor.bytes,
    linesSplit: file.cursor.linesSplit,
    truncations: file.cursor.truncations,
    pendingBytes: file.cursor.pendingBytes,
    lastActivity: file.lastActivity,
  },
  // Only a block with added newlines says so (see SourceMark.inserted).
  ...(file.cursor.inserted.length > 0 ? { inserted: file.cursor.inserted } : {}),
})

/**
 * What a reader's table holds, for metrics: files open, parked and missing now, and per input
 * name the times its file lost the name (rotated or removed) and the copytruncate copies read
 * for it. The counts are totals since the table was made, so the latest summary is enough.
 */
export interface TableSummary {
  readonly open: number
  readonly parked: number
  /** Input names that could not be opened at their last look (not there, unreadable). */
  readonly missing: number
  readonly names: readonly NameEvents[]
}

export interface NameEvents {
  readonly path: string
  readonly rotations: number
  readonly copies: number
}

/** The input names a search leaves to the looks at names (a Set, or the table's `names`). */
export interface NameSet {
  has(name: string): boolean
}

/** How a directory search (the shells' #scanMissing) is made. */
export interface SearchHow {
  /** Also read older generations of the input names born after this (see searchHit). */
  readonly unknownSince?: number
  /** A periodic scan: files missing from it in a row are forgotten (see settleScan). */
  readonly settle?: boolean
  /** The first bytes at the name when the search began (see adoptHit). */
  readonly nowAtName?: Buffer
  /**
   * Only the rotated generations of this input name are looked at (a.log.1, a.log-2026...):
   * the searches made on an event concern one name, and a directory of 10,000 logs must not
   * cost 10,000 stats per event. The periodic scans look at every file.
   */
  readonly family?: string
}

/**
 * False when the stat of a name, `st`, shows the file it leads to just as far as we have read:
 * nothing to read. A look at a name is made for a rename, at start-up and at the drain, not for
 * a write (a change event reads, and checks the first bytes for a rewrite, see changed()); 10,000
 * idle files at the drain cost a stat each, not three reads.
 */
export function grewSince(
  file: Tracked<unknown>,
  st: (Identity & { readonly size: number }) | null,
): boolean {
  return !(st && identityKey(st) === file.key && st.size === file.cursor.offset)
}

/** What a directory search found worth reading (see FileTable.searchHit). */
export type SearchHit = 'remembered' | 'unknown'

/** What the shell must do after looking at a name. */
export type NameStep =
  /** Nothing new about the name: read the file it points to (if any). */
  | { readonly kind: 'same' }
  /** The name points to a file we do not have open: open it and call `opened`. */
  | { readonly kind: 'open' }
  /** The name leads nowhere now. */
  | { readonly kind: 'none' }

/** A file a checkpoint recorded, as the table takes it back. */
export interface RememberedSource {
  readonly identity: Identity
  readonly head: Buffer
  readonly offset: number
  readonly path: string
  readonly counts?: CursorCounts
}

export interface OpenedFile {
  readonly identity: Identity
  readonly size: number
  /** The file's first bytes now (up to FINGERPRINT_BYTES). */
  readonly head: Buffer
  /** Its last write (ms since epoch; absent: not known). */
  readonly mtimeMs?: number
  /** Its birth (ms since epoch; 0 or absent: the file system does not say). */
  readonly birthtimeMs?: number
}

/** What the shells know of a file they opened: its fstat and first bytes. */
export const openedFile = (st: FoundStat, head: Buffer): OpenedFile => ({
  identity: st,
  size: st.size,
  head,
  mtimeMs: st.mtimeMs,
  birthtimeMs: st.birthtimeMs,
})

/** What a search knows of a file it found (a subset of fs.Stats). */
export type FoundStat = Identity & {
  readonly size: number
  readonly birthtimeMs: number
  readonly mtimeMs: number
}

/** How a search hit is taken over (see adoptHit). */
export interface AdoptHow {
  /** The first bytes at the name when the search began (see SearchHow.nowAtName). */
  readonly nowAtName?: Buffer | undefined
  /** The search's `unknownSince` and input names: a rewritten file may be a new generation. */
  readonly unknownSince?: number | undefined
  readonly current?: NameSet
}

/**
 * Periodic scans in a row that must miss a file before it is dropped (see settleScan): a
 * finished file, and one never found since a checkpoint recorded it (it may hold unread bytes,
 * so it is given far longer).
 */
export const PRUNE_AFTER = 2
export const PRUNE_UNFINISHED_AFTER = 10

/**
 * Every this many sweeps, the shells search the directories of missing files: a remembered file
 * that turned up is read, and files gone for good are forgotten (the state stays bounded).
 */
export const MISSING_SCAN_SWEEPS = 30

/**
 * Input names the periodic sweep stats per second at most, over all the readers of a process.
 * Change events (inotify) are how changes reach the readers; the sweep is the net under them
 * (an event lost to a full inotify queue, a file system that sends none), so it goes round the
 * names at a bounded pace: every name every poll interval up to this many names, slower beyond
 * (1,000 names: once every 20 s; 10,000: once every 200 s). A stat from JavaScript costs far
 * more than the system call (the Stats object and its four Dates, and the collections of
 * them): measured on the 2-vCPU machine with 10,000 idle files, 200 names a second cost about
 * 1 % of a core and 20 a second about 0.2 %; GNU tail -F and Fluent Bit's inotify mode have no
 * such net at all.
 */
export const SWEEP_NAMES_PER_SECOND = 50

/** Names a sweep looks at when sweeps come every `pollMs`, `perSecond` at most a second. */
export const sweepBudget = (pollMs: number, perSecond = SWEEP_NAMES_PER_SECOND): number =>
  Math.max(1, Math.ceil((perSecond * pollMs) / 1000))

/**
 * Birth times come from the kernel's coarse clock, which runs up to a tick (1-10 ms) behind
 * Date.now(): a file created just after a follower started can carry an earlier birth time. A
 * unit test that rotated twice within a few milliseconds of the start lost the middle
 * generation to this under load.
 */
export const BIRTH_CLOCK_SLACK_MS = 20

/**
 * After a search that skipped the copies agreeing with `before` (the first bytes at the name when
 * it began: a copy of what the file still held, see adoptHit's `nowAtName`): true when the name
 * still holds that content (`after`, read once the search is done). False means it was copied
 * and truncated during the search, so a copy it skipped is the generation's only remaining
 * place: the search is made again with the new first bytes (the selftest, bottom-up: a whole
 * generation read after the next one's lines).
 */
export function stillHolds(before: Buffer, after: Buffer): boolean {
  return after.length > 0 && headsAgree(before, after)
}

export class FileTable<H> {
  readonly maxLineBytes: number
  readonly files = new Map<string, Tracked<H>>()
  /** Input name -> identity key of the file it points to now (null: nothing). */
  readonly names = new Map<string, string | null>()
  /** Names from the start-up scan, until first opened: they start at `from`; later files at 0. */
  readonly #startupNames = new Set<string>()
  /** Names a checkpoint knew: a file found there that the checkpoint did not know is new. */
  readonly #knownNames = new Set<string>()
  /** Name -> the file a checkpoint recorded there, until the name is first looked at. */
  readonly #recordedAt = new Map<string, string>()
  /** Start-up names that could not be opened yet: the file there and its size at start-up. */
  readonly #deferred = new Map<string, { key: string; size: number }>()
  /** Names whose last open failed (to say so when one works again). */
  readonly #openFailures = new Set<string>()
  /** Files read again from 0 after a truncation, none of whose new bytes we have: since when. */
  readonly #emptied = new Map<string, number>()
  /** When each file was last seen not truncated (see emptied). */
  readonly #seenWhole = new WeakMap<Tracked<H>, number>()
  /**
   * When each file with none of its bytes ours was first seen empty (since it last held bytes
   * of ours). If it is not empty at a later look, it may have been written, copied and
   * truncated in between (logrotate's copytruncate right after the file was created): no
   * truncation shows, as for content never read after one, so generations born since are
   * looked for the same way (the service test: the copy's first line after the next
   * generation's, about one run in twenty). The first empty look, not the last: a look made
   * between logrotate's truncate and the writer's next line (the truncation's own event makes
   * one) sees the file empty too, after the copy was born, and the search from there missed
   * the copy (the service test again, 2 runs in 229; copy-identity.test.ts).
   */
  readonly #seenEmpty = new WeakMap<Tracked<H>, number>()
  /** Per input name: rotations and copies seen (see TableSummary). */
  readonly #events = new Map<string, { rotations: number; copies: number }>()
  /**
   * Per file seen truncated: its content's first bytes then, how far we had read it, and when
   * the truncation was seen (see truncating).
   */
  readonly #cut = new Map<string, { family: string; head: Buffer; offset: number; at: number }>()
  /**
   * Files with no handle and no name (see missing), by the path they were last seen at, and
   * files with a handle and no name (see orphans). Kept as each file changes (see #index), so
   * the looks made on every event cost the same with 10 files or 10,000.
   */
  readonly #missingAt = new Map<string, Set<Tracked<H>>>()
  readonly #missingPath = new Map<Tracked<H>, string>()
  readonly #orphanSet = new Set<Tracked<H>>()
  /** Where the sweep goes on from (a live iterator: names added meanwhile are met too). */
  #sweepAt: Iterator<[string, string | null]> = new Map<string, string | null>().entries()

  constructor(maxLineBytes: number) {
    this.maxLineBytes = maxLineBytes
  }

  /**
   * Files a checkpoint recorded: each resumes at its offset when it is found again (under any
   * name) with the same identity and first bytes.
   */
  remember(files: Iterable<RememberedSource>): void {
    for (const f of files) {
      const key = identityKey(f.identity)
      if (this.files.has(key)) continue // already followed: never replace a live cursor
      this.#add(f.path, new Cursor({ ...f, maxLineBytes: this.maxLineBytes }), null)
      this.#knownNames.add(f.path)
      this.#recordedAt.set(f.path, key)
    }
  }

  /**
   * Call before look(): true when the name moved on from the file we last knew there (it led to
   * another file, or a checkpoint recorded another file there) without our seeing the rotation
   * happen. Generations born in between may then lie beside it, unread: the shell searches.
   */
  movedOn(path: string, id: Identity | null): boolean {
    const before = this.names.get(path) ?? this.#recordedAt.get(path) ?? null
    this.#recordedAt.delete(path)
    return before !== null && before !== (id ? identityKey(id) : null)
  }

  /**
   * A file no one has seen, born after `since`, that is an older generation of one of the
   * input names `names` (a.log.3 beside a.log): created and rotated away between two looks, so
   * every byte of it is unread. Needs birth times (ext4, xfs, btrfs); without them, never.
   * A file at an identity the table knows counts only when the stat shows it is another file
   * than the one known there (see replacedByStat); its content is then as new as its last
   * write (an in-place rewrite keeps the old birth time).
   */
  isUnknownGeneration(path: string, st: FoundStat, names: NameSet, since: number): boolean {
    const known = this.files.get(identityKey(st))
    if (known && !this.replacedByStat(known, st)) return false
    return this.#newerThan(path, known ? st.mtimeMs : st.birthtimeMs, names, since)
  }

  /** An older generation of an input name in `names` whose content dates from after `since`. */
  #newerThan(path: string, at: number, names: NameSet, since: number): boolean {
    if (at === 0 || at <= since - BIRTH_CLOCK_SLACK_MS) return false
    const family = rotationFamily(path)
    return names.has(family) && isRotatedSibling(path, family)
  }

  /**
   * True when `known`, an entry with no handle and no name, cannot describe the file now at its
   * identity, by that file's stat `st`: it is smaller than what we read of it (rewritten in
   * place: a copy written over it, which truncates it first), or it was born after we closed it
   * (the old file was deleted and its inode reused: an inode is only freed once we close it, so
   * the old file was born before that; the kernel's clock for birth times only lags). Its
   * content is another file's: never read on from the entry's offset.
   */
  replacedByStat(
    known: Tracked<H>,
    st: { readonly size: number; readonly birthtimeMs?: number },
  ): boolean {
    if (known.handle !== null || known.parked || known.names > 0) return false
    if (st.size < known.cursor.offset) return true
    const born = st.birthtimeMs ?? 0
    return known.closedAt !== null && born > 0 && born >= known.closedAt + 1
  }

  /**
   * True when `head` (the first bytes of a file found at `path`) begins as a followed file of
   * the same rotation family does: `path` is a copytruncate copy of it, which the follower reads
   * from its own offset once it sees the truncation (#finishFromCopy), never from 0. Followed:
   * open, parked, or remembered from a checkpoint at the family's own name and not opened yet
   * (the start-up pass opens it and sees its truncation then). Without the last, a copy
   * written over a rotated file that the start-up search had just opened, before the start-up
   * pass opened the file copied, was read again from 0 (threads, SIGKILLs under load: 699
   * lines twice).
   */
  isCopyOfFollowed(path: string, head: Buffer): boolean {
    const family = rotationFamily(path)
    for (const f of this.files.values()) {
      if (f.cursor.head.length === 0 || rotationFamily(f.path) !== family) continue
      if (!this.#followed(f)) continue
      if (f.cursor.headMatches(head)) return true
    }
    return false
  }

  /** Open, parked, or remembered at a name (not a rotated one) and not opened yet. */
  #followed(f: Tracked<H>): boolean {
    if (f.handle !== null || f.parked) return true
    return !f.finished && f.closedAt === null && rotationFamily(f.path) === f.path
  }

  /**
   * Before opening `st`, a rotated sibling of `file` (just seen truncated), to see whether it is
   * logrotate's copy of it: false when it is `file` itself or a file followed by a name (open
   * or parked). A file the table knows with no name (closed, or still open and being read to
   * its end) may have been written over since (see isCopyOf), so it is looked at too.
   */
  mayBeCopy(file: Tracked<H>, st: Identity): boolean {
    const known = this.files.get(identityKey(st))
    return known === undefined || (known !== file && this.#nameless(known))
  }

  /** No name leads to it (and so none can reopen it): a rotated file, open or closed. */
  #nameless(f: Tracked<H>): boolean {
    return f.names === 0 && !f.parked
  }

  /**
   * True when the file `found` (opened, first bytes `found.head`), a rotated sibling of `file`,
   * is the copy of what `file` held when it was truncated: it begins as `file` did, and it is
   * not a file we know unchanged. At an identity the table knows with no name (see mayBeCopy),
   * the entry no longer describes it when its fingerprint is empty (an empty fingerprint says
   * nothing of content), or disagrees with the file's first bytes, or the stat says another
   * file (see replacedByStat), or it was written after we closed it (a copy entry is never
   * appended to: Node's copyFileSync and cp rewrite an existing copy in place, keeping its
   * inode). Such a copy was skipped as known, and the lines between our offset and the
   * truncation lost (issue 16: 1-12 lines a run with 4 writers rotating every 2.5 s).
   */
  isCopyOf(file: Tracked<H>, found: OpenedFile): boolean {
    const { head } = found
    if (head.length === 0 || file.cursor.head.length === 0 || !file.cursor.headMatches(head))
      return false
    const known = this.files.get(identityKey(found.identity))
    if (known === undefined) return true
    if (!this.mayBeCopy(file, found.identity)) return false
    const recorded = known.cursor.head
    return (
      recorded.length === 0 ||
      !headsAgree(recorded, head) ||
      this.replacedByStat(known, found) ||
      (known.closedAt !== null &&
        found.mtimeMs !== undefined &&
        found.mtimeMs >= known.closedAt + 1)
    )
  }

  /**
   * The shell saw `file` truncated and read what its copy held past our offset (if it found
   * one): note where the cursor stood, before it starts again from 0. A copy of that content
   * found later (see cutOffset) has its bytes up to there in the output already.
   */
  truncating(file: Tracked<H>): void {
    if (file.cursor.head.length === 0) return
    const cut = { family: rotationFamily(file.path), head: file.cursor.head }
    this.#cut.set(file.key, { ...cut, offset: file.cursor.offset, at: Date.now() })
  }

  /**
   * Where a copy beginning with `head`, found at `path` and last written at `mtimeMs`, goes on
   * from: the offset the cursor of a file of the same rotation family had when that file was
   * seen truncated with this content (see truncating), or undefined when it is the copy of no
   * such content. Its bytes before that offset were read through that file: read from 0, they
   * came out twice (the kill test with in-place copies: whole generations twice). A copy is
   * written before the truncation, so before it was seen: a file written after that is no
   * copy of it, even when it begins the same way (a fixed header).
   */
  cutOffset(path: string, head: Buffer, mtimeMs: number): number | undefined {
    if (head.length === 0) return undefined
    const family = rotationFamily(path)
    for (const c of this.#cut.values())
      if (c.family === family && mtimeMs <= c.at && headsAgree(c.head, head)) return c.offset
    return undefined
  }

  /**
   * `file`, with no name left (rotated away), was seen truncated, and now begins with `head`
   * (and has the size and write time `st`). A file nobody can open by name any more is not truncated by its
   * writer but written over: an in-place copy (copyFileSync, cp) truncates it, then writes the
   * content of the file it copies. Read again from 0, that content came out twice (once
   * through the file copied), and the copied file's search for its copy skipped it as open (the
   * kill test with in-place copies: whole generations twice, the last lines of others lost).
   * - 'leave': empty so far, or a copy of a followed file not seen truncated yet: nothing is
   *   read now; that file takes it as its copy when it sees its truncation (see isCopyOf).
   * - 'copy': a copy of content a followed file was reading when it was seen truncated (see
   *   cutOffset): its bytes before `offset` are out already; read on from there.
   * - 'own': neither: truncated by a writer that still holds it; read again from 0.
   */
  overwritten(
    file: Tracked<H>,
    head: Buffer,
    st: { readonly size: number; readonly mtimeMs: number },
  ): { kind: 'leave' } | { kind: 'copy'; offset: number } | { kind: 'own' } {
    if (head.length === 0 || this.isCopyOfFollowed(file.path, head)) return { kind: 'leave' }
    const offset = this.cutOffset(file.path, head, st.mtimeMs)
    if (offset !== undefined) return { kind: 'copy', offset: Math.min(offset, st.size) }
    return { kind: 'own' }
  }

  /**
   * An unknown generation found beside its name (see isUnknownGeneration): read from 0, or from
   * `offset` (a copy of content read through another file: see cutOffset). Null when another
   * search adopted it meanwhile (two names' searches can meet one file). An entry of its
   * identity with no handle and no name is another file's (see adoptHit): replaced.
   */
  adoptUnknown(path: string, handle: H, file: OpenedFile, offset = 0): Tracked<H> | null {
    const known = this.files.get(identityKey(file.identity))
    if (known !== undefined && (known.handle !== null || !this.#nameless(known))) return null
    return this.#add(path, this.#cursorAt(file.identity, offset, file.head), handle)
  }

  /**
   * A copytruncate copy whose rest we read (up to `size`): known from now on, and finished, so a
   * later search does not take it for an unread generation. It takes the place of an entry of
   * its identity with no name (the copy before it, written over in place: see isCopyOf), which
   * is returned as `replaced`: the shell closes its handle, if it has one, and tells the writer
   * that this identity's offset starts again.
   */
  rememberCopy(
    path: string,
    identity: Identity,
    head: Buffer,
    size: number,
  ): { copy: Tracked<H>; replaced: Tracked<H> | null } | null {
    const known = this.files.get(identityKey(identity)) ?? null
    if (known !== null && !this.#nameless(known)) return null
    this.#count(rotationFamily(path)).copies++
    const copy = this.#add(path, this.#cursorAt(identity, size, head), null, { finished: true })
    return { copy, replaced: known }
  }

  /** True while `file` is the table's entry for its identity (not replaced by another file). */
  holds(file: Tracked<H>): boolean {
    return this.files.get(file.key) === file
  }

  /** Where the table stands, for metrics (see TableSummary): one pass over the files. */
  summary(): TableSummary {
    let open = 0
    let parked = 0
    for (const f of this.files.values()) {
      if (f.handle !== null) open++
      else if (f.parked) parked++
    }
    const names = [...this.#events].map(([path, e]) => ({ path, ...e }))
    return { open, parked, missing: this.unreadable.size, names }
  }

  #count(path: string): { rotations: number; copies: number } {
    let e = this.#events.get(path)
    if (e === undefined) {
      e = { rotations: 0, copies: 0 }
      this.#events.set(path, e)
    }
    return e
  }

  /**
   * Open files that lost the name `path` (rotated away) and may still grow: an application
   * writes to its old file until it reopens. Read them before the file now at `path`, so lines
   * keep the order they were written in. Also the older generations of `path` found by a search
   * (a.log.1, adopted under that name after a restart): the selftest saw an application's late
   * lines in one come after the new a.log's.
   */
  *orphansNamed(path: string): Generator<Tracked<H>> {
    for (const f of [...this.#orphanSet]) {
      if (f.path === path || (rotationFamily(f.path) === path && isRotatedSibling(f.path, path)))
        yield f
    }
  }

  /**
   * The next `budget` input names for the periodic sweep, with the file each points to, going
   * round: each call goes on where the last one stopped, and at most once round.
   */
  sweepNames(budget: number): [string, string | null][] {
    const out: [string, string | null][] = []
    while (out.length < budget) {
      let next = this.#sweepAt.next()
      if (next.done) {
        if (out.length > 0) break // once round per call at most
        this.#sweepAt = this.names.entries()
        next = this.#sweepAt.next()
        if (next.done) break
      }
      out.push(next.value)
    }
    return out
  }

  /** Files with no handle and no name: remembered from a checkpoint, or finished. */
  *missing(): Generator<Tracked<H>> {
    for (const f of [...this.#missingPath.keys()]) yield f
  }

  /** Directories where missing files may be (beside their recorded names). */
  missingDirs(): Set<string> {
    const dirs = new Set<string>()
    for (const f of this.missing()) dirs.add(dirname(f.path))
    return dirs
  }

  /**
   * The remembered, not yet open file with this identity, if any; or a finished one that has
   * grown since it was closed (a writer that still held it after the rotation and was quiet
   * for a while): its new lines are read too, so closing a quiet file never loses them. Not
   * one the stat shows to be another file now (see replacedByStat).
   */
  wanted(
    st: Identity & { readonly size: number; readonly birthtimeMs?: number },
  ): Tracked<H> | undefined {
    const f = this.files.get(identityKey(st))
    if (!f || f.handle !== null || f.names !== 0 || this.replacedByStat(f, st)) return undefined
    return !f.finished || st.size > f.cursor.offset ? f : undefined
  }

  /**
   * A remembered file last recorded at `path` and not found yet, while the name leads to another
   * file (`now`): the name moved on without us (rotated between the start-up search and the
   * first look at the name, or while the file was parked). Its rest must be read before the file
   * now at `path`, so the shell searches its directory first.
   */
  strandedAt(path: string, now: Identity | null): boolean {
    // The file still at its name is not stranded: the look at the name opens it (searching its
    // directory for it would open every start-up file at once, as a nameless one).
    const here = now ? identityKey(now) : null
    for (const f of this.#missingAt.get(path) ?? []) if (!f.finished && f.key !== here) return true
    return false
  }

  /** Identity keys of the missing files now: what a scan starting now may judge. */
  missingKeys(): Set<string> {
    return new Set([...this.missing()].map((f) => f.key))
  }

  /**
   * After a periodic scan of `dirs` that found the files `seen` (identity keys): a missing file
   * there that was not seen in PRUNE_AFTER scans in a row (PRUNE_UNFINISHED_AFTER if it was
   * never finished) is gone (deleted, compressed) and is dropped, so the state does not grow by
   * one entry per rotation forever. Several scans, far apart, not one: a file renamed between a
   * scan's readdir and its stat is missed by that scan (the SIGKILL soak, rotating every 70 ms,
   * lost a file when the searches made at each rotation counted misses too). Only files
   * missing when the scan began (`before`, from missingKeys) are judged: one that lost its
   * name during the scan may have been renamed after the readdir.
   */
  settleScan(
    dirs: ReadonlySet<string>,
    seen: ReadonlySet<string>,
    before: ReadonlySet<string>,
  ): Tracked<H>[] {
    const dropped: Tracked<H>[] = []
    for (const f of [...this.missing()]) {
      if (!dirs.has(dirname(f.path)) || !before.has(f.key)) continue
      if (seen.has(f.key)) f.missed = 0
      else if (++f.missed >= (f.finished ? PRUNE_AFTER : PRUNE_UNFINISHED_AFTER)) {
        this.files.delete(f.key)
        this.#cut.delete(f.key)
        this.#index(f)
        dropped.push(f)
      }
    }
    return dropped
  }

  /** The shell looked at `file` at `at` and it was not truncated (see emptied). */
  sawWhole(file: Tracked<H>, at: number): void {
    this.#seenWhole.set(file, at)
  }

  /**
   * The shell saw `file` truncated and starts it again from 0 (see generationsToFind). The
   * truncation happened after the file was last seen whole, and so did the births of any
   * generations copied away in between: that is the time to search from. The time the
   * truncation was seen is too late: with the readers held (a full output) for longer than a
   * rotation interval, a whole generation was written, copied and truncated in between, and
   * its copy, born before the truncation was seen, was read only at the next restart, after
   * the next generation's lines (the selftest, every engine). `otherwise`: when this run never
   * saw the file whole (a remembered one), the shell's start.
   */
  emptied(file: Tracked<H>, otherwise: number): void {
    this.#emptied.set(file.key, this.#seenWhole.get(file) ?? otherwise)
    this.#seenWhole.delete(file)
  }

  /**
   * Before reading `file`, whose size is now `size` at a look made at `at`: if it was truncated
   * (or seen empty, see #seenEmpty) and we have none of its new bytes yet, the time of that
   * truncation (or look), so the shell first looks beside it for
   * generations born since (searchHit's `unknownSince`). A copytruncate of content we never
   * read leaves no trace in the file itself: the fingerprint we would compare is empty, so the
   * truncation is not seen, and the copy was found only by a later search, after the next
   * generation's lines (the selftest's 120 s async run: 4 whole generations late). Undefined
   * when there is nothing to look for; once the file has bytes of ours, it is forgotten.
   */
  generationsToFind(file: Tracked<H>, size: number, at: number): number | undefined {
    if (file.cursor.head.length > 0 || file.cursor.offset > 0) {
      this.#emptied.delete(file.key)
      this.#seenEmpty.delete(file)
      return undefined
    }
    if (size === 0) {
      // Empty, none of its bytes ours, no truncation seen: the same once it fills, unless a
      // copytruncate happened first (see #seenEmpty; the first such look is kept).
      if (!this.#emptied.has(file.key) && !this.#seenEmpty.has(file)) this.#seenEmpty.set(file, at)
      return undefined
    }
    const since = this.#emptied.get(file.key) ?? this.#seenEmpty.get(file)
    this.#emptied.delete(file.key)
    this.#seenEmpty.delete(file)
    return since
  }

  /** The shell closed `file`'s handle: with no name left, it is finished. */
  released(file: Tracked<H>): void {
    file.finished = file.names === 0
    if (file.finished) file.closedAt = Date.now()
    this.#index(file)
  }

  /**
   * What a directory search (the shells' #scanMissing) makes of the file `st` at `path`: a
   * remembered or finished-and-grown file to read on ('remembered'), an older generation of an
   * input name nobody has seen, born after `unknownSince` ('unknown'), or nothing (null). Input
   * names in `current` are left to the look at the name.
   */
  searchHit(
    path: string,
    st: FoundStat,
    current: NameSet,
    unknownSince?: number,
  ): SearchHit | null {
    if (current.has(path)) return null
    if (this.wanted(st)) return 'remembered'
    if (unknownSince !== undefined && this.isUnknownGeneration(path, st, current, unknownSince))
      return 'unknown'
    return null
  }

  /**
   * Takes over a search hit the shell opened as `handle`: the file to read from here, whether
   * it is new to the writer (note it; `replaced`: an entry of its identity was dropped for it,
   * so the writer must forget that one's offset first), and what to tell the operator; null
   * when it is not to be read after all (another search took it, its first bytes differ, or it
   * is a copytruncate copy, which is read from our offset once the truncation is seen): the
   * shell closes `handle`.
   */
  adoptHit(
    path: string,
    handle: H,
    file: OpenedFile,
    hit: SearchHit,
    how: AdoptHow = {},
  ): { file: Tracked<H>; isNew: boolean; replaced: boolean; message: string | null } | null {
    const known = this.files.get(identityKey(file.identity))
    if (hit === 'remembered' && known && this.#describes(known, path, file)) {
      const finished = known.finished
      const oldPath = known.path
      const adopted = this.adoptOrphan(path, handle, file)
      if (!adopted) return null
      // Said only when there is something to read: after a restart every older generation the
      // state knows is found again under its shifted name, most of them read to their end.
      const unread = file.size > adopted.cursor.offset
      const message = !unread
        ? null
        : finished
          ? `${path}: written to after it was closed; reading the new lines`
          : path !== oldPath
            ? `${path}: rotated while logmerge was not looking; reading the rest of it`
            : null
      return { file: adopted, isNew: false, replaced: false, message }
    }
    // A known identity whose entry does not describe the file there now (rewritten in place,
    // or its inode reused): another file, judged as an unknown one by when it was written.
    // Read on from the old entry's offset, it lost or repeated lines (issue 16).
    if (
      hit === 'remembered' &&
      (how.unknownSince === undefined ||
        how.current === undefined ||
        !this.#newerThan(path, file.mtimeMs ?? 0, how.current, how.unknownSince))
    )
      return null
    if (this.isCopyOfFollowed(path, file.head)) return null
    // A copy of what the name holds now (logrotate copied and has not truncated yet): read from
    // the file itself; the copy's rest is read when the truncation is seen. Taking it as a new
    // generation read its lines twice (the selftest, threads, right after a truncation).
    const { nowAtName } = how
    if (
      nowAtName &&
      nowAtName.length > 0 &&
      file.head.length > 0 &&
      headsAgree(nowAtName, file.head)
    )
      return null
    // A copy of content read through a file seen truncated since: on from where we were.
    const cut = this.cutOffset(path, file.head, file.mtimeMs ?? 0)
    const adopted = this.adoptUnknown(path, handle, file, Math.min(cut ?? 0, file.size))
    if (!adopted) return null
    const message =
      cut !== undefined
        ? `${path}: a copy of a truncated file found late; reading the rest of it`
        : known === undefined
          ? `${path}: created and rotated between two looks; reading all of it`
          : `${path}: not the file logmerge knew there (written over, or its inode reused); reading all of it`
    return { file: adopted, isNew: true, replaced: known !== undefined, message }
  }

  /**
   * True when the closed entry `known` still describes the file found at its identity (`path`,
   * `file`): the stat does not say otherwise (see replacedByStat) and the first bytes agree. An
   * empty fingerprint (the file was empty when we read it) agrees with content only when that
   * content is not a copy of a file we follow: with that, a copytruncate copy that got the
   * inode of a file we had read while it was empty was read again from 0 (the service test,
   * 133-172 lines twice in 4 runs of 229).
   */
  #describes(known: Tracked<H>, path: string, file: OpenedFile): boolean {
    if (this.replacedByStat(known, file)) return false
    if (known.cursor.head.length > 0) return known.cursor.headMatches(file.head)
    return file.head.length === 0 || !this.isCopyOfFollowed(path, file.head)
  }

  /** A remembered file found under a name no input matches (a rotated sibling): read it out. */
  adoptOrphan(path: string, handle: H, file: OpenedFile): Tracked<H> | null {
    const key = identityKey(file.identity)
    const known = this.files.get(key)
    if (!known || known.handle !== null || !known.cursor.headMatches(file.head)) return null
    known.handle = handle
    known.path = path
    known.lastActivity = Date.now()
    known.missed = 0
    known.finished = false
    known.closedAt = null
    this.#index(known)
    return known
  }

  /** Names that could not be opened (missing, unreadable, not a file) at their last look. */
  readonly unreadable = new Set<string>()
  /** Files whose last read failed (EIO: a failing disk), identity key -> path. */
  readonly failing = new Map<string, string>()

  /** What --once reports as not read: names not opened, and files whose reads failed. */
  unreadableNow(): string[] {
    return [...new Set([...this.unreadable, ...this.failing.values()])]
  }

  /**
   * What a stat of the input name `path` found (its Stats, or the error it threw): the file to
   * follow, or null, with a warning (once) where one is due. The shells do the stat.
   */
  judgeName<S extends FileKind>(
    path: string,
    seen: { stats: S } | { error: unknown },
    follow: boolean,
    log: Pick<Logger, 'warnOnce' | 'forget'>,
  ): S | null {
    if ('stats' in seen && seen.stats.isFile()) {
      this.unreadable.delete(path)
      // A name that was something else, or could not be stat'ed, may warn again next time.
      log.forget(`type:${path}`)
      log.forget(`stat:${path}`)
      return seen.stats
    }
    this.unreadable.add(path)
    if ('stats' in seen) {
      log.warnOnce(`type:${path}`, notAFile(path, seen.stats))
    } else if (!isErrno(seen.error, 'ENOENT', 'ENOTDIR')) {
      const why = describeErrno(seen.error as NodeJS.ErrnoException)
      log.warnOnce(`stat:${path}`, `cannot follow ${path}: ${why}; will keep trying`)
    } else if (this.isStartupName(path)) {
      const later = follow ? ' yet; it will be followed when it appears' : ''
      log.warnOnce(`missing:${path}`, `${path} does not exist${later}`)
    }
    return null
  }

  /**
   * The shell could not open `path` (permission denied...), which a stat showed to be `st`. A
   * name from the start-up scan keeps its start-up size: with --from end, the file begins there
   * once it can be opened, so lines written meanwhile are read and older ones are not.
   */
  openFailed(path: string, st: Identity & { readonly size: number }): void {
    this.unreadable.add(path)
    this.#openFailures.add(path)
    if (this.#startupNames.has(path) && !this.#deferred.has(path)) {
      this.#deferred.set(path, { key: identityKey(st), size: st.size })
    }
  }

  /**
   * The file `st` at `path` could not be opened (EACCES, say): follow its identity from now on,
   * from 0 and not yet read, so that if it is rotated away before it can be opened, a search
   * finds it by identity as it finds a remembered file, and reads it. Before, such a generation
   * was never read (the selftest lost whole generations created unreadable and rotated away;
   * docs/selftest.md). Not under --from end for a file there at start-up (`fromEnd`): that one
   * begins at its start-up size when it opens (startSize). Returns the new entry for the shell
   * to note (so checkpoints keep it across a restart), or null.
   */
  trackUnopened(
    path: string,
    st: Identity & { readonly size: number },
    fromEnd: boolean,
  ): Tracked<H> | null {
    const key = identityKey(st)
    if (this.files.has(key)) return null
    if (fromEnd && (this.#startupNames.has(path) || this.#deferred.get(path)?.key === key))
      return null
    return this.#add(path, this.#cursorAt(st, 0, Buffer.alloc(0)), null)
  }

  /** `path` opened: if opening it had failed, say it works now (and warn again next time). */
  openWorked(path: string, log: Pick<Logger, 'forget' | 'info'>): void {
    if (!this.#openFailures.delete(path)) return
    log.forget(`open:${path}`)
    log.info(`${path}: can be opened now; following it`)
  }

  /**
   * A read of `file` failed (EIO: a failing disk or a lost network mount): warn once, and count
   * it as unread for --once. Its unread bytes stay unread, not skipped: the sweep sees it behind
   * and tries again every poll interval; the other inputs go on meanwhile.
   */
  readFailed(file: Tracked<H>, err: NodeJS.ErrnoException, log: Pick<Logger, 'warnOnce'>): void {
    this.failing.set(file.key, file.path)
    log.warnOnce(
      `read:${file.key}`,
      `cannot read ${file.path}: ${describeErrno(err)}; will retry (the other inputs go on)`,
    )
  }

  /** A read of `file` worked: if one had failed, say it reads again (and warn again next time). */
  readWorked(file: Tracked<H>, log: Pick<Logger, 'forget' | 'info'>): void {
    if (!this.failing.delete(file.key)) return
    log.forget(`read:${file.key}`)
    log.info(`${file.path}: can be read again; reading on from where it stopped`)
  }

  /**
   * Where the file `st` at `path` begins under --from end, or null when it begins at 0 (not a
   * start-up name, or another file than the one there at start-up) or where it was (known).
   */
  startSize(path: string, st: Identity & { readonly size: number }): number | null {
    // A file we know resumes where it was (see opened): no start to look for.
    if (this.files.has(identityKey(st))) return null
    if (this.#startupNames.has(path)) return st.size
    const deferred = this.#deferred.get(path)
    if (deferred?.key !== identityKey(st) || st.size < deferred.size) return null
    return deferred.size
  }

  beginStartup(paths: Iterable<string>): void {
    for (const p of paths) this.#startupNames.add(p)
  }

  /** After the start-up pass: a name still missing begins at 0 when it appears. */
  endStartup(): void {
    this.#startupNames.clear()
  }

  isStartupName(path: string): boolean {
    return this.#startupNames.has(path)
  }

  fileOf(path: string): Tracked<H> | undefined {
    const key = this.names.get(path)
    return key ? this.files.get(key) : undefined
  }

  /**
   * The name `path` now points to the file with identity `id` (null: to nothing). Returns the
   * file that lost its last name (to be read to its end), if any, and what to do next.
   */
  look(path: string, id: Identity | null): { step: NameStep; orphaned: Tracked<H> | null } {
    const prevKey = this.names.get(path) ?? null
    const key = id ? identityKey(id) : null
    if (key === prevKey) return { step: key ? { kind: 'same' } : { kind: 'none' }, orphaned: null }
    const orphaned = prevKey ? this.#unname(prevKey) : null
    if (orphaned) this.#count(path).rotations++
    this.names.set(path, null)
    if (!key) return { step: { kind: 'none' }, orphaned }
    const known = this.files.get(key)
    if (known && (known.handle !== null || known.parked)) {
      known.names++
      this.#index(known)
      this.names.set(path, key)
      return { step: { kind: 'same' }, orphaned }
    }
    return { step: { kind: 'open' }, orphaned }
  }

  /**
   * Up to `n` named open files, the idlest (longest without growing) first: the ones to park
   * when the readers hold as many files as they may (see fd-budget.ts). Files read to their end
   * without a name are not among them: nothing could reopen them.
   */
  idlest(n: number): Tracked<H>[] {
    const named = [...this.open()].filter((f) => f.names > 0)
    return named.sort((a, b) => a.lastActivity - b.lastActivity).slice(0, n)
  }

  /**
   * Parks `file`: the shell closes the returned handle. The cursor stays, so when its name
   * shows a change the shell reopens it by that name (unparked), checking the identity; a
   * truncation while parked shows in the first bytes, as always. If the name moves on while it
   * is parked, the file is missing and found by identity beside its name (see strandedAt).
   */
  park(file: Tracked<H>): H {
    const handle = file.handle
    if (handle === null || file.names === 0)
      throw new Error(`park: ${file.path} is not named and open`)
    file.handle = null
    file.parked = true
    this.#index(file)
    return handle
  }

  /** The shell reopened a parked file by its name and checked it is the same file. */
  unparked(file: Tracked<H>, handle: H): void {
    file.handle = handle
    file.parked = false
    this.#index(file)
  }

  /** Parked files (closed to save descriptors, still followed by name). */
  *parkedFiles(): Generator<Tracked<H>> {
    for (const f of this.files.values()) if (f.parked) yield f
  }

  /**
   * The shell opened `path` and got `handle` on the file `file` describes (its fd's own stat:
   * the name may have moved on since `look`). Returns the tracked file, or null when that file is
   * already open under another name (the shell closes `handle`). With `startAtEnd` (see
   * startSize), a file never seen before begins at `lineStart`.
   */
  opened(
    path: string,
    handle: H,
    file: OpenedFile,
    startAtEnd: boolean,
    lineStart: number,
  ): Tracked<H> | null {
    const key = identityKey(file.identity)
    const known = this.files.get(key)
    if (known?.handle) {
      known.names++
      this.#index(known)
      this.names.set(path, key)
      return null
    }
    // A name the checkpoint knew, now leading to a file it did not: created while we were down.
    const fromStartup = this.#startupNames.delete(path)
    const deferred = this.#deferred.delete(path)
    const atStartup = (fromStartup || deferred) && !this.#knownNames.has(path)
    let cursor: Cursor
    if (known) {
      // Remembered from a checkpoint, or finished earlier and seen again under a (new) name:
      // resume. If its first bytes changed meanwhile, it was truncated and rewritten (or its
      // inode reused): the shell's first read sees that as a truncation and, as while running,
      // finishes from a copytruncate copy before reading from 0. A new cursor at 0 here lost
      // the copy's rest when the truncation fell between the start-up prescan and this open
      // (found by the selftest: copytruncate under the reader-thread engines).
      cursor = known.cursor
    } else {
      cursor = this.#cursorAt(file.identity, atStartup && startAtEnd ? lineStart : 0, file.head)
    }
    const tracked = this.#add(path, cursor, handle, { names: 1 })
    this.names.set(path, key)
    return tracked
  }

  /** A cursor on the file `identity` at `offset`, which begins with `head`. */
  #cursorAt(identity: Identity, offset: number, head: Buffer): Cursor {
    return new Cursor({ identity, offset, head, maxLineBytes: this.maxLineBytes })
  }

  /** Follows the file `cursor` reads (replacing any entry of its identity); returns the entry. */
  #add(
    path: string,
    cursor: Cursor,
    handle: H | null,
    how: { names?: number; finished?: boolean } = {},
  ): Tracked<H> {
    const tracked: Tracked<H> = {
      key: identityKey(cursor.identity),
      cursor,
      handle,
      path,
      names: how.names ?? 0,
      lastActivity: Date.now(),
      finished: how.finished ?? false,
      missed: 0,
      parked: false,
      closedAt: how.finished ? Date.now() : null,
    }
    const replaced = this.files.get(tracked.key)
    this.files.set(tracked.key, tracked)
    if (replaced) this.#index(replaced)
    this.#index(tracked)
    return tracked
  }

  /**
   * Files its state puts in the missing and orphan indexes (see #missingAt): called wherever a
   * file's handle, names or entry change. A file no longer in the table leaves both.
   */
  #index(f: Tracked<H>): void {
    const live = this.files.get(f.key) === f
    const was = this.#missingPath.get(f)
    const missingNow = live && f.handle === null && f.names === 0
    if (was !== undefined && (!missingNow || was !== f.path)) {
      const at = this.#missingAt.get(was)
      at?.delete(f)
      if (at?.size === 0) this.#missingAt.delete(was)
      this.#missingPath.delete(f)
    }
    if (missingNow && this.#missingPath.get(f) === undefined) {
      this.#missingPath.set(f, f.path)
      const at = this.#missingAt.get(f.path)
      if (at) at.add(f)
      else this.#missingAt.set(f.path, new Set([f]))
    }
    if (live && f.names === 0 && f.handle !== null) this.#orphanSet.add(f)
    else this.#orphanSet.delete(f)
  }

  /** Files that lost every name and still have a handle (being read to their end). */
  *orphans(): Generator<Tracked<H>> {
    for (const f of [...this.#orphanSet]) yield f
  }

  /** Files with an open handle. */
  *open(): Generator<Tracked<H>> {
    for (const f of this.files.values()) if (f.handle !== null) yield f
  }

  /**
   * Where every file stands, for a checkpoint: `offsets` (from the writer) says how far each
   * one's bytes are in the output. A file leaves the state only through settleScan: proven gone
   * by two scans of its directory (forgetting one that a single start failed to find lost its
   * unread lines in the SIGKILL soak).
   */
  checkpoint(offsets: ReadonlyMap<string, number>): SourceState[] {
    const out: SourceState[] = []
    for (const [key, f] of this.files) {
      const offset = offsets.get(key)
      if (offset === undefined) continue
      const { dev, ino } = f.cursor.identity
      out.push({ path: f.path, dev, ino, head: f.cursor.head.toString('base64'), offset })
    }
    return out
  }

  /** True when an orphan has been quiet long enough to be closed. */
  static isQuiet(file: Tracked<unknown>, quietMs: number, now = Date.now()): boolean {
    return file.names === 0 && now - file.lastActivity >= quietMs
  }

  #unname(key: string): Tracked<H> | null {
    const file = this.files.get(key)
    if (!file) return null
    file.names--
    if (file.names > 0) return null
    file.lastActivity = Date.now()
    file.parked = false // no name to reopen it by: missing now, looked for by identity
    this.#index(file)
    return file
  }
}

/** What judgeName needs to know about a stat (a subset of fs.Stats). */
export interface FileKind {
  isFile(): boolean
  isDirectory(): boolean
  isFIFO(): boolean
  isSocket(): boolean
  isCharacterDevice(): boolean
  isBlockDevice(): boolean
}

/**
 * Why `path` is skipped, and what to do instead. Only regular files have offsets to resume from
 * and an end to read to: a FIFO's bytes can be read once, /dev/zero never ends.
 */
export function notAFile(path: string, st: FileKind): string {
  if (st.isDirectory()) {
    return `${path} is a directory, not a log file; skipping it (to follow the files in it, give a glob such as '${path}/*')`
  }
  const kinds: [boolean, string, string][] = [
    [st.isFIFO(), 'a FIFO (named pipe)', 'have the program write its log to a file'],
    [st.isSocket(), 'a socket', 'have the program write its log to a file'],
    [st.isCharacterDevice(), 'a character device', 'remove it from the inputs'],
    [st.isBlockDevice(), 'a block device', 'remove it from the inputs'],
  ]
  const [, what, instead] = kinds.find(([is]) => is) ?? [
    true,
    'something else',
    'remove it from the inputs',
  ]
  return `${path} is ${what}, not a regular file; skipping it: logmerge follows regular files only (${instead})`
}
