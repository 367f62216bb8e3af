/**
 * What keeps a checkpoint of many idle sources cheap: a source whose record did not change since
 * the last checkpoint is the same record object, and keeps the line of the state file it had.
 * A checkpoint of 10,000 sources took 120-150 ms of the main thread (base64 of every
 * fingerprint, twice, a few objects and the JSON of every record) whenever one line had moved
 * one offset, as often as every 1.35 s (CHECKPOINT_TIME_SHARE): a tenth of a core for a host
 * with a trickle of lines among many files.
 *
 * Records are never changed in place (a change is a new record), so a record object's line is
 * kept with it (a WeakMap: it goes when the record does).
 */
import type { Snapshot, SourceStats } from '../sink/sink.js'
import { identityKey } from '../tail/cursor.js'
import { base64Of, type SourceState } from '../tail/source-state.js'

const lines = new WeakMap<SourceState, string>()

/** One source's line in the state file (encoded once per record object). */
export function sourceLine(s: SourceState): string {
  let line = lines.get(s)
  if (line === undefined) {
    line = JSON.stringify(s)
    lines.set(s, line)
  }
  return line
}

/**
 * A reader's record with what the writer knows of the source at the snapshot's offset: its
 * fingerprint (Snapshot.heads) and its stats. The same object as last time while neither changed
 * (compared by value: the thread engines' snapshot makes new ones each time).
 */
export class SavedRecords {
  readonly #last = new WeakMap<
    SourceState,
    { key: string; head?: Uint8Array; stats?: SourceStats; record: SourceState }
  >()

  of(s: SourceState, snap: Pick<Snapshot, 'heads' | 'stats'>): SourceState {
    const last = this.#last.get(s)
    const key = last?.key ?? identityKey(s)
    const head = snap.heads?.get(key)
    const stats = snap.stats.get(key)
    if (last && sameBytes(last.head, head) && sameStats(last.stats, stats)) return last.record
    // The fingerprint that goes with the offset, where the writer keeps it (SourceMark.head).
    const withHead = head ? { ...s, head: base64Of(head) } : s
    const record = stats ? { ...withHead, stats } : withHead
    this.#last.set(s, { key, ...(head && { head }), ...(stats && { stats }), record })
    return record
  }
}

/**
 * The thread engines' record of a source at `offset` (sourcesAt): the same object while the
 * thread's description and the offset are the same.
 */
export class RecordsAt {
  readonly #last = new WeakMap<SourceState, SourceState>()

  at(known: SourceState, offset: number): SourceState {
    const last = this.#last.get(known)
    if (last && last.offset === offset) return last
    const record = { ...known, offset }
    this.#last.set(known, record)
    return record
  }
}

function sameBytes(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (a === b) return true
  if (!a || !b || a.length !== b.length) return false
  return Buffer.from(a.buffer, a.byteOffset, a.length).equals(b)
}

function sameStats(a: SourceStats | undefined, b: SourceStats | undefined): boolean {
  return a === b || (a !== undefined && b !== undefined && sameRecord(a, b))
}

/** The same fields with the same values (nested records compared the same way). */
export function sameRecord(a: object, b: object): boolean {
  if (a === b) return true
  const keys = Object.keys(a)
  if (keys.length !== Object.keys(b).length) return false
  for (const k of keys) {
    const x = (a as Record<string, unknown>)[k]
    const y = (b as Record<string, unknown>)[k]
    if (x === y) continue
    if (typeof x !== 'object' || typeof y !== 'object' || x === null || y === null) return false
    if (!sameRecord(x, y)) return false
  }
  return true
}
