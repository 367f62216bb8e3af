/**
 * The centre's rule for each message: what of it to write, so that every host's line is in the
 * output once. Pure logic: the centre feeds messages in stream order and writes what comes out.
 *
 * - Offsets: for each (host, generation) the centre knows the file offset up to which its bytes
 *   are written (`applied`). A segment entirely below it is a replay (the host restarted from
 *   its checkpoint, or sent a message again): skipped. One that straddles it is trimmed. One
 *   beyond it is written (a gap cannot come from a host; it is said at info level).
 * - Order: a host numbers its messages per run. A message whose number is past the next one
 *   expected came before an earlier one that failed (a stream leader changed in between): it
 *   is skipped, because the host sends everything from the failed message on again, in order.
 *   Numbers below the next expected are replays, handled by the offsets. A message of an older
 *   run (sent before a restart, stored late) is handled by the offsets alone; a newer run is
 *   taken from its first message.
 * - A centre that starts without a state adopts what it finds: each host from its first
 *   message there, each generation from its first segment there (earlier ones were purged).
 */
import { type BatchMeta, positionOf, type Segment } from './frame.js'

export interface HostState {
  /** The host's latest run, and the number of the next message expected from it. */
  run: string
  next: number
  /** The last message applied from it: stream sequence and time (ms). */
  lastSeq: number
  lastTime: number
  /** Lines written from it, over every run of the centre. */
  lines: number
}

export interface GenState {
  readonly host: string
  readonly id: string
  /** File offset up to which its bytes are handed to the writer. */
  applied: number
  /** Where it stood when loaded or first seen: what a checkpoint records until a write lands. */
  readonly base: number
  path: string
  label: string
  ended: boolean
  /** Stream sequence of the last message that carried it, and that message's time (ms). */
  lastSeq: number
  lastTime: number
}

/** What to do with a part of a message. */
export type Action =
  | {
      readonly kind: 'write'
      readonly key: string
      readonly gen: GenState
      readonly bytes: Buffer
      /** Positions in `bytes` of newlines that are not in the file. */
      readonly inserted: readonly number[]
      /** File offsets [start, end) of the bytes. */
      readonly start: number
      readonly end: number
      readonly lines: number
    }
  | { readonly kind: 'end'; readonly key: string; readonly gen: GenState }

export type Verdict =
  | { readonly kind: 'apply'; readonly actions: readonly Action[] }
  /** Skipped: a later message than the next expected (see the module comment). */
  | { readonly kind: 'early'; readonly expected: number }

export const genKey = (host: string, id: string): string => `${host}/${id}`

const NEWLINE = 0x0a

export class Applier {
  readonly hosts: Map<string, HostState>
  readonly gens: Map<string, GenState>
  /** No state: take each host and generation from where the stream first shows it. */
  #adopting: boolean
  /** Gaps said so far (once per generation). */
  readonly #gapSaid = new Set<string>()
  readonly #onGap: (gen: GenState, from: number, to: number) => void

  /**
   * `adopting`: the centre started without a state (or a checkpoint was saved before that
   * start's replay was over): see the module comment. Default: when there is no state.
   */
  constructor(
    saved: { hosts: Map<string, HostState>; gens: Map<string, GenState> } | null,
    onGap: (gen: GenState, from: number, to: number) => void = () => {},
    adopting = saved === null,
  ) {
    this.hosts = saved?.hosts ?? new Map()
    this.gens = saved?.gens ?? new Map()
    this.#adopting = adopting
    this.#onGap = onGap
  }

  /** The start-up replay of a centre without state is over: from now on, nothing is adopted. */
  stopAdopting(): void {
    this.#adopting = false
  }

  take(seq: number, time: number, meta: BatchMeta, data: Buffer): Verdict {
    const host = this.#hostFor(meta)
    if (host === null) {
      return { kind: 'early', expected: this.hosts.get(meta.h)?.next ?? 0 }
    }
    const actions: Action[] = []
    let at = 0
    for (const seg of meta.s) {
      const bytes = data.subarray(at, at + seg.n)
      at += seg.n
      const info = meta.g[seg.g]
      const key = genKey(meta.h, seg.g)
      let gen = this.gens.get(key)
      if (!gen) {
        const applied = this.#adopting ? seg.s : (info?.o ?? seg.s)
        gen = {
          host: meta.h,
          id: seg.g,
          applied,
          base: applied,
          path: info?.p ?? '?',
          label: info?.l ?? '?',
          ended: false,
          lastSeq: seq,
          lastTime: time,
        }
        this.gens.set(key, gen)
      }
      gen.lastSeq = seq
      gen.lastTime = time
      if (info) {
        gen.path = info.p
        gen.label = info.l
      }
      if (seg.x) {
        if (!gen.ended) actions.push({ kind: 'end', key, gen })
        gen.ended = true
        continue
      }
      const write = this.#segment(key, gen, seg, bytes)
      if (write) {
        host.lines += write.lines
        actions.push(write)
      }
    }
    host.lastSeq = seq
    host.lastTime = time
    return { kind: 'apply', actions }
  }

  /** The host of the message if it is to be applied; null when it came too early. */
  #hostFor(meta: BatchMeta): HostState | null {
    const known = this.hosts.get(meta.h)
    if (!known) {
      if (!this.#adopting && meta.c !== 0) return null
      const h = { run: meta.r, next: meta.c + 1, lastSeq: 0, lastTime: 0, lines: 0 }
      this.hosts.set(meta.h, h)
      return h
    }
    if (meta.r === known.run) {
      if (meta.c > known.next) return null
      if (meta.c === known.next) known.next++
      return known
    }
    if (newerRun(meta.r, known.run)) {
      if (meta.c !== 0 && !this.#adopting) return null
      known.run = meta.r
      known.next = meta.c + 1
    }
    return known
  }

  #segment(
    key: string,
    gen: GenState,
    seg: Segment,
    bytes: Buffer,
  ): Extract<Action, { kind: 'write' }> | null {
    if (seg.e <= gen.applied) return null
    let from = 0
    let start = seg.s
    if (seg.s > gen.applied) {
      if (!this.#gapSaid.has(key)) {
        this.#gapSaid.add(key)
        this.#onGap(gen, gen.applied, seg.s)
      }
    } else if (seg.s < gen.applied) {
      from = positionOf(seg.s, seg.i, gen.applied)
      start = gen.applied
    }
    gen.applied = seg.e
    const out = from === 0 ? bytes : bytes.subarray(from)
    const inserted = (seg.i ?? []).filter((p) => p >= from).map((p) => p - from)
    if (out.length === 0) return null
    return {
      kind: 'write',
      key,
      gen,
      bytes: out,
      inserted,
      start,
      end: seg.e,
      lines: countNewlines(out),
    }
  }
}

/** Run ids start with the run's start time in base 36 (same length until 2059): later sorts later. */
export function newerRun(a: string, b: string): boolean {
  const ta = a.slice(0, 8)
  const tb = b.slice(0, 8)
  return ta === tb ? a > b : ta > tb
}

function countNewlines(b: Buffer): number {
  let n = 0
  for (let at = b.indexOf(NEWLINE); at !== -1; at = b.indexOf(NEWLINE, at + 1)) n++
  return n
}
