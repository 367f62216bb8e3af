/**
 * The host side: one more writer behind the readers' sink interface (BlockSink), which
 * publishes whole lines to the JetStream stream instead of appending them to a file.
 *
 * - Each block becomes a segment of a message, labelled with its file generation and the byte
 *   range it holds there (generations.ts). Blocks are packed into messages of up to
 *   MESSAGE_BYTES, whole lines only; a line longer than a message allows is split into pieces
 *   the way --max-line-bytes splits (frame.ts).
 * - A checkpoint records what the stream has acknowledged, not what was sent: each block's
 *   offset moves when the message holding it is acknowledged, and every message before it too
 *   (acknowledgements are taken in order). After a SIGKILL the readers resume there, and the
 *   lines sent and not checkpointed are sent again, with the same generations and offsets: the
 *   centre writes them once.
 * - A generation's id is in a saved checkpoint before its first byte is published, so that
 *   after a crash it is found again (see Generations); the publisher waits for that checkpoint.
 * - Back-pressure, not loss: while the stream is full or no server answers, messages are sent
 *   again (in order) with a growing pause, and write() keeps the readers waiting; the lines
 *   wait in their files.
 * - Order: messages are numbered per run; after a failure every message from the failed one on
 *   is sent again in order (those that got through are duplicates, which the centre drops), so
 *   the centre never has to take a later message before an earlier one (see applier.ts).
 */
import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { type JetStreamClient, jetstream } from '@nats-io/jetstream'
import type { NatsConnection } from '@nats-io/nats-core'
import type { Config } from '../config.js'
import { LogmergeError } from '../errors.js'
import type { Logger } from '../log.js'
import type { BlockSink, OutputHealth, Snapshot, SourceMark, SourceStats } from '../sink/sink.js'
import { loadState } from '../state/checkpoint.js'
import { headsAgree } from '../tail/cursor.js'
import { connectFleet, natsError } from './connect.js'
import {
  type BatchMeta,
  encodeBatch,
  FRAME_VERSION,
  fileOffsetAt,
  type GenerationInfo,
  metaBytes,
  type Segment,
  splitLongLines,
} from './frame.js'
import { type Generation, Generations, type SavedGeneration } from './generations.js'
import type { FleetConfig } from './options.js'
import { ensureStream, MESSAGE_BYTES } from './stream.js'
import { hostToken } from './url.js'

/** Messages sent and not yet acknowledged, at most. */
const WINDOW = 32
/** The longest line a message carries (the rest of a message is its header). */
export const MAX_LINE_BYTES = MESSAGE_BYTES - 16 * 1024
const PUBLISH_TIMEOUT_MS = 10_000
const FIRST_BACKOFF_MS = 100
const MAX_BACKOFF_MS = 5000
const NEWLINE = 0x0a

export const WRITER_KIND = 'nats-host'

/** What the host keeps in its state file besides the files' offsets. */
export interface HostWriterState {
  readonly kind: typeof WRITER_KIND
  readonly url: string
  readonly stream: string
  readonly hostId: string
  readonly run: string
  /** The stream sequence of the last message acknowledged, and when. */
  readonly ackedSeq: number
  readonly ackedAt: string | null
  readonly generations: readonly SavedGeneration[]
}

export interface PublisherOptions {
  readonly log: Logger
  /** Called once if publishing fails for good (credentials refused); the run then ends. */
  readonly onFatal: (err: Error) => void
  /** A source was noted for the first time (so a checkpoint can record it soon). */
  readonly onNewSource?: () => void
  /**
   * Saves a checkpoint now. Needed before a new generation's first bytes are sent; undefined
   * when no state is kept (no restart can then resume exactly anyway).
   */
  readonly persist?: () => Promise<void>
}

/** Where a file stands as far as the stream has acknowledged (what checkpoints record). */
interface Acked {
  offset: number
  head: Uint8Array | undefined
  stats: SourceStats | undefined
  /** The generation `offset` is in; null before its first byte (a new file, a truncation). */
  gen: string | null
}

/** Done once a message and every one before it are acknowledged. */
type Effect =
  | { readonly kind: 'mark'; readonly key: string; readonly acked: Acked }
  | { readonly kind: 'note'; readonly key: string; readonly acked: Acked }
  | { readonly kind: 'forget'; readonly key: string }

