/**
 * Where each file present at start-up begins, decided before anything is read, so the first
 * checkpoint can record it before the first byte reaches the output. Without this, a process
 * killed before its first checkpoint would leave bytes in the output that no state accounts for
 * (read again from the start: duplicates; or, with --from end, skipped: lost).
 */
import { closeSync, fstatSync, openSync, type Stats } from 'node:fs'
import { dirname, join } from 'node:path'
import { setImmediate as nextTurn } from 'node:timers/promises'
import { errors, isErrno } from '../errors.js'
import { closeFd, fstatFd, listDir, openFd, readHead, statPath } from './async-fs.js'
import { anotherFile, headsAgree, identityKey, sameIdentity } from './cursor.js'
import { lineStartBeforeSync } from './from-end.js'
import { SEARCH_ATTEMPTS } from './generation-search.js'
import {
  changedSince,
  directoryStamp,
  INPUT_OPEN_FLAGS,
  readHeadSync,
  statQuietly,
} from './input-fs.js'
import { isRotatedSibling, rotationFamily } from './rotation.js'
import { identityOf, type SourceState, sourceIdentity, sourceRecord } from './source-state.js'

/**
 * The sources to resume: the recorded ones, with what prescan found taking the place of a
 * recorded source of the same identity (a file truncated and rewritten while we were down has
 * its new first bytes and starts at 0). One entry per identity: with two, the writer kept the
 * first offset and the checkpoint the last fingerprint, and a kill then resumed the new
 * content at the old offset (lines lost, one torn; found by the selftest on top-down).
 */
export function resumePoints(
  recorded: readonly SourceState[],
  found: readonly SourceState[],
): SourceState[] {
  const byKey = new Map(recorded.map((s) => [identityKey(s), s]))
  for (const s of found) byKey.set(identityKey(s), s)
  return [...byKey.values()]
}

/** A file prescan opened and left open for the follower, with what it saw of it. */
export interface KeptOpen {
  readonly fd: number
  readonly stats: Stats
  /** Its first bytes (up to FINGERPRINT_BYTES) when prescan looked. */
  readonly head: Buffer
}

/**
 * Where to leave files open: up to `max` of them go into `files` (path -> the open file), for
 * the follower to take instead of opening, stat'ing and reading the first bytes again (half
 * the start-up of 10,000 files). The taker closes what it does not use.
 */
export interface KeepOpen {
  readonly max: number
  readonly files: Map<string, KeptOpen>
}

/**
 * The sources start-up records before the first read: for each input name in `paths`, its file
 * where it starts (unless it resumes as `remembered` says), then, after an earlier run
 * (`previousStart`), the older generations beside the names that no state knows (see
 * unknownGenerations). About 75 lines: the probes, then one loop over the names whose three
 * cases (cannot be opened, as recorded, new or rewritten) fill the same maps, read in order.
 */
