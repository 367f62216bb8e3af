/**
 * Where one source stands: the record the readers report for a checkpoint
 * (FileTable.checkpoint), the state file keeps (state/checkpoint.ts), and a restart resumes
 * from (state/recover.ts, tail/prescan.ts). Defined with the readers, which make it, so that
 * state/ builds on tail/ and not the other way round.
 */
import type { SourceStats } from '../sink/sink.js'
import type { Identity } from './cursor.js'

export interface SourceState extends Identity {
  /** The name it was last seen under. */
  readonly path: string
  /** Its first bytes (base64), to tell it from a new file that reuses the inode. */
  readonly head: string
  /**
   * Its birth time (ms since the epoch; absent when the file system records none, and in state
   * files from before it was kept): a file found at its inode born at another time is another
   * file (see anotherFile in cursor.ts).
   */
  readonly born?: number
  /** Every byte before this offset is in the output; the rest is read again. */
  readonly offset: number
  /** How it was doing at the checkpoint (for `logmerge status`; not used to resume). */
  readonly stats?: SourceStats
}

/** The identity a source record describes (its `born` as the birth time): sourceIdentity's inverse. */
export const identityOf = (s: SourceState): Identity => ({
  dev: s.dev,
  ino: s.ino,
  ...(s.born !== undefined && { birthtimeMs: s.born }),
})

/** The identity fields of a source record: device, inode and, when known, the birth time. */
export const sourceIdentity = (
  id: Identity,
): { readonly dev: number; readonly ino: number; readonly born?: number } => ({
  dev: id.dev,
  ino: id.ino,
  ...(id.birthtimeMs ? { born: id.birthtimeMs } : {}),
})

/**
 * A source's record: sourceIdentity's fields, then the name, fingerprint and offset. Built as
 * literals: a spread of sourceIdentity's conditional spread took V8's slow way, and a
 * checkpoint of 10,000 files makes one for each that changed.
 */
export function sourceRecord(
  id: Identity,
  path: string,
  head: string,
  offset: number,
): SourceState {
  const { dev, ino, birthtimeMs: born } = id
  return born ? { dev, ino, born, path, head, offset } : { dev, ino, path, head, offset }
}

/** Base64 of the fingerprints seen (a file's fingerprint is replaced, never changed in place). */
const base64s = new WeakMap<Uint8Array, string>()

/** `bytes` in base64, computed once per fingerprint object. */
export function base64Of(bytes: Uint8Array): string {
  let text = base64s.get(bytes)
  if (text === undefined) {
    text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64')
    base64s.set(bytes, text)
  }
  return text
}

/**
 * Where a record that is given again while unchanged (FileIndex.checkpoint's, Tracked.saved)
 * keeps its line of the state file (src/state/checkpoint.ts): set up not enumerable, so neither
 * JSON nor a comparison sees it.
 */
export const KEEPS_LINE = Symbol('keeps its state-file line')

/** `record`, set up to keep its line of the state file (see KEEPS_LINE). */
export function keepsItsLine<T extends SourceState>(record: T): T {
  Object.defineProperty(record, KEEPS_LINE, { value: undefined, writable: true })
  return record
}
