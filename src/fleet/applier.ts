/**
 * The centre's rule for each message: what of it to write, so that every host's line is in the
 * output once. Pure logic: the centre feeds messages in stream order and writes what comes out.
 *
 * - Offsets: for each (host, generation) the centre knows the file offset up to which its bytes
 *   are written (`applied`). A segment entirely below it is a replay (the host restarted from
 *   its checkpoint, or sent a message again): skipped. One that straddles it is trimmed.
 * - Gaps: a segment (or an end marker) beyond `applied` means bytes the host published never
 *   reached the output. A host never skips bytes of a generation, so when the centre has
 *   followed the generation from its start (it knows it, or it has taken the host from a run
 *   no later than the generation's) the bytes were lost on the way: an acknowledged message the
 *   stream does not hold, or later messages of a run skipped as early (below) whose missing one
 *   never came. That is verdict `lost`, with nothing of the message taken (the centre stops
 *   with exit 9, or with --nats-skip-lost says it at error level and writes on: `skipLost`).
 *   Only a generation begun before the centre knew its host (a centre started without state
 *   on a stream purged before), or one whose run began half FORGET_ENDED_MS or more ago (it
 *   may have ended and been forgotten: a restarted host ends it again, at its end), may show a
 *   gap that loses nothing of this output: said at info level.
 * - Order: a host numbers its messages per run. A message whose number is past the next one
 *   expected came before an earlier one that failed (a stream leader changed in between): it
 *   is skipped, because the host sends everything from the failed message on again, in order.
 *   But a host sends number n only once every number up to n - WINDOW is acknowledged
 *   (sender.ts): number n of the run the centre follows while it still waits for n - WINDOW
 *   or an earlier one means that one was stored and is not in the stream any more (a server
 *   lost it). That is verdict `missing` (exit 9), or with `skipLost` the wait is given up, said
 *   at error level, and the gaps it leaves are said as losses (above). Before this rule the
 *   centre skipped every later message of that run as early, without a word, until a newer
 *   run showed the gap.
 *   Numbers below the next expected are replays, handled by the offsets. A message of an older
 *   run (sent before a restart, stored late) is handled by the offsets alone, and skipped if it
 *   would leave a gap (the newer run sends those bytes again); a newer run is taken from its
 *   first message.
 * - A centre that starts without a state adopts what it finds: each host from its first
 *   message there, each generation from its first segment there (earlier ones were purged).
 */
import { type BatchMeta, type GenerationInfo, positionOf, type Segment, WINDOW } from './frame.js'

export interface HostState {
  /** The host's latest run, and the number of the next message expected from it. */
  run: string
  next: number
  /** The last message applied from it: stream sequence and time (ms). */
  lastSeq: number
  lastTime: number
  /** Lines written from it, over every run of the centre. */
  lines: number
  /**
   * The first run of it taken from its message 0 (not adopted): every generation of this run or
   * a later one has come through the stream whole, so a gap in one is a loss (see Gaps).
   */
  from?: string
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
  /** Skipped: a late message of an older run that would leave a gap (see take). */
  | { readonly kind: 'stale' }
  /** Bytes of a generation the centre followed from its start never came (see Gaps). */
  | { readonly kind: 'lost'; readonly gap: Gap }
  /** Messages of the run the centre follows that cannot come any more (see Order). */
  | { readonly kind: 'missing'; readonly missing: Missing }

/** Number `expected` of a host's run never came, though number `got` did (see Order). */
export interface Missing {
  readonly host: string
  readonly run: string
  readonly expected: number
  readonly got: number
  /** The run's messages skipped as early while waiting (stream messages), if any. */
  readonly early: Early | null
}

export interface Gap {
  readonly host: string
  readonly id: string
  readonly path: string
  /** File offsets [from, to) that never came. */
  readonly from: number
  readonly to: number
  /** The host's messages skipped as early since the last one it took, if any (the likely cause). */
  readonly early: Early | null
}

/** Messages of a host run skipped as early while waiting for number `expected`. */
export interface Early {
  readonly run: string
  readonly expected: number
  readonly count: number
  readonly firstSeq: number
  readonly lastSeq: number
}

export const genKey = (host: string, id: string): string => `${host}/${id}`

/**
 * A generation ended this long ago leaves the centre's state (centre-checkpoint.ts): its host
 * sends no more bytes of it, only, after a restart, its end again.
 */
export const FORGET_ENDED_MS = 3600_000

const NEWLINE = 0x0a

export class Applier {
  readonly hosts: Map<string, HostState>
  readonly gens: Map<string, GenState>
  /** No state: take each host and generation from where the stream first shows it. */
  #adopting: boolean
  /** Gaps said so far (once per generation). */
  readonly #gapSaid = new Set<string>()
  readonly #onGap: (gap: Gap, lost: boolean) => void
  readonly #onMissing: (missing: Missing) => void
  readonly #skipLost: boolean
  readonly #now: () => number
  /** Per host: its messages skipped as early since it last had one taken. */
  readonly #early = new Map<string, Early>()