export async function prescan(
  paths: readonly string[],
  remembered: readonly SourceState[],
  from: 'start' | 'end',
  previousStart: number | null,
  keep?: KeepOpen,
  /** Says (debug) where a file the state knew, or an older generation found, starts and why. */
  note: (message: string) => void = () => {},
): Promise<SourceState[]> {
  const known = new Map(remembered.map((s) => [identityKey(s), s]))
  const knownNames = new Set(remembered.map((s) => s.path))
  const fresh: SourceState[] = []
  /** Input names whose recorded file was truncated while we were down (see searchDir). */
  const rewritten = new Set<string>()
  // A file at a name the last run followed, or born since the last run started, is new: all
  // of it is unread. Only a file we never had a chance to see starts at --from.
  const isNew = (path: string, st: Stats) =>
    knownNames.has(path) || (previousStart !== null && st.birthtimeMs > previousStart)
  const probes = new Array<Probe | null | 'again'>(paths.length)
  const look = (i: number, k?: KeepOpen) => {
    const path = paths[i] as string
    return probe(path, (st) => from === 'end' && !isNew(path, st), k)
  }
  for (let i = 0; i < paths.length; i++) {
    if (i > 0 && i % LOOKS_PER_TURN === 0) await nextTurn()
    probes[i] = look(i, keep)
  }
  // Out of descriptors (a low ulimit -n, other files held): again, none kept.
  for (const [i, p] of probes.entries()) if (p === 'again') probes[i] = look(i)
  for (const [i, path] of paths.entries()) {
    const found = probes[i]
    if (!found) continue
    if (found === 'again') throw errors.outOfDescriptors(path)
    const { st, head, lineStart } = found
    const key = identityKey(st)
    const had = known.get(key)
    if (head === null) {
      // Cannot be opened now (a mode our user cannot read): recorded all the same, from 0 with
      // no fingerprint, so that it is read once it can be, wherever it was renamed to. Left out,
      // a run that never got to open it (its output full, then killed) left no trace of it, and
      // the next run took it for one seen before (born before the last start): the selftest
      // lost such generations (336-512 lines). A file we never had a chance to see under
      // --from end is the exception: where it starts cannot be read.
      if (!had && (from === 'start' || isNew(path, st))) {
        fresh.push(sourceRecord(st, path, '', 0))
        known.set(key, fresh[fresh.length - 1] as SourceState)
      }
      continue
    }
    if (had && sameFile(had, st, head)) {
      // Recorded empty (no fingerprint, nothing read) and holding bytes now: it resumes from 0
      // all the same, but with the first bytes seen now, so that the first read tells a
      // copytruncate made since this look (its first bytes change). An empty fingerprint agrees
      // with anything: a generation copied away and truncated between this look and the first
      // read was taken for the file's growth, and its copy, which nothing searched for, was
      // read only after the next generations (the soak on async: cpy.log.2, 374 lines).
      if (had.head === '' && had.offset === 0 && head.length > 0)
        fresh.push({ ...had, ...sourceIdentity(st), path, head: head.toString('base64') })
      continue // resumes as recorded
    }
    if (had) rewritten.add(path) // truncated (and written again) while we were down
    const offset = from === 'end' && !isNew(path, st) ? lineStart : 0
    if (had)
      note(
        `${path}: at start-up: not as recorded (${head.length} first bytes); from byte ${offset}`,
      )
    fresh.push(sourceRecord(st, path, head.toString('base64'), offset))
    known.set(key, fresh[fresh.length - 1] as SourceState)
  }
  if (previousStart !== null)
    fresh.push(
      ...(await unknownGenerations(paths, known, remembered, previousStart, rewritten, note)),
    )
  return fresh
}

/**
 * Files looked at between two turns of the event loop. The looks are synchronous: opening a
 * local file, its fstat and a 64-byte read take a few microseconds each, while a round trip
 * through libuv's pool costs the main thread 50-140 µs of CPU (promise, callback, Stats); 10,000
 * files took 485-810 ms of CPU through the pool and 160-180 ms this way (docs/performance.md,
 * "The follow path"). A turn every 256 files (a few milliseconds) keeps
 * signals and timers on time. A file system that hangs (a dead NFS mount) holds the loop here,
 * as it would have held every thread of the pool.
 */
const LOOKS_PER_TURN = 256

/** What prescan needs of a file: its stat, first bytes (null: cannot be opened) and line start. */
interface Probe {
  readonly st: Stats
  readonly head: Buffer | null
  /** Just after the last newline before its end, when `wantsLineStart` said so (else 0). */
  readonly lineStart: number
}

/**
 * Looks at the regular file at `path`; null when there is none, 'again' when the process is out
 * of descriptors (not a fault of the file: taking it for unreadable would record it without a
 * fingerprint). Opened first and stat'ed through the descriptor (the name cannot move on in
 * between); stat'ed by name only when it cannot be opened, to tell a file we may not read from
 * no file at all. O_NONBLOCK: a FIFO at an input name does not hold the open.
 */
function probe(
  path: string,
  wantsLineStart: (st: Stats) => boolean,
  keep: KeepOpen | undefined,
): Probe | null | 'again' {
  let fd: number
  try {
    fd = openSync(path, INPUT_OPEN_FLAGS)
  } catch (err) {
    if (isErrno(err, 'EMFILE', 'ENFILE')) return 'again'
    const st = statQuietly(path)
    return st?.isFile() ? { st, head: null, lineStart: 0 } : null
  }
  let kept = false
  try {
    const st = fstatSync(fd)
    if (!st.isFile()) return null
    const head = readHeadSync(fd)
    const lineStart = wantsLineStart(st) ? lineStartBeforeSync(fd, st.size) : 0
    if (keep && keep.files.size < keep.max && !keep.files.has(path)) {
      keep.files.set(path, { fd, stats: st, head })
      kept = true
    }
    return { st, head, lineStart }
  } finally {
    if (!kept) closeSync(fd)
  }
}

