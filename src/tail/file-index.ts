/**
 * The file table's entries and their indexes (FileTable builds on it): every followed file by
 * identity (device:inode), which input name leads to which, and the files with no name, kept
 * in indexes as each changes, so the looks made on every event cost the same with 10 files or
 * 10,000: the missing ones (no handle, no name: remembered or finished) by the path they were
 * last seen at, and the orphans (a handle, no name: being read to their end). Parking (closing
 * the idlest named files when descriptors run short) is here too: it only moves a file between
 * these states; and so are the periodic sweep's two choices, which read these indexes (which
 * names to look at again, what to do with each orphan). No I/O.
 */
import { dirname } from 'node:path'
import { Cursor, type Identity, identityKey, sameIdentity } from './cursor.js'
import { isRotatedSibling, rotationFamily } from './rotation.js'
import { base64Of, keepsItsLine, type SourceState, sourceRecord } from './source-state.js'
import type { Tracked } from './tracked.js'

export class FileIndex<H> {
  readonly maxLineBytes: number
  readonly files = new Map<string, Tracked<H>>()
  /** Input name -> identity key of the file it points to now (null: nothing). */
  readonly names = new Map<string, string | null>()
  /**
   * Files with no handle and no name (see missing), by the path they were last seen at, and
   * files with a handle and no name (see orphans). Kept as each file changes (see #index), so
   * the looks made on every event cost the same with 10 files or 10,000.
   */
  readonly #missingAt = new Map<string, Set<Tracked<H>>>()
  readonly #missingPath = new Map<Tracked<H>, string>()
  readonly #orphanSet = new Set<Tracked<H>>()
  /**
   * Open files that left a name for another input name (logrotate's rename to a.log.1 when the
   * directory, or a glob matching a.log.1, is the input), and when: like an orphan, such a file
   * may still grow (an application writes to the fd it opened before the rename), and its late
   * lines must come before the new file's at the name it left (see orphansNamed). Without
   * this, a.log.1 being followed made it no orphan, and a late line came after the new a.log's
   * next one (test/e2e/follow.test.ts's rotation through the directory, once, in CI).
   */
  readonly #movedAway = new Map<Tracked<H>, number>()
  /** Where the sweep goes on from (a live iterator: names added meanwhile are met too). */
  #sweepAt: Iterator<[string, string | null]> = new Map<string, string | null>().entries()

  constructor(maxLineBytes: number) {
    this.maxLineBytes = maxLineBytes
  }

  /** True while `file` is the table's entry for its identity (not replaced by another file). */
  holds(file: Tracked<H>): boolean {
    return this.files.get(file.key) === file
  }