  /**
   * `adopting`: the centre started without a state (or a checkpoint was saved before that
   * start's replay was over): see the module comment. Default: when there is no state.
   * `onGap`: a gap written past (once per generation); `lost` when it is a loss, said only with
   * `skipLost` (without it a loss is verdict `lost` instead). `onMissing`: with `skipLost`,
   * a message number given up (without it, verdict `missing`).
   */
  constructor(
    saved: { hosts: Map<string, HostState>; gens: Map<string, GenState> } | null,
    onGap: (gap: Gap, lost: boolean) => void = () => {},
    adopting = saved === null,
    skipLost = false,
    now: () => number = Date.now,
    onMissing: (missing: Missing) => void = () => {},
  ) {
    this.hosts = saved?.hosts ?? new Map()
    this.gens = saved?.gens ?? new Map()
    this.#adopting = adopting
    this.#onGap = onGap
    this.#skipLost = skipLost
    this.#now = now
    this.#onMissing = onMissing
  }

  /** The start-up replay of a centre without state is over: from now on, nothing is adopted. */
  stopAdopting(): void {
    this.#adopting = false
  }

  take(seq: number, time: number, meta: BatchMeta, data: Buffer): Verdict {
    const known = this.hosts.get(meta.h)
    const missing = this.#missingBefore(meta)
    if (missing !== null && known) {
      if (!this.#skipLost) return { kind: 'missing', missing }
      this.#onMissing(missing)
      known.next = meta.c // taken below as the next expected; the gaps it leaves are losses
    }
    const before = known ? { ...known } : null
    const host = this.#hostFor(meta)
    if (host === null) {
      const expected = this.hosts.get(meta.h)?.next ?? 0
      this.#noteEarly(meta, expected, seq)
      return { kind: 'early', expected }
    }
    const gap = this.#gapIn(meta, host)
    // A late message of an older run past a gap: the newer run sends the generation again from
    // its checkpoint, in order, and writing this first would put the bytes of the gap behind
    // the applied offset for good. Skipped; a real loss shows in the newer run's messages.
    if (gap && meta.r !== host.run) return { kind: 'stale' }
    if (gap?.lost && !this.#skipLost) {
      this.#undoHost(meta.h, known, before) // a centre started again meets the same gap
      return { kind: 'lost', gap: gap.gap }
    }
    const knownBefore = new Set<string>()
    for (const seg of meta.s) {
      const key = genKey(meta.h, seg.g)
      if (this.gens.has(key)) knownBefore.add(key)
    }
    const early = this.#early.get(meta.h) ?? null
    this.#early.delete(meta.h)
    const sayGap = (key: string, gen: GenState, to: number) =>
      this.#sayGap(
        key,
        gen,
        to,
        knownBefore.has(key) || this.#followedFromStart(host, gen.id),
        early,
      )
    const actions: Action[] = []
    let at = 0
    for (const seg of meta.s) {
      const bytes = data.subarray(at, at + seg.n)
      at += seg.n
      const info = meta.g[seg.g]
      const key = genKey(meta.h, seg.g)
      const gen = this.#genFor(key, meta.h, seg, info, seq, time)
      if (seg.x) {
        if (seg.s > gen.applied) sayGap(key, gen, seg.s)
        if (!gen.ended) actions.push({ kind: 'end', key, gen })
        gen.ended = true
        continue
      }
      const write = this.#segment(key, gen, seg, bytes, sayGap)
      if (write) {
        host.lines += write.lines
        actions.push(write)
      }
    }
    host.lastSeq = seq
    host.lastTime = time
    return { kind: 'apply', actions }
  }

  /** Nothing of a message is taken: `host` (`known`, as it was `before` it) as it was. */
  #undoHost(host: string, known: HostState | undefined, before: HostState | null): void {
    if (before && known) {
      Object.assign(known, before)
      if (before.from === undefined) delete known.from
    } else this.hosts.delete(host)
  }

