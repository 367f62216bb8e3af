/**
 * A followed file as the file table and the two shells share it (Tracked: its cursor, handle,
 * names and state), and the small records they pass about one: what a shell knows of a file it
 * opened or found, what a checkpoint recorded of one, where one stands for the writer (markOf),
 * and what a reader's table holds for metrics. Data and one-line readings of it, no rules.
 */
import type { SourceMark } from '../sink/sink.js'
import type { Cursor, CursorCounts, Identity } from './cursor.js'
import { identityKey } from './cursor.js'
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
  /**
   * Its record in the last checkpoint (FileIndex.checkpoint), given again while nothing in it
   * changed: the checkpoint of 10,000 quiet files then makes no new objects for them, and the
   * state file's line of each is kept with its record (src/state/checkpoint.ts).
   */
  saved: SourceState | null
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