  /**
   * Open files that lost the name `path` (rotated away) and may still grow: an application
   * writes to its old file until it reopens. Read them before the file now at `path`, so lines
   * keep the order they were written in. Also the older generations of `path` found by a search
   * (a.log.1, adopted under that name after a restart): the selftest saw an application's late
   * lines in one come after the new a.log's.
   */
  *orphansNamed(path: string): Generator<Tracked<H>> {
    // Copies: reading one may retire it. A file away once that lost its last name since is
    // an orphan now (in both: given once).
    const away = [...this.#movedAway.keys()].filter((f) => f.names > 0 && f.handle !== null)
    for (const f of [...this.#orphanSet, ...away]) {
      if (f.path === path || (rotationFamily(f.path) === path && isRotatedSibling(f.path, path)))
        yield f
    }
  }

  /**
   * True while a file that left a name for another input name may still grow: for `quietMs`
   * after it left (see #movedAway); the older ones, and files closed or replaced, are dropped.
   */
  awayMayGrow(quietMs: number, now = Date.now()): boolean {
    for (const [f, at] of this.#movedAway) {
      if (now - at >= quietMs || f.handle === null || !this.holds(f)) this.#movedAway.delete(f)
    }
    return this.#movedAway.size > 0
  }

  /** The open file `key` left a name and keeps another (see #movedAway). */
  protected leftForAnother(key: string): void {
    const file = this.files.get(key)
    if (file && file.handle !== null) this.#movedAway.set(file, Date.now())
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

  /** Identity keys of the missing files now: what a scan starting now may judge. */
  missingKeys(): Set<string> {
    return new Set([...this.missing()].map((f) => f.key))
  }

  /** The shell closed `file`'s handle: with no name left, it is finished. */
  released(file: Tracked<H>): void {
    file.finished = file.names === 0
    if (file.finished) file.closedAt = Date.now()
    this.reindex(file)
  }

  fileOf(path: string): Tracked<H> | undefined {
    const key = this.names.get(path)
    return key ? this.files.get(key) : undefined
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
    this.reindex(file)
    return handle
  }

  /** The shell reopened a parked file by its name and checked it is the same file. */
  unparked(file: Tracked<H>, handle: H): void {
    file.handle = handle
    file.parked = false
    this.reindex(file)
  }

  /** Parked files (closed to save descriptors, still followed by name). */
  *parkedFiles(): Generator<Tracked<H>> {
    for (const f of this.files.values()) if (f.parked) yield f
  }

  /** A cursor on the file `identity` at `offset`, which begins with `head`. */
  protected cursorAt(identity: Identity, offset: number, head: Buffer): Cursor {
    return new Cursor({ identity, offset, head, maxLineBytes: this.maxLineBytes })
  }

  /** Follows the file `cursor` reads (replacing any entry of its identity); returns the entry. */
  protected add(
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
      saved: null,
    }
    const replaced = this.files.get(tracked.key)
    this.files.set(tracked.key, tracked)
    if (replaced) this.reindex(replaced)
    this.reindex(tracked)
    return tracked
  }

  /**
   * Files its state puts in the missing and orphan indexes (see #missingAt): called wherever a
   * file's handle, names or entry change. A file no longer in the table leaves both.
   */
  protected reindex(f: Tracked<H>): void {
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
      const head = base64Of(f.cursor.head)
      const last = f.saved
      // The same record while it is the same (Tracked.saved): its identity is the file's key.
      if (last && last.offset === offset && last.head === head && last.path === f.path) {
        out.push(last)
        continue
      }
      const record = sourceRecord(f.cursor.identity, f.path, head, offset)
      f.saved = keepsItsLine(record)
      out.push(record)
    }
    return out
  }

  /**
   * The sweep's quick stat of a name that led to the file `key` (see sweepNames) found `st`
   * (undefined: nothing, or the stat failed): true when the name needs a proper look (the
   * shell's resolve): it leads nowhere, to another file than ours, or to ours at another size
   * than we have read to.
   */
  sweepSaw(key: string | null, st: (Identity & { readonly size: number }) | undefined): boolean {
    const file = key ? this.files.get(key) : undefined
    return !st || !file || !sameIdentity(st, file.cursor.identity) || st.size !== file.cursor.offset
  }

  /**
   * What the sweep does with an orphan (see orphans) whose size is now `size` (-1: its fstat
   * failed, and the read says why): read it when it changed; retire it when it has been quiet
   * for `quietMs` (one last read, then its partial line flushed and its handle closed).
   */
  static orphanStep(
    file: Tracked<unknown>,
    size: number,
    quietMs: number,
  ): 'read' | 'retire' | null {
    if (size !== file.cursor.offset) return 'read'
    return FileIndex.isQuiet(file, quietMs) ? 'retire' : null
  }

  /** True when an orphan has been quiet long enough to be closed. */
  static isQuiet(file: Tracked<unknown>, quietMs: number, now = Date.now()): boolean {
    return file.names === 0 && now - file.lastActivity >= quietMs
  }

  protected unname(key: string): Tracked<H> | null {
    const file = this.files.get(key)
    if (!file) return null
    file.names--
    if (file.names > 0) return null
    file.lastActivity = Date.now()
    file.parked = false // no name to reopen it by: missing now, looked for by identity
    this.reindex(file)
    return file
  }
  /** The files whose entry is missing and last seen at `path`. */
  protected missingAtPath(path: string): Iterable<Tracked<H>> {
    return this.#missingAt.get(path) ?? []
  }
}