  /**
   * The generation `key` a segment of message `seq` (sent at `time`) is in, made on its first
   * segment: applied from where the segment starts when adopting, else from where its host
   * says the generation starts (`info.o`).
   */
  #genFor(
    key: string,
    host: string,
    seg: Segment,
    info: GenerationInfo | undefined,
    seq: number,
    time: number,
  ): GenState {
    let gen = this.gens.get(key)
    if (!gen) {
      const applied = this.#adopting ? seg.s : (info?.o ?? seg.s)
      gen = {
        host,
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
    return gen
  }

  /** The number of the run the centre follows that cannot come any more (see Order). */
  #missingBefore(meta: BatchMeta): Missing | null {
    const known = this.hosts.get(meta.h)
    if (!known || this.#adopting || meta.r !== known.run) return null
    if (meta.c < known.next + WINDOW) return null
    const early = this.#early.get(meta.h) ?? null
    return {
      host: meta.h,
      run: meta.r,
      expected: known.next,
      got: meta.c,
      early: early?.run === meta.r ? early : null,
    }
  }

  #noteEarly(meta: BatchMeta, expected: number, seq: number): void {
    const e = this.#early.get(meta.h)
    if (e && e.run === meta.r && e.expected === expected) {
      this.#early.set(meta.h, { ...e, count: e.count + 1, lastSeq: seq })
    } else {
      this.#early.set(meta.h, { run: meta.r, expected, count: 1, firstSeq: seq, lastSeq: seq })
    }
  }

  /**
   * The first gap the message would leave in a generation, and whether it is a loss (see
   * Gaps); null when it has none. Looks only: nothing is changed.
   */
  #gapIn(meta: BatchMeta, host: HostState): { gap: Gap; lost: boolean } | null {
    const applied = new Map<string, number>()
    for (const seg of meta.s) {
      const key = genKey(meta.h, seg.g)
      const gen = this.gens.get(key)
      const at =
        applied.get(key) ?? gen?.applied ?? (this.#adopting ? seg.s : (meta.g[seg.g]?.o ?? seg.s))
      if (seg.s > at) {
        const lost = gen !== undefined || this.#followedFromStart(host, seg.g)
        const path = meta.g[seg.g]?.p ?? gen?.path ?? '?'
        const early = this.#early.get(meta.h) ?? null
        return { gap: { host: meta.h, id: seg.g, path, from: at, to: seg.s, early }, lost }
      }
      if (seg.e > at) applied.set(key, seg.e)
    }
    return null
  }

  /**
   * Whether the centre has taken `host` from a run no later than generation `id`'s, begun less
   * than half FORGET_ENDED_MS ago by the host's clock (so the centre cannot have forgotten the
   * generation, with half an hour for the clocks of host, servers and centre to disagree).
   */
  #followedFromStart(host: HostState, id: string): boolean {
    const dot = id.lastIndexOf('.')
    if (host.from === undefined || dot <= 0) return false
    const run = id.slice(0, dot)
    const began = Number.parseInt(run.slice(0, 8), 36)
    if (!(began > this.#now() - FORGET_ENDED_MS / 2)) return false
    return !newerRun(host.from, run)
  }

  /** Says a gap written past, once per generation (a loss gets here only with skipLost). */
  #sayGap(key: string, gen: GenState, to: number, lost: boolean, early: Early | null): void {
    if (this.#gapSaid.has(key)) return
    this.#gapSaid.add(key)
    this.#onGap({ host: gen.host, id: gen.id, path: gen.path, from: gen.applied, to, early }, lost)
  }

  /** The host of the message if it is to be applied; null when it came too early. */
  #hostFor(meta: BatchMeta): HostState | null {
    const known = this.hosts.get(meta.h)
    if (!known) {
      if (!this.#adopting && meta.c !== 0) return null
      const h: HostState = { run: meta.r, next: meta.c + 1, lastSeq: 0, lastTime: 0, lines: 0 }
      if (!this.#adopting) h.from = meta.r
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
      if (known.from === undefined && !this.#adopting) known.from = meta.r
    }
    return known
  }

  #segment(
    key: string,
    gen: GenState,
    seg: Segment,
    bytes: Buffer,
    sayGap: (key: string, gen: GenState, to: number) => void,
  ): Extract<Action, { kind: 'write' }> | null {
    if (seg.e <= gen.applied) return null
    let from = 0
    let start = seg.s
    if (seg.s > gen.applied) {
      sayGap(key, gen, seg.s)
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
