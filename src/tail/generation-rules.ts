/**
 * The rules of the generation search, as pure functions of the file table's entries and the
 * stats and first bytes the shells pass in (no I/O, no clock): which file found beside an
 * input name is a remembered file to read on, an unseen older generation, logrotate's
 * copytruncate copy of a file we follow, or a file written over in place, and from where each
 * is read. Both shells (tail-sync.ts, tail-async.ts) do the looking (readdir, stat, open, the
 * first bytes) and ask these rules what to make of it, so the two cannot decide apart.
 */
import { anotherFile, headsAgree, type Identity, identityKey } from './cursor.js'
import { isRotatedSibling, rotationFamily } from './rotation.js'
import type { FoundStat, NameSet, OpenedFile, Tracked } from './tracked.js'
import type { Truncations } from './truncations.js'

/** How a directory search (the shells' scanMissing) is made. */
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
  /**
   * The search a truncation of `family` started (see Truncations.generationsToFind): a file no
   * one knew that was written since counts as an unknown generation even when born before (a
   * copy written in place; see isUnknownGeneration). Elsewhere an old file written to late
   * is not a new generation.
   */
  readonly afterTruncation?: boolean
}

/** What a directory search found worth reading (see searchHit). */
export type SearchHit = 'remembered' | 'unknown'

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

/** The table's files by identity key, as the rules read them. */
export type Files = ReadonlyMap<string, Tracked<unknown>>

/**
 * True when `known`, an entry with no handle and no name, cannot describe the file now at its
 * identity, by that file's stat `st`: it is smaller than what we read of it (rewritten in
 * place: a copy written over it, which truncates it first), or it was born after we closed it
 * (the old file was deleted and its inode reused: an inode is only freed once we close it, so
 * the old file was born before that; the kernel's clock for birth times only lags), or at
 * another time than the entry records (see anotherFile: an entry a checkpoint recorded). Its
 * content is another file's: never read on from the entry's offset.
 */
export function replacedByStat(
  known: Tracked<unknown>,
  st: { readonly size: number; readonly birthtimeMs?: number },
): boolean {
  if (known.handle !== null || known.parked || known.names > 0) return false
  if (st.size < known.cursor.offset) return true
  if (anotherFile(known.cursor.identity, st)) return true
  const born = st.birthtimeMs ?? 0
  return known.closedAt !== null && born > 0 && born >= known.closedAt + 1
}

/** An older generation of an input name in `names` whose content dates from after `since`. */
export function newerThan(path: string, at: number, names: NameSet, since: number): boolean {
  if (at === 0 || at <= since - BIRTH_CLOCK_SLACK_MS) return false
  const family = rotationFamily(path)
  return names.has(family) && isRotatedSibling(path, family)
}

/**
 * A file no one has seen, born after `since`, that is an older generation of one of the
 * input names `names` (a.log.3 beside a.log): created and rotated away between two looks, so
 * every byte of it is unread. Needs birth times (ext4, xfs, btrfs); without them, never.
 * A file at an identity the table knows counts only when the stat shows it is another file
 * than the one known there (see replacedByStat); its content is then as new as its last
 * write (an in-place rewrite keeps the old birth time). With `afterTruncation` (the search a
 * truncation started), so does a file no one has seen that was born before but written since:
 * a copy written in place over an old copy this run never knew (fs.copyFileSync and cp keep
 * that file's inode and birth time). When a generation was written, copied in place and
 * truncated between two looks at its file, its copy begins as no file we read and was left
 * out: the whole generation lost (the mixed soak, 242 lines of an in-place copy on top-down;
 * any engine whose reader is held up that long). Without a truncation, an old file written
 * to late is not a new generation (see prescan.ts).
 */
export function isUnknownGeneration(
  files: Files,
  path: string,
  st: FoundStat,
  names: NameSet,
  since: number,
  afterTruncation = false,
): boolean {
  const known = files.get(identityKey(st))
  if (known && !replacedByStat(known, st)) return false
  const at = known || afterTruncation ? Math.max(st.birthtimeMs, st.mtimeMs) : st.birthtimeMs
  return newerThan(path, at, names, since)
}

/** Open, parked, or remembered at a name (not a rotated one) and not opened yet. */
function isFollowed(f: Tracked<unknown>): boolean {
  if (f.handle !== null || f.parked) return true
  return !f.finished && f.closedAt === null && rotationFamily(f.path) === f.path
}

/** No name leads to it (and so none can reopen it): a rotated file, open or closed. */
export function isNameless(f: Tracked<unknown>): boolean {
  return f.names === 0 && !f.parked
}

