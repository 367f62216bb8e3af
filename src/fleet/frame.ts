/**
 * One stream message: a batch of whole lines from one host, packed so that replicas 3 moves
 * hundreds of thousands of lines a second (one message per line would be bound by the
 * servers' round trips). Pure encoding and decoding, no I/O.
 *
 * Layout: "LMF1", a 32-bit big-endian length, that many bytes of JSON (BatchMeta), then the
 * lines, segment after segment, bytes untouched. A segment is a run of whole lines of one file
 * generation with the byte range [start, end) they hold in that file; `inserted` lists the
 * newlines that are not in the file (pieces of a split line, a partial line finished at a
 * truncation), so the centre can map any line boundary back to a file offset.
 */

const MAGIC = Buffer.from('LMF1', 'latin1')
const HEADER_BYTES = 8
const NEWLINE = 0x0a

export const FRAME_VERSION = 1

/**
 * Messages a host has sent and not had acknowledged, at most (sender.ts): it sends its number
 * n only once every number up to n - WINDOW is acknowledged, so a centre that meets number n of
 * a run still waiting for a number n - WINDOW or below knows that one was stored and is gone
 * (applier.ts).
 */
export const WINDOW = 32

export interface Segment {
  /** Generation id (see generations.ts). */
  readonly g: string
  /** File offsets of the bytes: [s, e). */
  readonly s: number
  readonly e: number
  /** Bytes of the segment in the data (e - s plus the inserted newlines). */
  readonly n: number
  /** Positions, in the segment's bytes, of newlines that are not in the file. */
  readonly i?: readonly number[]
  /** The generation has ended (its file was let go): no more bytes will come (n = 0). */
  readonly x?: 1
}

/** What the centre needs to know of a generation to label it. */
export interface GenerationInfo {
  /** The path on the host. */
  readonly p: string
  /** Its label on the host (--label, or the file name). */
  readonly l: string
  /** Where the generation starts: the centre takes bytes before it as never to come. */
  readonly o: number
}

export interface BatchMeta {
  readonly v: typeof FRAME_VERSION
  /** Host id. */
  readonly h: string
  /** The host run (a new one at every start): counters are per run. */
  readonly r: string
  /** This message's number in its run, from 0: the centre sees a gap when one is missing. */
  readonly c: number
  readonly g: Readonly<Record<string, GenerationInfo>>
  readonly s: readonly Segment[]
}

export function encodeBatch(meta: BatchMeta, data: readonly Buffer[], dataBytes: number): Buffer {
  const json = Buffer.from(JSON.stringify(meta), 'utf8')
  const header = Buffer.allocUnsafe(HEADER_BYTES)
  MAGIC.copy(header, 0)
  header.writeUInt32BE(json.length, 4)
  return Buffer.concat([header, json, ...data], HEADER_BYTES + json.length + dataBytes)
}

/** Bytes a message needs besides its lines (an estimate of the JSON, for batching). */
export function metaBytes(segments: number, generations: number, text: number): number {
  return HEADER_BYTES + 128 + segments * 96 + generations * 64 + text
}

export interface Decoded {
  readonly meta: BatchMeta
  /** The lines of all segments, in order. */
  readonly data: Buffer
}

/** Decodes a message; throws with the reason when it is not one of ours. */
export function decodeBatch(payload: Uint8Array): Decoded {
  const buf = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength)
  if (buf.length < HEADER_BYTES || buf.compare(MAGIC, 0, 4, 0, 4) !== 0) {
    throw new Error('not a logmerge message (no LMF1 header)')
  }
  const length = buf.readUInt32BE(4)
  if (HEADER_BYTES + length > buf.length) throw new Error('truncated message header')
  let meta: BatchMeta
  try {
    meta = JSON.parse(buf.toString('utf8', HEADER_BYTES, HEADER_BYTES + length)) as BatchMeta
  } catch {
    throw new Error('unreadable message header (bad JSON)')
  }
  const data = buf.subarray(HEADER_BYTES + length)
  checkMeta(meta, data.length)
  return { meta, data }
}

const isCount = (v: unknown): v is number =>
  typeof v === 'number' && Number.isSafeInteger(v) && v >= 0