/**
 * Older generations of the input names that no state knows but that were born after the last
 * run started: created and rotated away while no checkpoint could record them (a crash loop,
 * a rotation while stopped). Every byte of them is unread. Needs the file system to record
 * birth times (ext4, xfs, btrfs do); elsewhere there is nothing to compare and none are found.
 * A directory that changed under the search (logrotate shifting a.log.1 to a.log.2 meanwhile)
 * is searched again, at most SEARCH_ATTEMPTS times, as the followers' searches are. Also older
 * files written since, when they are copies of a recorded source (see searchDir).
 */
async function unknownGenerations(
  names: readonly string[],
  known: Map<string, SourceState>,
  remembered: readonly SourceState[],
  since: number,
  rewritten: ReadonlySet<string>,
  note: (message: string) => void,
): Promise<SourceState[]> {
  const found: SourceState[] = []
  const byDir = new Map<string, Set<string>>()
  for (const name of names) {
    const family = byDir.get(dirname(name)) ?? new Set<string>()
    family.add(name)
    byDir.set(dirname(name), family)
  }
  for (const [dir, family] of byDir) {
    for (let attempt = 1; attempt <= SEARCH_ATTEMPTS; attempt++) {
      const stamp = directoryStamp(dir)
      const raced = await searchDir(dir, family, known, remembered, since, found, rewritten, note)
      if (!raced && !changedSince(dir, stamp)) break
    }
  }
  return found
}

/**
 * One search of `dir` for unknown generations (see unknownGenerations); true if a rename raced
 * it. The listing, the stats and the opens; what each file found is, startOfOlder decides.
 */
async function searchDir(
  dir: string,
  family: ReadonlySet<string>,
  known: Map<string, SourceState>,
  remembered: readonly SourceState[],
  since: number,
  found: SourceState[],
  rewritten: ReadonlySet<string>,
  note: (message: string) => void,
): Promise<boolean> {
  let raced = false
  for (const entry of await listDir(dir)) {
    const path = join(dir, entry)
    // One family lookup, not a comparison with each name (10,000 names in one directory).
    if (!family.has(rotationFamily(path)) || !isRotatedSibling(path, rotationFamily(path))) continue
    const named = await statPath(path).catch(() => null)
    if (!named?.isFile() || !(bornSince(named, since) || named.mtimeMs > since)) continue
    let fd: number | null = null
    try {
      fd = await openFd(path, INPUT_OPEN_FLAGS)
    } catch (err) {
      // Renamed away since the listing: the search is made again, and finds it where it went.
      if (isErrno(err, 'ENOENT')) {
        raced = true
        continue
      }
    }
    let st: Stats = named
    let head: Buffer = Buffer.alloc(0)
    if (fd !== null) {
      try {
        // As for the names: identity and first bytes from one descriptor, never a mix.
        st = await fstatFd(fd)
        head = await readHead(fd)
        // Its size after its first bytes: a copy being made grows between the two (the soak
        // saw 0 bytes and then 64 first bytes: fs.copyFileSync had emptied it, then written).
        if (st.isFile()) st = await fstatFd(fd)
      } finally {
        await closeFd(fd)
      }
      if (!sameIdentity(st, named)) raced = true // another file was renamed to this name
      if (!st.isFile() || !(bornSince(st, since) || st.mtimeMs > since)) continue
    } else if (!bornSince(st, since)) continue
    // One we cannot open (created with a mode our user cannot read, then rotated away) is
    // recorded all the same, from 0 with no fingerprint: the search beside its name finds it
    // by identity and reads it once its mode allows. Skipped, it was never read (the
    // selftest lost such a generation on bottom-up: 214 lines).
    const offset = startOfOlder(path, st, head, known, remembered, since, rewritten, note)
    if (offset === null) continue
    const source = sourceRecord(st, path, head.toString('base64'), offset)
    const at = found.findIndex((s) => sameIdentity(s, st))
    if (at >= 0) found[at] = source
    else found.push(source)
    known.set(identityKey(st), source)
  }
  return raced
}

/**
 * Where start-up reads an older file beside an input name that searchDir found (born or
 * written since the last start; `st` and `head` from one descriptor), or null to leave it
 * alone: the decisions of the search, apart from its I/O.
 */
