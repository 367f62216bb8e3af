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
 *
 * The rest is in files of its own, which the table builds on or holds: the entries and their
 * missing/orphan indexes with parking (file-index.ts), taking over what the generation search
 * finds (generation-table.ts) by its pure rules (generation-rules.ts) and what is remembered of
 * truncations (truncations.ts), the start-up names (startup-names.ts) and the faults reported
 * to the operator (input-faults.ts). This file keeps the names: which file each leads to,
 * opening them, and what a checkpoint recorded at each.
 */
import type { Logger } from '../log.js'
import { Cursor, type Identity, identityKey } from './cursor.js'
import { GenerationTable } from './generation-table.js'
import { type FileKind, InputFaults } from './input-faults.js'
import { StartupNames } from './startup-names.js'
import type { NameStep, OpenedFile, RememberedSource, TableSummary, Tracked } from './tracked.js'

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

export class FileTable<H> extends GenerationTable<H> {
  /** Name -> the file a checkpoint recorded there, until the name is first looked at. */
  readonly #recordedAt = new Map<string, string>()
  readonly #startup = new StartupNames()
  readonly #faults = new InputFaults()
  /**
   * Files a checkpoint recorded: each resumes at its offset when it is found again (under any
   * name) with the same identity and first bytes.
   */
  remember(files: Iterable<RememberedSource>): void {
    for (const f of files) {
      const key = identityKey(f.identity)
      if (this.files.has(key)) continue // already followed: never replace a live cursor
      this.add(f.path, new Cursor({ ...f, maxLineBytes: this.maxLineBytes }), null)
      this.#startup.know(f.path)
      this.#recordedAt.set(f.path, key)
    }
  }

  /**
   * Call before look(): true when the name moved on from the file we last knew there (it led to
   * another file, or a checkpoint recorded another file there) without our seeing the rotation
   * happen, or came back after a look found no file there. Generations born in between may
   * then lie beside it, unread: the shell searches. A writer's rename and its next create
   * leave the name empty for a moment; a look then, and the generations created and renamed
   * away before the next look, were read only after the file then at the name, when a
   * periodic search found them (the 200-kill soak on async and bottom-up).
   */
  movedOn(path: string, id: Identity | null): boolean {
    const named = this.names.get(path)
    const before = named ?? this.#recordedAt.get(path) ?? null
    this.#recordedAt.delete(path)
    if (named === null && id !== null) return true
    return before !== null && before !== (id ? identityKey(id) : null)
  }

  /** Where the table stands, for metrics (see TableSummary): one pass over the files. */
  summary(): TableSummary {
    let open = 0
    let parked = 0
    for (const f of this.files.values()) {
      if (f.handle !== null) open++
      else if (f.parked) parked++
    }
    return { open, parked, missing: this.#faults.unreadable.size, names: this.nameEvents() }
  }

  /** Names that could not be opened (missing, unreadable, not a file) at their last look. */
  get unreadable(): Set<string> {
    return this.#faults.unreadable
  }

  /** See input-faults.ts for the faults the readers report. */
  unreadableNow(): string[] {
    return this.#faults.unreadableNow()
  }

  judgeName<S extends FileKind>(
    path: string,
    seen: { stats: S } | { error: unknown },
    follow: boolean,
    log: Pick<Logger, 'warnOnce' | 'forget'>,
  ): S | null {
    return this.#faults.judgeName(path, seen, follow, log, this.#startup.has(path))
  }

  /**
   * The shell could not open `path` (permission denied...), which a stat showed to be `st`. A
   * name from the start-up scan keeps its start-up size (see StartupNames.openFailed).
   */
  openFailed(path: string, st: Identity & { readonly size: number }): void {
    this.#faults.openFailed(path)
    this.#startup.openFailed(path, st)
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
    if (fromEnd && this.#startup.beginsAtStartupSize(path, key)) return null
    return this.add(path, this.cursorAt(st, 0, Buffer.alloc(0)), null)
  }

  openWorked(path: string, log: Pick<Logger, 'forget' | 'info'>): void {
    this.#faults.openWorked(path, log)
  }

  readFailed(file: Tracked<H>, err: NodeJS.ErrnoException, log: Pick<Logger, 'warnOnce'>): void {
    this.#faults.readFailed(file, err, log)
  }

  readWorked(file: Tracked<H>, log: Pick<Logger, 'forget' | 'info'>): void {
    this.#faults.readWorked(file, log)
  }

  /**
   * Where the file `st` at `path` begins under --from end, or null when it begins at 0 (not a
   * start-up name, or another file than the one there at start-up) or where it was (known).
   */
  startSize(path: string, st: Identity & { readonly size: number }): number | null {
    // A file we know resumes where it was (see opened): no start to look for.
    if (this.files.has(identityKey(st))) return null
    return this.#startup.startSize(path, st)
  }

  beginStartup(paths: Iterable<string>): void {
    this.#startup.begin(paths)
  }

  /** After the start-up pass: a name still missing begins at 0 when it appears. */
  endStartup(): void {
    this.#startup.end()
  }

  /**
   * The name `path` now points to the file with identity `id` (null: to nothing). Returns the
   * file that lost its last name (to be read to its end), if any, and what to do next.
   */
  look(path: string, id: Identity | null): { step: NameStep; orphaned: Tracked<H> | null } {
    const prevKey = this.names.get(path) ?? null
    const key = id ? identityKey(id) : null
    if (key === prevKey) {
      // An input name with no file yet is one of ours all the same: the generations a search
      // finds beside it are its own (see newerThan), and a file there next is new (movedOn).
      if (!key) this.names.set(path, null)
      return { step: key ? { kind: 'same' } : { kind: 'none' }, orphaned: null }
    }
    const orphaned = prevKey ? this.unname(prevKey) : null
    if (orphaned) this.count(path).rotations++
    else if (prevKey) this.leftForAnother(prevKey)
    this.names.set(path, null)
    if (!key) return { step: { kind: 'none' }, orphaned }
    const known = this.files.get(key)
    if (known && (known.handle !== null || known.parked)) {
      known.names++
      this.reindex(known)
      this.names.set(path, key)
      return { step: { kind: 'same' }, orphaned }
    }
    return { step: { kind: 'open' }, orphaned }
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
      this.reindex(known)
      this.names.set(path, key)
      return null
    }
    const atStartup = this.#startup.opened(path)
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
      cursor = this.cursorAt(file.identity, atStartup && startAtEnd ? lineStart : 0, file.head)
    }
    const tracked = this.add(path, cursor, handle, { names: 1 })
    this.names.set(path, key)
    return tracked
  }
}