/** A file as the sending side knows it (ahead of the acknowledgements). */
interface KeyState {
  gen: Generation | null
  /** File offset up to which its bytes are queued. */
  end: number
  path: string
  label: string
}

class Batch {
  readonly segments: Segment[] = []
  readonly data: Buffer[] = []
  bytes = 0
  readonly gens = new Map<string, GenerationInfo>()
  metaText = 0
  readonly effects: Effect[] = []
  /** The generation table version a checkpoint must have saved before this is sent. */
  needs = 0

  room(): number {
    return (
      MESSAGE_BYTES -
      this.bytes -
      metaBytes(this.segments.length + 1, this.gens.size + 1, this.metaText)
    )
  }

  addGen(gen: Generation): void {
    if (this.gens.has(gen.id)) return
    this.gens.set(gen.id, { p: gen.path, l: gen.label, o: gen.origin })
    this.metaText += gen.path.length + gen.label.length + gen.id.length
  }
}

interface Sent {
  readonly counter: number
  readonly payload: Buffer
  readonly lineBytes: number
  readonly effects: readonly Effect[]
  readonly needs: number
  result: Promise<{ ok: true; seq: number } | { ok: false; err: Error }> | null
}

export class Publisher implements BlockSink {
  /** The output as shown (the URL without credentials). */
  readonly path: string
  readonly #fleet: FleetConfig
  readonly #nc: NatsConnection
  readonly #js: JetStreamClient
  readonly #subject: string
  readonly #opts: PublisherOptions
  readonly #run: string
  readonly #gens: Generations
  readonly #keys = new Map<string, KeyState>()
  readonly #paths = new Map<string, { path: string; label: string }>()
  readonly #acked = new Map<string, Acked>()
  #open = new Batch()
  #ready: Sent[] = []
  #inflight: Sent[] = []
  #counter = 0
  #queuedBytes = 0
  #changes = 0
  #savedVersion = 0
  #ackedSeq = 0
  #ackedAt: string | null = null
  #waiters: (() => void)[] = []
  #idle: (() => void)[] = []
  #kicked = false
  #acking = false
  #pausedUntilSaved = false
  #backoff = FIRST_BACKOFF_MS
  #troubled: string | null = null
  /** For health(): line bytes acknowledged, outages begun, and their time. */
  #bytesOut = 0
  #pauses = 0
  #pausedMs = 0
  #pausedSince: number | null = null
  /** The trouble said last (once per outage), until a message gets through. */
  #said: string | null = null
  #failed: Error | null = null
  #closed: Promise<void> | null = null
  /** Drained and closing: messages still out (generation ends) are given up. */
  #closing = false
  readonly #highWater: number

  private constructor(
    config: Config,
    fleet: FleetConfig,
    nc: NatsConnection,
    saved: HostWriterState | null,
    opts: PublisherOptions,
  ) {
    this.path = config.output
    this.#fleet = fleet
    this.#nc = nc
    this.#js = jetstream(nc, { timeout: PUBLISH_TIMEOUT_MS })
    this.#subject = `${fleet.url.stream}.${hostToken(fleet.hostId)}`
    this.#opts = opts
    this.#run = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`
    this.#gens = new Generations(this.#run, saved?.generations ?? [])
    this.#ackedSeq = saved?.ackedSeq ?? 0
    this.#ackedAt = saved?.ackedAt ?? null
    this.#highWater = Math.max(config.highWaterBytes, 4 * MESSAGE_BYTES)
  }

  /** Connects, makes sure the stream exists, and takes back the generations of the state. */
  static async open(config: Config, opts: PublisherOptions): Promise<Publisher> {
    const fleet = config.fleet as FleetConfig
    const nc = await connectFleet(fleet, opts.log)
    try {
      await ensureStream(nc, fleet, opts.log)
    } catch (err) {
      await nc.close().catch(() => {})
      throw err
    }
    return new Publisher(config, fleet, nc, savedState(config, fleet, opts.log), opts)
  }

