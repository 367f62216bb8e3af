/**
 * The file table's part in the search for rotated, copied and remembered generations
 * (FileTable builds on it): it asks the pure rules (generation-rules.ts) what a file found
 * beside an input name is, and takes the file over as they say: read on as a remembered entry,
 * adopted as a new generation from 0 or from where a truncated file's copy was, or recorded as
 * a copytruncate copy read to its end. Missing files that periodic scans no longer find are
 * dropped here. No I/O: the shells look and open, and pass in what they saw.
 */
import { dirname } from 'node:path'
import { anotherFile, type Identity, identityKey } from './cursor.js'
import { FileIndex } from './file-index.js'
import {
  type AdoptHow,
  hitMessage,
  isCopyOf,
  isNameless,
  isReadThroughName,
  judgeHit,
  mayBeCopy,
  missedTooOften,
  type Overwritten,
  overwritten,
  type SearchHit,
  searchHit,
  wanted,
} from './generation-rules.js'
import { rotationFamily } from './rotation.js'
import type { FoundStat, NameEvents, NameSet, OpenedFile, Tracked } from './tracked.js'
import { Truncations } from './truncations.js'

export class GenerationTable<H> extends FileIndex<H> {
  /** What is remembered of truncations (the shells report them: see Truncations). */
  readonly truncations = new Truncations()
  /** Per input name: rotations and copies seen (see TableSummary). */
  readonly #events = new Map<string, { rotations: number; copies: number }>()

  /** See generation-rules.ts for these rules of the generation search. */
  mayBeCopy(file: Tracked<H>, st: Identity): boolean {
    return mayBeCopy(this.files, file, st)
  }

  isCopyOf(file: Tracked<H>, found: OpenedFile): boolean {
    return isCopyOf(this.files, file, found)
  }

  overwritten(
    file: Tracked<H>,
    head: Buffer,
    st: { readonly size: number; readonly mtimeMs: number },
  ): Overwritten {
    return overwritten(this.files, this.truncations, file, head, st)
  }

  wanted(
    st: Identity & { readonly size: number; readonly birthtimeMs?: number },
  ): Tracked<H> | undefined {
    return wanted(this.files, st)
  }

  searchHit(
    path: string,
    st: FoundStat,
    current: NameSet,
    unknownSince?: number,
    afterTruncation = false,
  ): SearchHit | null {
    return searchHit(this.files, path, st, current, unknownSince, afterTruncation)
  }

  isReadThroughName(path: string, head: Buffer, nowAtName: Buffer | undefined): boolean {
    return isReadThroughName(this.files, path, head, nowAtName)
  }

  /** The shell saw `file` truncated (see Truncations.truncating). */
  truncating(file: Tracked<H>): void {
    this.truncations.truncating(file)
  }

  /**
   * An unknown generation found beside its name (see isUnknownGeneration): read from 0, or from
   * `offset` (a copy of content read through another file: see cutOffset). Null when another
   * search adopted it meanwhile (two names' searches can meet one file). An entry of its
   * identity with no handle and no name is another file's (see adoptHit): replaced.
   */
  adoptUnknown(path: string, handle: H, file: OpenedFile, offset = 0): Tracked<H> | null {
    const known = this.files.get(identityKey(file.identity))
    if (known !== undefined && (known.handle !== null || !isNameless(known))) return null
    return this.add(path, this.cursorAt(file.identity, offset, file.head), handle)
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
    if (known !== null && !isNameless(known)) return null
    this.count(rotationFamily(path)).copies++
    const copy = this.add(path, this.cursorAt(identity, size, head), null, { finished: true })
    return { copy, replaced: known }
  }

  /** The rotations and copies seen for the input name `path` (see TableSummary). */
  protected count(path: string): { rotations: number; copies: number } {
    let e = this.#events.get(path)
    if (e === undefined) {
      e = { rotations: 0, copies: 0 }
      this.#events.set(path, e)
    }
    return e
  }

  /** Per input name: rotations and copies seen, for the table's summary. */
  protected nameEvents(): NameEvents[] {
    return [...this.#events].map(([path, e]) => ({ path, ...e }))
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
    for (const f of this.missingAtPath(path)) if (!f.finished && f.key !== here) return true
    return false
  }

  /**
   * The entry at the inode of `st` (a file about to be opened) when its birth time shows it to
   * be another file (see anotherFile): that file was deleted and its inode reused, so the entry
   * is dropped and returned (the shell has the writer forget it); the file now there is new.
   * Null when there is no such entry. Kept instead, it was resumed as the old file truncated.
   */
  dropReborn(st: Identity): Tracked<H> | null {
    const known = this.files.get(identityKey(st))
    if (!known || known.handle !== null || known.parked) return null
    if (!anotherFile(known.cursor.identity, st)) return null
    this.#drop(known)
    return known
  }

  /** Takes `f` out of the table: its entry, what is remembered of its truncations, its indexes. */
  #drop(f: Tracked<H>): void {
    this.files.delete(f.key)
    this.truncations.drop(f.key)
    this.reindex(f)
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
      else if (missedTooOften(f)) {
        this.#drop(f)
        dropped.push(f)
      }
    }
    return dropped
  }

  /**
   * Takes over a search hit the shell opened as `handle` (see judgeHit): the file to read from
   * here, whether it is new to the writer (note it; `replaced`: an entry of its identity was
   * dropped for it, so the writer must forget that one's offset first), and what to tell the
   * operator; null when it is not to be read after all (another search took it, its first bytes
   * differ, or it is a copytruncate copy, which is read from our offset once the truncation is
   * seen): the shell closes `handle`.
   */
  adoptHit(
    path: string,
    handle: H,
    file: OpenedFile,
    hit: SearchHit,
    how: AdoptHow = {},
  ): { file: Tracked<H>; isNew: boolean; replaced: boolean; message: string | null } | null {
    const verdict = judgeHit(this.files, this.truncations, path, file, hit, how)
    if (verdict === null) return null
    const known = this.files.get(identityKey(file.identity))
    const was = {
      known: known !== undefined,
      finished: known?.finished ?? false,
      path: known?.path ?? path,
    }
    const adopted =
      verdict.kind === 'resume'
        ? this.adoptOrphan(path, handle, file)
        : this.adoptUnknown(path, handle, file, verdict.offset)
    if (!adopted) return null
    const unread = file.size > adopted.cursor.offset
    const message = hitMessage(path, verdict, { ...was, unread })
    const isNew = verdict.kind === 'new'
    return { file: adopted, isNew, replaced: isNew && known !== undefined, message }
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
    this.reindex(known)
    return known
  }
}