/**
 * True when `head` (the first bytes of a file found at `path`) begins as a followed file of
 * the same rotation family does: `path` is a copytruncate copy of it, which the follower reads
 * from its own offset once it sees the truncation (the shells' finishFromCopy), never from 0. Followed:
 * open, parked, or remembered from a checkpoint at the family's own name and not opened yet
 * (the start-up pass opens it and sees its truncation then). Without the last, a copy
 * written over a rotated file that the start-up search had just opened, before the start-up
 * pass opened the file copied, was read again from 0 (threads, SIGKILLs under load: 699
 * lines twice).
 */
export function isCopyOfFollowed(files: Files, path: string, head: Buffer): boolean {
  const family = rotationFamily(path)
  for (const f of files.values()) {
    if (f.cursor.head.length === 0 || rotationFamily(f.path) !== family) continue
    if (!isFollowed(f)) continue
    if (f.cursor.headMatches(head)) return true
  }
  return false
}

/**
 * Before opening `st`, a rotated sibling of `file` (just seen truncated), to see whether it is
 * logrotate's copy of it: false when it is `file` itself or a file followed by a name (open
 * or parked). A file the table knows with no name (closed, or still open and being read to
 * its end) may have been written over since (see isCopyOf), so it is looked at too.
 */
export function mayBeCopy(files: Files, file: Tracked<unknown>, st: Identity): boolean {
  const known = files.get(identityKey(st))
  return known === undefined || (known !== file && isNameless(known))
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
export function isCopyOf(files: Files, file: Tracked<unknown>, found: OpenedFile): boolean {
  const { head } = found
  if (head.length === 0 || file.cursor.head.length === 0 || !file.cursor.headMatches(head))
    return false
  const known = files.get(identityKey(found.identity))
  if (known === undefined) return true
  if (!mayBeCopy(files, file, found.identity)) return false
  const recorded = known.cursor.head
  return (
    recorded.length === 0 ||
    !headsAgree(recorded, head) ||
    replacedByStat(known, found) ||
    (known.closedAt !== null && found.mtimeMs !== undefined && found.mtimeMs >= known.closedAt + 1)
  )
}

/**
 * True when the file found at `path`, beginning with `head`, is a copy of content that is read
 * through a followed file rather than from the copy: a copy of a followed file not seen
 * truncated yet (see isCopyOfFollowed), or of what the name held when the search began
 * (`nowAtName`: logrotate copied and has not truncated yet). The copy's rest is read when the
 * truncation is seen (the shells' finishFromCopy). Taking it as a new generation read its
 * lines twice (the selftest, threads, right after a truncation). Every generation of its family
 * born after it is newer than that content, so a search holds them back (see MissingScan).
 */
export function isReadThroughName(
  files: Files,
  path: string,
  head: Buffer,
  nowAtName: Buffer | undefined,
): boolean {
  if (isCopyOfFollowed(files, path, head)) return true
  return !!nowAtName && nowAtName.length > 0 && head.length > 0 && headsAgree(nowAtName, head)
}

/** What becomes of a rotated file seen truncated and written over (see overwritten). */
export type Overwritten = { kind: 'leave' } | { kind: 'copy'; offset: number } | { kind: 'own' }

/**
 * `file`, with no name left (rotated away), was seen truncated, and now begins with `head`
 * (and has the size and write time `st`). A file nobody can open by name any more is not
 * truncated by its writer but written over: an in-place copy (copyFileSync, cp) truncates it,
 * then writes the content of the file it copies. Read again from 0, that content came out
 * twice (once through the file copied), and the copied file's search for its copy skipped it
 * as open (the kill test with in-place copies: whole generations twice, the last lines of
 * others lost).
 * - 'leave': empty so far, or a copy of a followed file not seen truncated yet: nothing is
 *   read now; that file takes it as its copy when it sees its truncation (see isCopyOf).
 * - 'copy': a copy of content a followed file was reading when it was seen truncated (see
 *   Truncations.cutOffset): its bytes before `offset` are out already; read on from there.
 * - 'own': neither: truncated by a writer that still holds it; read again from 0.
 */
export function overwritten(
  files: Files,
  cuts: Truncations,
  file: Tracked<unknown>,
  head: Buffer,
  st: { readonly size: number; readonly mtimeMs: number },
): Overwritten {
  if (head.length === 0 || isCopyOfFollowed(files, file.path, head)) return { kind: 'leave' }
  const offset = cuts.cutOffset(file.path, head, st.mtimeMs)
  if (offset !== undefined) return { kind: 'copy', offset: Math.min(offset, st.size) }
  return { kind: 'own' }
}

/**
 * The remembered, not yet open file with this identity, if any; or a finished one that has
 * grown since it was closed (a writer that still held it after the rotation and was quiet
 * for a while): its new lines are read too, so closing a quiet file never loses them. Not
 * one the stat shows to be another file now (see replacedByStat).
 */
export function wanted<H>(
  files: ReadonlyMap<string, Tracked<H>>,
  st: Identity & { readonly size: number; readonly birthtimeMs?: number },
): Tracked<H> | undefined {
  const f = files.get(identityKey(st))
  if (!f || f.handle !== null || f.names !== 0 || replacedByStat(f, st)) return undefined
  return !f.finished || st.size > f.cursor.offset ? f : undefined
}

/**
 * What a directory search (the shells' scanMissing) makes of the file `st` at `path`: a
 * remembered or finished-and-grown file to read on ('remembered'), an older generation of an
 * input name nobody has seen, born after `unknownSince` ('unknown'), or nothing (null). Input
 * names in `current` are left to the look at the name.
 */
export function searchHit(
  files: Files,
  path: string,
  st: FoundStat,
  current: NameSet,
  unknownSince?: number,
  afterTruncation = false,
): SearchHit | null {
  if (current.has(path)) return null
  if (wanted(files, st)) return 'remembered'
  if (
    unknownSince !== undefined &&
    isUnknownGeneration(files, path, st, current, unknownSince, afterTruncation)
  )
    return 'unknown'
  return null
}

/**
 * True when the closed entry `known` still describes the file found at its identity (`path`,
 * `file`): the stat does not say otherwise (see replacedByStat) and the first bytes agree. An
 * empty fingerprint (the file was empty when we read it) agrees with content only when that
 * content is not a copy of a file we follow: with that, a copytruncate copy that got the
 * inode of a file we had read while it was empty was read again from 0 (the service test,
 * 133-172 lines twice in 4 runs of 229).
 */
function describes(files: Files, known: Tracked<unknown>, path: string, file: OpenedFile): boolean {
  if (replacedByStat(known, file)) return false
  if (known.cursor.head.length > 0) return known.cursor.headMatches(file.head)
  return file.head.length === 0 || !isCopyOfFollowed(files, path, file.head)
}

/** How a search hit opened at `path` is to be taken (see judgeHit). */
export type HitVerdict =
  /** The known entry of its identity reads on, under this name. */
  | { readonly kind: 'resume' }
  /** A new generation, read from `offset`; `cut`: a copy of content read through another file. */
  | { readonly kind: 'new'; readonly offset: number; readonly cut: boolean }

/**
 * Whether a search hit the shell opened (`file`, found as `hit`) is to be read, and from
 * where; null when it is not to be read after all: its first bytes differ from the entry that
 * made it a hit, or it is a copytruncate copy, which is read from our offset once the
 * truncation is seen.
 */
export function judgeHit(
  files: Files,
  cuts: Truncations,
  path: string,
  file: OpenedFile,
  hit: SearchHit,
  how: AdoptHow,
): HitVerdict | null {
  const known = files.get(identityKey(file.identity))
  if (hit === 'remembered' && known && describes(files, known, path, file))
    return { kind: 'resume' }
  // A known identity whose entry does not describe the file there now (rewritten in place,
  // or its inode reused): another file, judged as an unknown one by when it was written.
  // Read on from the old entry's offset, it lost or repeated lines (issue 16).
  if (
    hit === 'remembered' &&
    (how.unknownSince === undefined ||
      how.current === undefined ||
      !newerThan(path, file.mtimeMs ?? 0, how.current, how.unknownSince))
  )
    return null
  if (isReadThroughName(files, path, file.head, how.nowAtName)) return null
  // A copy of content read through a file seen truncated since: on from where we were.
  const cut = cuts.cutOffset(path, file.head, file.mtimeMs ?? 0)
  return { kind: 'new', offset: Math.min(cut ?? 0, file.size), cut: cut !== undefined }
}

/**
 * What to tell the operator about a hit taken over: said only when there is something to read
 * (after a restart every older generation the state knows is found again under its shifted
 * name, most of them read to their end).
 */
export function hitMessage(
  path: string,
  verdict: HitVerdict,
  was: {
    readonly known: boolean
    readonly finished: boolean
    readonly path: string
    readonly unread: boolean
  },
): string | null {
  if (verdict.kind === 'new') {
    return verdict.cut
      ? `${path}: a copy of a truncated file found late; reading the rest of it`
      : !was.known
        ? `${path}: created and rotated between two looks; reading all of it`
        : `${path}: not the file logmerge knew there (written over, or its inode reused); reading all of it`
  }
  if (!was.unread) return null
  if (was.finished) return `${path}: written to after it was closed; reading the new lines`
  return path !== was.path
    ? `${path}: rotated while logmerge was not looking; reading the rest of it`
    : null
}

/** A missing file missed by one more periodic scan: true when it is to be dropped (see PRUNE_AFTER). */
export function missedTooOften(f: Tracked<unknown>): boolean {
  return ++f.missed >= (f.finished ? PRUNE_AFTER : PRUNE_UNFINISHED_AFTER)
}