  /** The file `key` was opened at `path`: its label and path go with its generations. */
  opened(key: string, path: string, label: string): void {
    this.#paths.set(key, { path, label })
    const ks = this.#keys.get(key)
    if (ks) {
      ks.path = path
      ks.label = label
      if (ks.gen) {
        ks.gen.path = path
        ks.gen.label = label
      }
    }
  }

  /** The readers let the file go: its generation ends (the centre's time order stops waiting). */
  released(key: string): void {
    const ks = this.#keys.get(key)
    if (!ks?.gen || this.#failed) return
    const batch = this.#batchWithRoom(0)
    batch.addGen(ks.gen)
    batch.segments.push({ g: ks.gen.id, s: ks.end, e: ks.end, n: 0, x: 1 })
    this.#kick()
  }

  write(block: Buffer, mark?: SourceMark): Promise<void> | undefined {
    if (this.#failed || block.length === 0) return undefined
    if (mark === undefined) throw new Error('fleet publisher: a block without its source mark')
    const ks = this.#keyState(mark.key, mark.offset)
    const inserted = mark.inserted ?? []
    const fileBytes = block.length - inserted.length
    let start = mark.offset - fileBytes
    const acked: Acked = {
      offset: mark.offset,
      head: mark.head,
      stats: mark.stats,
      gen: null,
    }
    let gen: Generation
    if (start < 0) {
      // The partial last line of the generation before a truncation, finished with a newline:
      // its bytes are that generation's, after what was queued of it (Cursor.restart).
      // (A generation resumed from a state without the table has none yet: it gets one here.)
      gen = ks.gen ?? this.#gens.begin(mark.key, ks.end, Buffer.alloc(0), ks.path, ks.label).gen
      if (ks.gen === null) this.#changes++
      start = ks.end
      ks.gen = null
      ks.end = 0
      this.#append(gen, block, inserted, start, mark.key, acked)
    } else {
      const head = Buffer.from(mark.head ?? [])
      if (ks.gen === null || start < ks.end || !headsAgree(ks.gen.head, head)) {
        const begun = this.#gens.begin(mark.key, start, head, ks.path, ks.label)
        ks.gen = begun.gen
        if (begun.fresh) this.#changes++
      } else {
        this.#gens.learnHead(ks.gen, head)
      }
      gen = ks.gen
      acked.gen = gen.id
      ks.end = mark.offset
      this.#append(gen, block, inserted, start, mark.key, acked)
    }
    this.#kick()
    if (this.#queuedBytes < this.#highWater && this.#troubled === null) return undefined
    return new Promise((resolve) => this.#waiters.push(resolve))
  }

  /** A source starts at `mark.offset` (nothing of it queued yet): see LoopWriter.note. */
  note(mark: SourceMark): void {
    if (this.#keys.has(mark.key) || this.#failed) return
    const ks = this.#keyState(mark.key, mark.offset)
    const resumed = this.#gens.resumed(mark.key, Buffer.from(mark.head ?? []))
    ks.gen = resumed
    this.#effect({
      kind: 'note',
      key: mark.key,
      acked: { offset: mark.offset, head: mark.head, stats: mark.stats, gen: resumed?.id ?? null },
    })
  }

  /** The file `key` is gone for good: it leaves the checkpoints. */
  forget(key: string): void {
    this.#keys.delete(key)
    this.#effect({ kind: 'forget', key })
  }

  snapshot(): Snapshot {
    const offsets = new Map<string, number>()
    const heads = new Map<string, Uint8Array>()
    const stats = new Map<string, SourceStats>()
    const currentOf = new Map<string, string | null>()
    for (const [key, a] of this.#acked) {
      offsets.set(key, a.offset)
      if (a.head) heads.set(key, a.head)
      if (a.stats) stats.set(key, a.stats)
      currentOf.set(key, a.gen)
    }
    const version = this.#gens.version
    const writer: HostWriterState = {
      kind: WRITER_KIND,
      url: this.#fleet.url.display,
      stream: this.#fleet.url.stream,
      hostId: this.#fleet.hostId,
      run: this.#run,
      ackedSeq: this.#ackedSeq,
      ackedAt: this.#ackedAt,
      generations: this.#gens.save(currentOf),
    }
    return {
      size: 0,
      output: null,
      offsets,
      heads,
      stats,
      writer,
      onSaved: () => {
        if (version > this.#savedVersion) this.#savedVersion = version
        if (this.#pausedUntilSaved) this.#kick()
      },
    }
  }

  get changes(): number {
    return this.#changes
  }

  get queuedBytes(): number {
    return this.#queuedBytes
  }

  /**
   * For metrics: `bytes` are line bytes the stream acknowledged; a pause is an outage (the
   * stream full, no server answering) from its first failed publish to the next one that got
   * through. No file is written here, so no write error is counted.
   */
  health(now = Date.now()): OutputHealth {
    const since = this.#pausedSince
    return {
      bytes: this.#bytesOut,
      errors: [],
      pauses: this.#pauses,
      pausedSeconds: (this.#pausedMs + (since === null ? 0 : now - since)) / 1000,
      paused: since !== null,
      queuedBytes: this.#queuedBytes,
    }
  }

  /** Nothing to make durable here: the stream's acknowledgement is the durability. */
  async fsync(): Promise<void> {}

  /** Nothing to reopen (SIGHUP is for output files). */
  async reopen(): Promise<void> {}

  /** Resolves once everything queued so far is acknowledged (or publishing failed for good). */
  async drain(): Promise<void> {
    if (this.#busy()) await new Promise<void>((resolve) => this.#idle.push(resolve))
  }

  /** Drains, then closes the connection. Idempotent: every call returns the same promise. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      if (!this.#failed) await this.drain()
      this.#closing = true
      await this.#nc.close().catch(() => {})
    })()
    return this.#closed
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close()
  }

  #keyState(key: string, offset: number): KeyState {
    let ks = this.#keys.get(key)
    if (!ks) {
      const named = this.#paths.get(key) ?? { path: key, label: key }
      ks = { gen: null, end: offset, path: named.path, label: named.label }
      this.#keys.set(key, ks)
    }
    return ks
  }

  /** Queues `block` (file bytes [start, ...) of `gen`), cut into messages at line boundaries. */
  #append(
    gen: Generation,
    whole: Buffer,
    readerInserted: readonly number[],
    start: number,
    key: string,
    acked: Acked,
  ): void {
    const { block, inserted } = splitLongLines(whole, readerInserted, MAX_LINE_BYTES)
    this.#queuedBytes += block.length
    let at = 0
    let next = 0 // index into inserted
    while (at < block.length) {
      const batch = this.#batchWithRoom(Math.min(block.length - at, MAX_LINE_BYTES))
      const room = batch.room()
      let end = block.length
      if (end - at > room) {
        // The last whole line that fits; none: the next message (a line is at most
        // MAX_LINE_BYTES, which an empty message has room for).
        const cut = room > 0 ? block.lastIndexOf(NEWLINE, at + room - 1) : -1
        if (cut < at && batch.segments.length > 0) {
          this.#seal()
          continue
        }
        end = cut < at ? block.indexOf(NEWLINE, at) + 1 : cut + 1
      }
      const own: number[] = []
      while (next < inserted.length && (inserted[next] as number) < end) {
        own.push((inserted[next] as number) - at)
        next++
      }
      const s = fileOffsetAt(start, inserted, at)
      const e = fileOffsetAt(start, inserted, end)
      batch.addGen(gen)
      batch.segments.push({ g: gen.id, s, e, n: end - at, ...(own.length > 0 && { i: own }) })
      batch.data.push(block.subarray(at, end))
      batch.bytes += end - at
      if (this.#gens.version > batch.needs && this.#opts.persist) batch.needs = this.#gens.version
      const last = end === block.length
      batch.effects.push({
        kind: 'mark',
        key,
        acked: last ? acked : { ...acked, offset: e, stats: undefined },
      })
      at = end
    }
  }

  /** The open batch, sealed first if it cannot take `want` more bytes of lines. */
  #batchWithRoom(want: number): Batch {
    if (this.#open.segments.length > 0 && this.#open.room() < want) this.#seal()
    return this.#open
  }

  /** An effect, in turn after everything queued before it. */
  #effect(effect: Effect): void {
    if (this.#open.segments.length > 0) {
      this.#open.effects.push(effect)
      return
    }
    const last = this.#ready.at(-1) ?? this.#inflight.at(-1)
    if (last) (last.effects as Effect[]).push(effect)
    else this.#apply(effect)
  }

  #seal(): void {
    const b = this.#open
    if (b.segments.length === 0) return
    this.#open = new Batch()
    const meta: BatchMeta = {
      v: FRAME_VERSION,
      h: this.#fleet.hostId,
      r: this.#run,
      c: this.#counter,
      g: Object.fromEntries(b.gens),
      s: b.segments,
    }
    this.#ready.push({
      counter: this.#counter++,
      payload: encodeBatch(meta, b.data, b.bytes),
      lineBytes: b.bytes,
      effects: b.effects,
      needs: b.needs,
      result: null,
    })
  }

  /** Sends soon: blocks queued in this turn of the event loop go out together. */
  #kick(): void {
    if (this.#kicked) return
    this.#kicked = true
    setImmediate(() => {
      this.#kicked = false
      this.#pump()
    })
  }

  #pump(): void {
    if (this.#failed || this.#troubled !== null) return
    while (this.#inflight.length < WINDOW) {
      if (this.#ready.length === 0) this.#seal()
      const next = this.#ready[0]
      if (next === undefined) break
      if (next.needs > this.#savedVersion) {
        this.#awaitCheckpoint()
        break
      }
      this.#ready.shift()
      next.result = this.#js
        .publish(this.#subject, next.payload, { timeout: PUBLISH_TIMEOUT_MS })
        .then(
          (ack) => ({ ok: true as const, seq: ack.seq }),
          (err: Error) => ({ ok: false as const, err }),
        )
      this.#inflight.push(next)
    }
    if (this.#inflight.length > 0 && !this.#acking) void this.#takeAcks()
    this.#maybeIdle()
  }

  /** A new generation goes out only once a checkpoint has recorded it (see Generations). */
  #awaitCheckpoint(): void {
    if (this.#pausedUntilSaved) return
    this.#pausedUntilSaved = true
    const persist = this.#opts.persist
    void (async () => {
      for (let attempt = 0; ; attempt++) {
        await persist?.()
        const next = this.#ready[0]
        if (!next || next.needs <= this.#savedVersion || this.#failed) break
        await sleep(Math.min(50 * 2 ** attempt, 1000), undefined, { ref: false })
      }
      this.#pausedUntilSaved = false
      this.#pump()
    })()
  }

  /** Takes acknowledgements in order; after a failure sends everything from there again. */
  async #takeAcks(): Promise<void> {
    this.#acking = true
    try {
      while (this.#inflight.length > 0 && !this.#failed) {
        const first = this.#inflight[0] as Sent
        const r = await (first.result as NonNullable<Sent['result']>)
        if (r.ok) {
          this.#inflight.shift()
          this.#acknowledged(first, r.seq)
          this.#pump()
          continue
        }
        // Every message after it is sent again, in order, even those that got through (the
        // centre drops the duplicates): the stream must not hold a later one alone.
        await Promise.all(this.#inflight.map((m) => m.result))
        const again = this.#inflight.splice(0)
        for (const m of again) m.result = null
        this.#ready.unshift(...again)
        if (!(await this.#trouble(r.err))) return
      }
    } finally {
      this.#acking = false
    }
    this.#pump()
  }

  /** Says what is wrong (once), waits, and tells whether to go on (false: failed for good). */
  async #trouble(err: Error): Promise<boolean> {
    if (this.#closing) return false // what is left is not waited for (see #busy)
    const e = natsError(err, this.#fleet)
    if (e instanceof LogmergeError && e.code === 'ENATS_AUTH') {
      this.#fail(e)
      return false
    }
    const full = /maximum (messages|bytes) exceeded|insufficient resources/i.test(err.message)
    const missing = /stream not found|no responders/i.test(err.message)
    const why = full
      ? `stream ${this.#fleet.url.stream} is full (is the centre running and keeping up?)`
      : missing
        ? `stream ${this.#fleet.url.stream} is not there (deleted?): creating it again`
        : `cannot publish to ${this.#fleet.url.display}: ${err.message}`
    if (this.#said !== why) {
      this.#opts.log.warn(`${why}; the readers wait, the lines stay in their files`)
    }
    this.#said = why
    this.#troubled = why
    if (this.#pausedSince === null) {
      this.#pauses++
      this.#pausedSince = Date.now()
    }
    await sleep(this.#backoff, undefined, { ref: false })
    this.#backoff = Math.min(this.#backoff * 2, MAX_BACKOFF_MS)
    if (missing) {
      try {
        await ensureStream(this.#nc, this.#fleet, this.#opts.log)
      } catch {
        // said on the next failure
      }
    }
    this.#troubled = null
    return true
  }

  #acknowledged(m: Sent, seq: number): void {
    if (this.#said !== null) {
      this.#opts.log.warn(`publishing to ${this.#fleet.url.display} again`)
      this.#said = null
    }
    this.#backoff = FIRST_BACKOFF_MS
    if (this.#pausedSince !== null) {
      this.#pausedMs += Date.now() - this.#pausedSince
      this.#pausedSince = null
    }
    this.#bytesOut += m.lineBytes
    this.#ackedSeq = Math.max(this.#ackedSeq, seq)
    this.#ackedAt = new Date().toISOString()
    this.#queuedBytes -= m.lineBytes
    for (const effect of m.effects) this.#apply(effect)
    this.#changes++
    if (this.#queuedBytes < this.#highWater / 2) {
      for (const resolve of this.#waiters.splice(0)) resolve()
    }
  }

  #apply(effect: Effect): void {
    switch (effect.kind) {
      case 'mark': {
        const before = this.#acked.get(effect.key)
        const a = effect.acked
        this.#acked.set(effect.key, {
          offset: a.offset,
          head: a.head ?? before?.head,
          stats: a.stats ?? before?.stats,
          gen: a.gen,
        })
        break
      }
      case 'note':
        if (this.#acked.has(effect.key)) return
        this.#acked.set(effect.key, effect.acked)
        this.#opts.onNewSource?.()
        break
      case 'forget': {
        if (!this.#acked.delete(effect.key)) return
        const keep = new Set<string>()
        for (const a of this.#acked.values()) if (a.gen) keep.add(a.gen)
        for (const ks of this.#keys.values()) if (ks.gen) keep.add(ks.gen.id)
        this.#gens.forgetKey(effect.key, keep)
        break
      }
    }
    this.#changes++
  }

  /**
   * Something queued that a drain must see acknowledged: lines, or a checkpoint's effects. A
   * message of generation ends only (files let go at shutdown) is not waited for: the centre
   * only orders better with it, and at shutdown the stream may be full with no centre reading.
   */
  #busy(): boolean {
    if (this.#failed) return false
    const needed = (m: { lineBytes: number; effects: readonly Effect[] }) =>
      m.lineBytes > 0 || m.effects.length > 0
    return (
      needed({ lineBytes: this.#open.bytes, effects: this.#open.effects }) ||
      this.#ready.some(needed) ||
      this.#inflight.some(needed)
    )
  }

  #maybeIdle(): void {
    if (this.#busy()) return
    for (const resolve of this.#idle.splice(0)) resolve()
    for (const resolve of this.#waiters.splice(0)) resolve()
  }

  #fail(err: Error): void {
    if (this.#failed) return
    this.#failed = err
    this.#open = new Batch()
    this.#ready = []
    this.#maybeIdle()
    for (const resolve of this.#idle.splice(0)) resolve()
    for (const resolve of this.#waiters.splice(0)) resolve()
    this.#opts.onFatal(err)
  }
}

/** The generations and acknowledgement of the state file, if it is this host's on this stream. */
function savedState(config: Config, fleet: FleetConfig, log: Logger): HostWriterState | null {
  if (!config.statePath) return null
  const loaded = loadState(config.statePath)
  if (loaded.kind !== 'ok') return null
  const w = loaded.state.writer as Partial<HostWriterState> | undefined
  if (w?.kind !== WRITER_KIND || !Array.isArray(w.generations)) return null
  if (w.stream !== fleet.url.stream || w.hostId !== fleet.hostId) {
    log.warn(
      `state file ${config.statePath} was kept for host ${w.hostId} on stream ${w.stream}, not ${fleet.hostId} on ${fleet.url.stream}: its generations are not used (lines after its last checkpoint may reach the centre twice)`,
    )
    return null
  }
  return w as HostWriterState
}
