/**
 * Where each file present at start-up begins, decided before anything is read, so the first
 * checkpoint can record it before the first byte reaches the output. Without this, a process
 * killed before its first checkpoint would leave bytes in the output that no state accounts for
 * (read again from the start: duplicates; or, with --from end, skipped: lost).
 */
import type { Stats } from 'node:fs'
import { type FileHandle, open, readdir, stat } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { FINGERPRINT_BYTES, headsAgree, identityKey, sameIdentity } from '../tail/cursor.js'
import {
  changedSince,
  directoryStamp,
  INPUT_OPEN_FLAGS,
  SEARCH_ATTEMPTS,
} from '../tail/input-fs.js'
import { isRotatedSibling, rotationFamily } from '../tail/rotation.js'
import { lineStartBefore } from '../tail/start.js'
import type { SourceState } from './checkpoint.js'

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

export async function prescan(
  paths: readonly string[],
  remembered: readonly SourceState[],
  from: 'start' | 'end',
  previousStart: number | null,
): Promise<SourceState[]> {
  const known = new Map(remembered.map((s) => [identityKey(s), s]))
  const knownNames = new Set(remembered.map((s) => s.path))
  const fresh: SourceState[] = []
  for (const path of paths) {
    const named = await stat(path).catch(() => null)
    if (!named?.isFile()) continue
    const fh = await open(path, INPUT_OPEN_FLAGS).catch(() => null)
    if (!fh) {
      // Cannot be opened now (a mode our user cannot read): recorded all the same, from 0 with
      // no fingerprint, so that it is read once it can be, wherever it was renamed to. Left out,
      // a run that never got to open it (its output full, then killed) left no trace of it, and
      // the next run took it for one seen before (born before the last start): the selftest
      // lost such generations (336-512 lines). A file we never had a chance to see under
      // --from end is the exception: where it starts cannot be read.
      const key = identityKey(named)
      const isNew = knownNames.has(path) || bornSince(named, previousStart)
      if (!known.has(key) && (from === 'start' || isNew)) {
        const entry = { path, dev: named.dev, ino: named.ino, head: '', offset: 0 }
        fresh.push(entry)
        known.set(key, entry)
      }
      continue
    }
    try {
      // The identity of the file opened, not of the one stat'ed: a rotation in between (rename,
      // then the writer's next line in a new file) paired the old file's identity with the new
      // one's first bytes at offset 0. Such an entry replaced the old file's true one, was
      // never taken for the old file again, and its unread end was lost (issue 16: the threads
      // engine lost the end of k2.log.4 so).
      const st = await fh.stat()
      if (!st.isFile()) continue // swapped for a FIFO or a device since the stat
      const key = identityKey(st)
      const had = known.get(key)
      // A file at a name the last run followed, or born since the last run started, is new:
      // all of it is unread. Only a file we never had a chance to see starts at --from.
      const isNew = knownNames.has(path) || bornSince(st, previousStart)
      const head = await readHead(fh)
      if (had && headsAgree(Buffer.from(had.head, 'base64'), head)) continue // resumes as recorded
      const offset = from === 'end' && !isNew ? await lineStartBefore(fh, st.size) : 0
      const entry = { path, dev: st.dev, ino: st.ino, head: head.toString('base64'), offset }
      fresh.push(entry)
      known.set(key, entry)
    } finally {
      await fh.close()
    }
  }
  if (previousStart !== null)
    fresh.push(...(await unknownGenerations(paths, known, remembered, previousStart)))
  return fresh
}

const bornSince = (st: Stats, since: number | null): boolean =>
  since !== null && st.birthtimeMs > since

async function readHead(fh: FileHandle): Promise<Buffer> {
  const buf = Buffer.alloc(FINGERPRINT_BYTES)
  return buf.subarray(0, (await fh.read(buf, 0, FINGERPRINT_BYTES, 0)).bytesRead)
}

/**
 * Older generations of the input names that no state knows but that were born after the last
 * run started: created and rotated away while no checkpoint could record them (a crash loop,
 * a rotation while stopped). Every byte of them is unread. Needs the file system to record
 * birth times (ext4, xfs, btrfs do); elsewhere there is nothing to compare and none are found.
 * A directory that changed under the search (logrotate shifting a.log.1 to a.log.2 meanwhile)
 * is searched again, at most SEARCH_ATTEMPTS times, as the followers' searches are.
 */
