/**
 * The host side: one more writer behind the readers' sink interface (BlockSink), which
 * publishes whole lines to the JetStream stream instead of appending them to a file.
 *
 * - Each block is given its file generation (generations.ts), packed into messages
 *   (packer.ts) and sent by the window of sender.ts.
 * - A checkpoint records what the stream has acknowledged, not what was sent: each block's
 *   offset moves when the message holding it is acknowledged, and every message before it too
 *   (acknowledgements are taken in order). After a SIGKILL the readers resume there, and the
 *   lines sent and not checkpointed are sent again, with the same generations and offsets: the
 *   centre writes them once.
 * - A generation's id is in a saved checkpoint before its first byte is published, so that
 *   after a crash it is found again (see Generations); the sender waits for that checkpoint.
 * - Back-pressure, not loss: while the stream is full or no server answers, write() keeps the
 *   readers waiting; the lines wait in their files.
 */
import { randomBytes } from 'node:crypto'
import type { NatsConnection } from '@nats-io/nats-core'
import type { Config } from '../config.js'
import type { Logger } from '../log.js'
import type { BlockSink, OutputHealth, Snapshot, SourceMark } from '../sink/sink.js'
import { AckedFiles } from './acked.js'
import { connectFleet } from './connect.js'
import { Generations } from './generations.js'
import { HostFiles } from './host-files.js'
import { type HostWriterState, savedHostState, WRITER_KIND } from './host-state.js'
import type { FleetConfig } from './options.js'
import { type Acked, type Effect, Packer, type Sent } from './packer.js'
import { Sender } from './sender.js'
import { ensureStream, MESSAGE_BYTES } from './stream.js'
import { hostToken } from './url.js'

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

