/**
 * Test-side model of logs for the time-order tests: records with known times, written out by
 * the test's own formatter (Date.toISOString), blocks cut at line boundaries, and drivers that
 * feed a TimeOrder the way a reader would. Oracles are built from the known times, never from
 * the parser under test.
 */

import fc from 'fast-check'
import type { MergedRecord, TimeOrder } from '../../../src/order/time-order.js'

export const BASE_MS = Date.parse('2026-11-24T08:00:00.000Z')

/** A record as the test knows it: the time written in its leader, its continuation lines. */
export interface ModelRecord {
  readonly source: number
  readonly index: number
  readonly time: number
  readonly continuations: number
}

/** The text of a record: an ISO leader line and `\tat` lines, all naming source and index. */
export function recordText(r: ModelRecord): string {
  let text = `${new Date(r.time).toISOString()} INFO s${r.source} r${r.index}\n`
  for (let c = 0; c < r.continuations; c++) text += `\tat s${r.source}.r${r.index}.c${c}\n`
  return text
}

export const sourceText = (records: readonly ModelRecord[]): string =>
  records.map(recordText).join('')

/** Times as offsets from BASE_MS, small so that equal times (ties) are common. */
const offsetsArb = (maxLength: number) => fc.array(fc.integer({ min: 0, max: 40 }), { maxLength })

/** One source's records: sorted times when `sorted`, else in any order. */
export function sourceArb(
  source: number,
  sorted: boolean,
  maxLength = 12,
): fc.Arbitrary<ModelRecord[]> {
  return fc
    .tuple(offsetsArb(maxLength), fc.array(fc.nat({ max: 3 }), { minLength: maxLength }))
    .map(([offsets, conts]) => {
      const times = sorted ? [...offsets].sort((a, b) => a - b) : offsets
      return times.map((t, index) => ({
        source,
        index,
        time: BASE_MS + t,
        continuations: index % 3 === 0 ? 0 : (conts[index] ?? 0),
      }))
    })
}

export function sourcesArb(sorted: boolean, maxSources = 5): fc.Arbitrary<ModelRecord[][]> {
  return fc
    .integer({ min: 1, max: maxSources })
    .chain((k) => fc.tuple(...Array.from({ length: k }, (_, s) => sourceArb(s, sorted))))
}

/** Splits text into blocks of whole lines at the line ends the cuts pick. */
export function blocksOf(text: string, cuts: readonly number[]): Buffer[] {
  const buf = Buffer.from(text)
  const ends: number[] = []
  for (let i = 0; i < buf.length; i++) if (buf[i] === 0x0a) ends.push(i + 1)
  const chosen = new Set(cuts.map((c) => ends[c % Math.max(1, ends.length)] ?? buf.length))
  chosen.add(buf.length)
  const blocks: Buffer[] = []
  let prev = 0
  for (const end of [...chosen].sort((a, b) => a - b)) {
    if (end > prev) blocks.push(buf.subarray(prev, end))
    prev = end
  }
  return blocks
}

/** The records' text in the order of `records`, as one string. */
export const joined = (records: readonly ModelRecord[]): string => records.map(recordText).join('')

/** Bytes written, in order. */
export const outputText = (out: readonly MergedRecord<number>[]): string =>
  out.map((r) => r.block.toString('utf8', r.start, r.end)).join('')

/**
 * The k-way merge of the sources' heads done the slow, obvious way: repeatedly take the
 * source whose next record has the smallest time, the lowest source number on a tie.
 */
export function naiveHeadMerge(sources: readonly ModelRecord[][]): ModelRecord[] {
  const next = sources.map(() => 0)
  const out: ModelRecord[] = []
  for (;;) {
    let best = -1
    for (let s = 0; s < sources.length; s++) {
      const r = sources[s]?.[next[s] ?? 0]
      if (r === undefined) continue
      const b = best < 0 ? undefined : sources[best]?.[next[best] ?? 0]
      if (b === undefined || r.time < b.time) best = s
    }
    if (best < 0) return out
    out.push(sources[best]?.[next[best] ?? 0] as ModelRecord)
    next[best] = (next[best] ?? 0) + 1
  }
}

/**
 * Feeds a --once TimeOrder like a reader would: each step reads the next block of a source
 * the schedule picks among those that have more, are not full and (as a lazy reader would)
 * are needed; a source is ended right after its last block. Returns everything written.
 */
export function driveOnce(
  order: TimeOrder<number>,
  blocks: readonly Buffer[][],
  schedule: readonly number[],
): MergedRecord<number>[] {
  const out: MergedRecord<number>[] = []
  driveOnceWith(order, blocks, schedule, () => {
    out.push(...order.release(0))
  })
  return out
}

/** A run handed to a RunSink, as text. */
export interface Run {
  readonly key: number
  readonly text: string
  readonly endOffset: number
}

/**
 * driveOnce through releaseRuns (the fast path), with the runs' text. With `limitBytes`, each
 * release is made in steps of that many bytes, as a caller with bounded output room does: it
 * calls again while a step handed out at least the limit.
 */
export function driveOnceRuns(
  order: TimeOrder<number>,
  blocks: readonly Buffer[][],
  schedule: readonly number[],
  limitBytes = Number.POSITIVE_INFINITY,
): Run[] {
  const out: Run[] = []
  driveOnceWith(order, blocks, schedule, () => {
    for (;;) {
      let bytes = 0
      order.releaseRuns(
        0,
        (key, block, start, end, endOffset) => {
          bytes += end - start
          out.push({ key, text: block.toString('utf8', start, end), endOffset })
        },
        limitBytes,
      )
      if (bytes < limitBytes) return
    }
  })
  return out
}

/** driveOnce through release() in steps of `limitBytes` (see driveOnceRuns). */
export function driveOnceLimited(
  order: TimeOrder<number>,
  blocks: readonly Buffer[][],
  schedule: readonly number[],
  limitBytes: number,
): MergedRecord<number>[] {
  const out: MergedRecord<number>[] = []
  driveOnceWith(order, blocks, schedule, () => {
    for (;;) {
      const step = order.release(0, limitBytes)
      out.push(...step)
      if (step.reduce((n, r) => n + r.end - r.start, 0) < limitBytes) return
    }
  })
  return out
}

function driveOnceWith(
  order: TimeOrder<number>,
  blocks: readonly Buffer[][],
  schedule: readonly number[],
  release: () => void,
): void {
  const next = blocks.map(() => 0)
  blocks.forEach((_, s) => {
    order.open(s)
  })
  const finish = (s: number) => {
    if ((next[s] ?? 0) >= (blocks[s]?.length ?? 0)) order.end(s)
  }
  blocks.forEach((_, s) => {
    finish(s)
  })
  let step = 0
  for (;;) {
    const readable = blocks
      .map((_, s) => s)
      .filter((s) => order.has(s) && (next[s] ?? 0) < (blocks[s]?.length ?? 0) && !order.isFull(s))
    if (readable.length === 0) break
    const s = readable[
      (schedule[step++ % Math.max(1, schedule.length)] ?? 0) % readable.length
    ] as number
    order.push(s, blocks[s]?.[next[s] ?? 0] as Buffer, 0)
    next[s] = (next[s] ?? 0) + 1
    finish(s)
    release()
  }
  release()
  // Every source was read to its end and drained: the merge never stalled a reader.
  if (blocks.some((_, s) => order.has(s))) throw new Error('driveOnce: a source was left held')
}