async function unknownGenerations(
  names: readonly string[],
  known: Map<string, SourceState>,
  remembered: readonly SourceState[],
  since: number,
): Promise<SourceState[]> {
  const found: SourceState[] = []
  const byDir = new Map<string, string[]>()
  for (const name of names) byDir.set(dirname(name), [...(byDir.get(dirname(name)) ?? []), name])
  for (const [dir, family] of byDir) {
    for (let attempt = 1; attempt <= SEARCH_ATTEMPTS; attempt++) {
      const stamp = directoryStamp(dir)
      const raced = await searchDir(dir, family, known, remembered, since, found)
      if (!raced && !changedSince(dir, stamp)) break
    }
  }
  return found
}

/** One search of `dir` for unknown generations (see unknownGenerations); true if a rename raced it. */
async function searchDir(
  dir: string,
  family: readonly string[],
  known: Map<string, SourceState>,
  remembered: readonly SourceState[],
  since: number,
  found: SourceState[],
): Promise<boolean> {
  let raced = false
  for (const entry of await readdir(dir).catch(() => [] as string[])) {
    const path = join(dir, entry)
    if (!family.some((name) => isRotatedSibling(path, name))) continue
    const named = await stat(path).catch(() => null)
    if (!named?.isFile() || named.birthtimeMs === 0 || named.birthtimeMs <= since) continue
    const fh = await open(path, INPUT_OPEN_FLAGS).catch((err: NodeJS.ErrnoException) => err)
    if (fh instanceof Error) {
      // Renamed away since the listing: the search is made again, and finds it where it went.
      if (fh.code === 'ENOENT') {
        raced = true
        continue
      }
    }
    let st: Stats = named
    let head: Buffer = Buffer.alloc(0)
    if (!(fh instanceof Error)) {
      try {
        // As for the names: identity and first bytes from one descriptor, never a mix.
        st = await fh.stat()
        head = await readHead(fh)
      } finally {
        await fh.close()
      }
      if (!sameIdentity(st, named)) raced = true // another file was renamed to this name
      if (!st.isFile() || st.birthtimeMs <= since) continue
    }
    // One we cannot open (created with a mode our user cannot read, then rotated away) is
    // recorded all the same, from 0 with no fingerprint: the search beside its name finds it
    // by identity and reads it once its mode allows. Skipped, it was never read (the
    // selftest lost such a generation on bottom-up: 214 lines).
    const had = known.get(identityKey(st))
    // Known and beginning as recorded: the followers resume it. Known by identity only (its
    // inode freed and reused by a file born since): another file, all of it unread.
    if (had && headsAgree(Buffer.from(had.head, 'base64'), head)) continue
    // A copytruncate copy made before we saw the truncation: it begins as the file we were
    // reading there did (the same first bytes), and that file's bytes up to our offset are
    // in the output already: read the copy from there, not again from its start.
    const original = copiedFrom(path, head, remembered)
    const offset = original ? Math.min(original.offset, st.size) : 0
    const source = { path, dev: st.dev, ino: st.ino, head: head.toString('base64'), offset }
    const at = found.findIndex((s) => sameIdentity(s, st))
    if (at >= 0) found[at] = source
    else found.push(source)
    known.set(identityKey(st), source)
  }
  return raced
}

/**
 * The source a checkpoint recorded in `path`'s rotation family whose (non-empty) first bytes
 * `head` begins with: `path` is a copy of it. The fingerprint is the only link between a copy
 * and its original, as when a copy is found while running (see tail-async's #finishFromCopy).
 */
function copiedFrom(
  path: string,
  head: Buffer,
  remembered: readonly SourceState[],
): SourceState | undefined {
  if (head.length === 0) return undefined // nothing to compare: not known to be a copy
  return remembered.find(
    (s) =>
      s.head !== '' &&
      isRotatedSibling(path, rotationFamily(s.path)) &&
      headsAgree(Buffer.from(s.head, 'base64'), head),
  )
}