export class Publisher implements BlockSink {
  /** The output as shown (the URL without credentials). */
  readonly path: string
  readonly #fleet: FleetConfig
  readonly #nc: NatsConnection
  readonly #opts: PublisherOptions
  readonly #run: string
  readonly #gens: Generations
  readonly #packer: Packer
  readonly #sender: Sender
  readonly #files: HostFiles
  readonly #acked = new AckedFiles()
  #queuedBytes = 0
  #bytesOut = 0
  #changes = 0
  #savedVersion = 0
  #ackedSeq = 0
  #ackedAt: string | null = null
  #waiters: (() => void)[] = []
  #idle: (() => void)[] = []
  #kicked = false
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
    this.#opts = opts
    this.#run = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`
    this.#gens = new Generations(this.#run, saved?.generations ?? [])
    this.#files = new HostFiles(this.#gens)
    this.#ackedSeq = saved?.ackedSeq ?? 0
    this.#ackedAt = saved?.ackedAt ?? null
    this.#highWater = Math.max(config.highWaterBytes, 4 * MESSAGE_BYTES)
    this.#packer = new Packer(fleet.hostId, this.#run)
    this.#sender = new Sender(
      fleet,
      nc,
      `${fleet.url.stream}.${hostToken(fleet.hostId)}`,
      this.#packer,
      {
        log: opts.log,
        savedVersion: () => this.#savedVersion,
        persist: opts.persist,
        acknowledged: (m, seq) => this.#acknowledged(m, seq),
        fail: (err) => this.#fail(err),
        closing: () => this.#closing,
        pumped: () => this.#maybeIdle(),
      },
    )
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
    return new Publisher(config, fleet, nc, savedHostState(config, fleet, opts.log), opts)
  }

  /** The file `key` was opened at `path`: its label and path go with its generations. */
  opened(key: string, path: string, label: string): void {
    this.#files.opened(key, path, label)
  }

  /** The readers let the file go: its generation ends (the centre's time order stops waiting). */
  released(key: string): void {
    const now = this.#files.current(key)
    if (!now || this.#failed) return
    this.#packer.end(now.gen, now.end)
    this.#kick()
  }

  write(block: Buffer, mark?: SourceMark): Promise<void> | undefined {
    if (this.#failed || block.length === 0) return undefined
    if (mark === undefined) throw new Error('fleet publisher: a block without its source mark')
    const inserted = mark.inserted ?? []
    const placed = this.#files.place(mark, block.length - inserted.length)
    if (placed.changed) this.#changes++
    if (placed.fresh && placed.gen.origin > 0 && this.#gens.restored) {
      // Past a file's start a fresh id is right only where reading began there (--from end);
      // after a restart it means no generation of the last run was found for these bytes, and
      // what that run published of them is written again (said for tracing such doubles).
      this.#opts.log.info(
        `${placed.gen.path}: bytes from ${placed.gen.origin} on are a new generation ${placed.gen.id} (key ${mark.key}, first bytes known: ${placed.gen.head.length})`,
      )
    }
    const acked: Acked = {
      offset: mark.offset,
      head: mark.head,
      stats: mark.stats,
      gen: placed.markGen,
    }
    const needs = this.#opts.persist ? this.#gens.version : 0
    this.#queuedBytes += this.#packer.append(
      placed.gen,
      block,
      inserted,
      placed.start,
      mark.key,
      acked,
      needs,
    )
    this.#kick()
    if (this.#queuedBytes < this.#highWater && !this.#sender.troubled) return undefined
    return new Promise((resolve) => this.#waiters.push(resolve))
  }

  /** A source starts at `mark.offset` (nothing of it queued yet): see LoopWriter.note. */
  note(mark: SourceMark): void {
    if (this.#files.has(mark.key) || this.#failed) return
    const resumed = this.#files.note(mark)
    this.#effect({
      kind: 'note',
      key: mark.key,
      acked: { offset: mark.offset, head: mark.head, stats: mark.stats, gen: resumed?.id ?? null },
    })
  }

  /** The file `key` is gone for good: it leaves the checkpoints. */
  forget(key: string): void {
    this.#files.forget(key)
    this.#effect({ kind: 'forget', key })
  }

  snapshot(): Snapshot {
    const { offsets, heads, stats, currentOf } = this.#acked.view()
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
        this.#sender.saved()
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
    return {
      bytes: this.#bytesOut,
      errors: [],
      ...this.#sender.pauses(now),
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

  /** An effect, in turn after everything queued before it. */
  #effect(effect: Effect): void {
    if (this.#packer.effect(effect)) return
    const last = this.#sender.last
    if (last) last.effects.push(effect)
    else this.#apply(effect)
  }

  /** Sends soon: blocks queued in this turn of the event loop go out together. */
  #kick(): void {
    if (this.#kicked) return
    this.#kicked = true
    setImmediate(() => {
      this.#kicked = false
      if (!this.#failed) this.#sender.pump()
    })
  }

  #acknowledged(m: Sent, seq: number): void {
    this.#ackedSeq = Math.max(this.#ackedSeq, seq)
    this.#ackedAt = new Date().toISOString()
    this.#queuedBytes -= m.lineBytes
    this.#bytesOut += m.lineBytes
    for (const effect of m.effects) this.#apply(effect)
    this.#changes++
    if (this.#queuedBytes < this.#highWater / 2) {
      for (const resolve of this.#waiters.splice(0)) resolve()
    }
  }

  #apply(effect: Effect): void {
    const changed = this.#acked.apply(
      effect,
      () => this.#opts.onNewSource?.(),
      (key, inUse) => {
        this.#files.inUse(inUse)
        this.#gens.forgetKey(key, inUse)
      },
    )
    if (changed) this.#changes++
  }

  /**
   * Something queued that a drain must see acknowledged: lines, or a checkpoint's effects. A
   * message of generation ends only (files let go at shutdown) is not waited for: the centre
   * only orders better with it, and at shutdown the stream may be full with no centre reading.
   */
  #busy(): boolean {
    if (this.#failed) return false
    return this.#packer.busy() || this.#sender.busy()
  }

  #maybeIdle(): void {
    if (this.#busy()) return
    for (const resolve of this.#idle.splice(0)) resolve()
    for (const resolve of this.#waiters.splice(0)) resolve()
  }

  #fail(err: Error): void {
    if (this.#failed) return
    this.#failed = err
    this.#sender.stop()
    this.#packer.clear()
    for (const resolve of this.#idle.splice(0)) resolve()
    for (const resolve of this.#waiters.splice(0)) resolve()
    this.#opts.onFatal(err)
  }
}