function checkMeta(meta: BatchMeta, dataBytes: number): void {
  if (typeof meta !== 'object' || meta === null) throw new Error('bad message header')
  if (meta.v !== FRAME_VERSION) {
    throw new Error(`message format ${String(meta.v)} (this logmerge reads ${FRAME_VERSION})`)
  }
  if (typeof meta.h !== 'string' || typeof meta.r !== 'string' || !isCount(meta.c)) {
    throw new Error('message header without host, run or counter')
  }
  if (typeof meta.g !== 'object' || meta.g === null || !Array.isArray(meta.s)) {
    throw new Error('message header without generations or segments')
  }
  let total = 0
  for (const s of meta.s) {
    if (typeof s.g !== 'string' || !(s.g in meta.g) || !isCount(s.s) || !isCount(s.e)) {
      throw new Error('bad segment in message header')
    }
    if (!isCount(s.n) || s.e < s.s || s.n !== s.e - s.s + (s.i?.length ?? 0)) {
      throw new Error('segment length does not match its range')
    }
    total += s.n
  }
  if (total !== dataBytes) throw new Error('segment lengths do not add up to the data')
}

/**
 * The file offset of position `at` of a segment's bytes (a line boundary): the bytes before it
 * less the newlines before it that are not in the file.
 */
export function fileOffsetAt(start: number, inserted: readonly number[] | undefined, at: number) {
  let added = 0
  if (inserted) for (const p of inserted) if (p < at) added++
  return start + at - added
}

/**
 * The position in a segment's bytes where file offset `offset` begins (for trimming what is
 * already written). `offset` lies in [start, end]; the result is the first byte at or after it.
 */
export function positionOf(
  start: number,
  inserted: readonly number[] | undefined,
  offset: number,
): number {
  let at = offset - start
  if (inserted) {
    for (const p of inserted) {
      if (p < at) at++
      else break
    }
  }
  return at
}

/**
 * Splits the lines of `block` longer than `max` bytes (newline included) into pieces of `max`
 * bytes each ending in a newline, as the readers split at --max-line-bytes (the same cut points
 * whatever the batching). `inserted` (the reader's added newlines) is carried over. Returns the
 * block unchanged when no line is too long.
 */
export function splitLongLines(
  block: Buffer,
  inserted: readonly number[],
  max: number,
): { block: Buffer; inserted: readonly number[] } {
  if (block.length <= max) return { block, inserted }
  const room = max - 1
  const parts: Buffer[] = []
  const added: number[] = []
  let start = 0
  let copiedTo = 0
  let shift = 0 // newlines added before the current position
  let next = 0 // index into `inserted`
  let out = 0 // bytes output so far
  const carry = (upTo: number) => {
    while (next < inserted.length && (inserted[next] as number) < upTo) {
      added.push((inserted[next] as number) + shift)
      next++
    }
  }
  while (start < block.length) {
    // Lines that fit are skipped a room's worth at a time: every line that ends at or before
    // the last newline within `room` bytes of `start` is at most `room` long. Only a line
    // with no newline in that span is looked at (one indexOf per line made this 4 % of a
    // host's CPU, the blocks being whole reads of up to megabytes of short lines).
    const fits = block.lastIndexOf(NEWLINE, Math.min(start + room, block.length - 1))
    if (fits >= start) {
      start = fits + 1
      continue
    }
    let end = block.indexOf(NEWLINE, start)
    if (end < 0) end = block.length - 1
    if (end - start > room) {
      carry(start)
      parts.push(block.subarray(copiedTo, start))
      out += start - copiedTo
      let at = start
      while (end - at > room) {
        parts.push(block.subarray(at, at + room), NL)
        out += room
        carry(at + room)
        added.push(out)
        out += 1
        shift++
        at += room
      }
      copiedTo = at
    }
    start = end + 1
  }
  if (copiedTo === 0) return { block, inserted }
  parts.push(block.subarray(copiedTo))
  carry(block.length)
  added.sort((a, b) => a - b)
  return { block: Buffer.concat(parts), inserted: added }
}

const NL = Buffer.from([NEWLINE])