function startOfOlder(
  path: string,
  st: Stats,
  head: Buffer,
  known: ReadonlyMap<string, SourceState>,
  remembered: readonly SourceState[],
  since: number,
  rewritten: ReadonlySet<string>,
  note: (message: string) => void,
): number | null {
  const had = known.get(identityKey(st))
  // Known and beginning as recorded: the followers resume it. Known by identity only (its
  // inode freed and reused by a file born since): another file, all of it unread.
  if (had && sameFile(had, st, head)) return null
  // A copytruncate copy made before we saw the truncation: it begins as the file we were
  // reading there did (the same first bytes), and that file's bytes up to our offset are
  // in the output already: read the copy from there, not again from its start.
  const original = copiedFrom(path, st, head, remembered)
  // Born before, written since: a copy written in place over an older file (fs.copyFileSync
  // and cp keep the inode of the copy there before), found as the copy it is, or not at all
  // (an old generation written to late is not a new one). Its birth time being old, it was
  // left out, and the rest of the generation copied while we were down lost (issue 16: the
  // in-place copy test with SIGKILLs, 117-2,245 lines).
  // Unless it is a file the state recorded that no longer begins as recorded: written over
  // since that checkpoint, with a copy of no recorded source, it holds a generation no
  // checkpoint saw (two copies written in place while we were down: the one between is
  // there now). All of it is unread (the mixed soak lost such a generation: 226 lines).
  // And unless the input it is a generation of was truncated while we were down: then a file
  // written since that begins as no recorded one is a copy written in place of a generation
  // no checkpoint saw (written, copied over the last copy and truncated while we were down:
  // the mixed soak lost such a generation on top-down, 150 lines). An old file written to
  // late beside an input that was not truncated is left alone.
  if (!original && !bornSince(st, since) && !had && !rewritten.has(rotationFamily(path)))
    return null
  // A copy shorter than the offset its original was read to, while that original was still
  // as recorded at its name: logrotate's copy made before our last reads through the name
  // (all of it read), or a copy still being written (fs.copyFileSync and cp empty their
  // target, then write it). The size cannot tell which: left to the followers, who see the
  // name's truncation and take this as its copy then (its rest read from our offset, or
  // nothing when it ends before it). Started at its size now, a copy being made was read
  // again from there (the mixed soak on top-down: 54 lines twice from a copy caught at 0
  // bytes). An original truncated while we were down had its copy made before: complete.
  if (original && st.size < original.offset && !rewritten.has(rotationFamily(path))) {
    note(
      `${path}: at start-up: a copy of ${original.path} shorter (${st.size} bytes) than its offset ${original.offset}; left to that file's truncation`,
    )
    return null
  }
  const offset = original ? Math.min(original.offset, st.size) : 0
  note(
    `${path}: at start-up: ${original ? `a copy of ${original.path}` : had ? 'not as recorded' : 'an unknown generation'} (${st.size} bytes, ${head.length} first bytes); from byte ${offset}`,
  )
  return offset
}

/**
 * The file `st` (first bytes `head`) is the one `recorded` describes: born at the same time
 * where both times are known (see anotherFile), and beginning as recorded.
 */
const sameFile = (recorded: SourceState, st: Stats, head: Buffer): boolean =>
  !anotherFile(identityOf(recorded), st) && headsAgree(Buffer.from(recorded.head, 'base64'), head)

/** Born after `since` (ms since epoch); false when the file system records no birth times. */
const bornSince = (st: Stats, since: number): boolean =>
  st.birthtimeMs !== 0 && st.birthtimeMs > since

/**
 * The source a checkpoint recorded in `path`'s rotation family whose (non-empty) first bytes
 * `head` begins with: `path` is a copy of it. The fingerprint is the only link between a copy
 * and its original, as when a copy is found while running (see finishFromCopy in
 * tail-async-search.ts).
 */
function copiedFrom(
  path: string,
  st: Stats,
  head: Buffer,
  remembered: readonly SourceState[],
): SourceState | undefined {
  if (head.length === 0) return undefined // nothing to compare: not known to be a copy
  return remembered.find(
    (s) =>
      s.head !== '' &&
      // Not the file's own inode: a file there now that is not the recorded one (see sameFile)
      // is a new file that reused it, no copy of the one deleted.
      !sameIdentity(s, st) &&
      isRotatedSibling(path, rotationFamily(s.path)) &&
      headsAgree(Buffer.from(s.head, 'base64'), head),
  )
}
