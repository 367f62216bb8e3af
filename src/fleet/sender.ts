/**
 * The host's sending window: sealed messages (packer.ts) go to the stream with up to WINDOW
 * publishes in flight, and their acknowledgements are taken in order, so a checkpoint only
 * ever records a prefix of what was sent.
 *
 * - A message that needs a generation id the last checkpoint has not saved waits for that
 *   checkpoint (see Generations: an id is durable before its first byte is published).
 * - Back-pressure, not loss: a failed publish (the stream full, no server answering, a
 *   timeout) sends that message and every one after it again, in order, after a growing pause
 *   (FIRST_BACKOFF_MS to MAX_BACKOFF_MS); the ones that got through are duplicates the centre
 *   drops, and the stream never holds a later message without the earlier ones. Meanwhile the
 *   publisher holds the readers; the lines wait in their files. Each outage is said once.
 * - A reconnection to the servers gives up waiting for the acknowledgements of the messages in
 *   flight (they may be lost with the old connection, and would only time out after
 *   PUBLISH_TIMEOUT_MS): they are sent again at once, like any failed ones.
 * - Credentials refused while running: failed for good (onFatal), as at start-up.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { type JetStreamClient, jetstream } from '@nats-io/jetstream'
import type { NatsConnection } from '@nats-io/nats-core'
import { LogmergeError } from '../errors.js'
import type { Logger } from '../log.js'
import { natsError } from './connect.js'
import { WINDOW } from './frame.js'
import type { FleetConfig } from './options.js'
import { needed, type Packer, type Sent } from './packer.js'
import { ensureStream } from './stream.js'

const PUBLISH_TIMEOUT_MS = 10_000
const FIRST_BACKOFF_MS = 100
const MAX_BACKOFF_MS = 5000

export interface SenderHooks {
  readonly log: Logger
  /** The generation table version the last saved checkpoint holds. */
  readonly savedVersion: () => number
  /** Saves a checkpoint now (undefined: no state is kept). */
  readonly persist: (() => Promise<void>) | undefined
  /** `m` and every message before it are acknowledged; `seq` is its stream sequence. */
  readonly acknowledged: (m: Sent, seq: number) => void
  /** Publishing failed for good. */
  readonly fail: (err: Error) => void
  /** The publisher is closing: failures are no longer waited out. */
  readonly closing: () => boolean
  /** A turn of sending is over (the publisher looks whether it is idle). */
  readonly pumped: () => void
}

export class Sender {
  readonly #fleet: FleetConfig
  readonly #nc: NatsConnection
  readonly #js: JetStreamClient
  readonly #subject: string
  readonly #packer: Packer
  readonly #hooks: SenderHooks
  #inflight: Sent[] = []
  #acking = false
  #pausedUntilSaved = false
  #backoff = FIRST_BACKOFF_MS
  /** The outage under way (publishing waits), and the last one said until one gets through. */
  #troubled: string | null = null
  #said: string | null = null
  #stopped = false
  /** Resolved when the client reconnects: acknowledgements awaited until then may never come. */
  #reconnected: Promise<void>
  #onReconnect: () => void = () => {}
  /** For health(): outages begun, and their time. */
  #pauses = 0
  #pausedMs = 0
  #pausedSince: number | null = null

  constructor(
    fleet: FleetConfig,
    nc: NatsConnection,
    subject: string,
    packer: Packer,
    hooks: SenderHooks,
  ) {
    this.#fleet = fleet
    this.#nc = nc
    this.#js = jetstream(nc, { timeout: PUBLISH_TIMEOUT_MS })
    this.#subject = subject
    this.#packer = packer
    this.#hooks = hooks
    this.#reconnected = this.#nextReconnect()
    void this.#watchReconnects()
  }

  #nextReconnect(): Promise<void> {
    return new Promise((resolve) => {
      this.#onReconnect = resolve
    })
  }

  async #watchReconnects(): Promise<void> {
    for await (const s of this.#nc.status()) {
      if (s.type !== 'reconnect') continue
      const resolve = this.#onReconnect
      this.#reconnected = this.#nextReconnect()
      resolve()
    }
  }

  /** Publishing waits out an outage (the publisher then holds the readers). */
  get troubled(): boolean {
    return this.#troubled !== null
  }

  /** The last message in flight (an effect with nothing queued goes behind it). */
  get last(): Sent | undefined {
    return this.#inflight.at(-1)
  }

  busy(): boolean {
    return this.#inflight.some(needed)
  }

  /** Outages begun, their seconds (the one under way included), and whether one is. */
  pauses(now = Date.now()): { pauses: number; pausedSeconds: number; paused: boolean } {
    const since = this.#pausedSince
    return {
      pauses: this.#pauses,
      pausedSeconds: (this.#pausedMs + (since === null ? 0 : now - since)) / 1000,
      paused: since !== null,
    }
  }

  /** Publishing failed for good: nothing more is sent. */
  stop(): void {
    this.#stopped = true
  }

  /** Sends what is ready, up to the window; called again after each acknowledgement. */
  pump(): void {
    if (this.#stopped || this.#troubled !== null) return
    while (this.#inflight.length < WINDOW) {
      const next = this.#packer.peek()
      if (next === undefined) break
      if (next.needs > this.#hooks.savedVersion()) {
        this.#awaitCheckpoint()
        break
      }
      this.#packer.shift()
      const lost = this.#reconnected.then(() => ({
        ok: false as const,
        err: new Error('reconnected before the acknowledgement'),
      }))
      next.result = Promise.race([
        this.#js.publish(this.#subject, next.payload, { timeout: PUBLISH_TIMEOUT_MS }).then(
          (ack) => ({ ok: true as const, seq: ack.seq }),
          (err: Error) => ({ ok: false as const, err }),
        ),
        lost,
      ])
      this.#inflight.push(next)
    }
    if (this.#inflight.length > 0 && !this.#acking) void this.#takeAcks()
    this.#hooks.pumped()
  }

  /** A new generation goes out only once a checkpoint has recorded it (see Generations). */
  #awaitCheckpoint(): void {
    if (this.#pausedUntilSaved) return
    this.#pausedUntilSaved = true
    const persist = this.#hooks.persist
    void (async () => {
      for (let attempt = 0; ; attempt++) {
        await persist?.()
        const next = this.#packer.peek()
        if (!next || next.needs <= this.#hooks.savedVersion() || this.#stopped) break
        await sleep(Math.min(50 * 2 ** attempt, 1000), undefined, { ref: false })
      }
      this.#pausedUntilSaved = false
      this.pump()
    })()
  }

  /** A checkpoint was saved: a message waiting for one may go now. */
  saved(): void {
    if (this.#pausedUntilSaved) setImmediate(() => this.pump())
  }

  /** Takes acknowledgements in order; after a failure sends everything from there again. */
  async #takeAcks(): Promise<void> {
    this.#acking = true
    try {
      while (this.#inflight.length > 0 && !this.#stopped) {
        const first = this.#inflight[0] as Sent
        const r = await (first.result as NonNullable<Sent['result']>)
        if (r.ok) {
          this.#inflight.shift()
          this.#through()
          this.#hooks.acknowledged(first, r.seq)
          this.pump()
          continue
        }
        // Every message after it is sent again, in order, even those that got through (the
        // centre drops the duplicates): the stream must not hold a later one alone.
        await Promise.all(this.#inflight.map((m) => m.result))
        const again = this.#inflight.splice(0)
        for (const m of again) m.result = null
        this.#packer.unshift(again)
        if (!(await this.#trouble(r.err))) return
      }
    } finally {
      this.#acking = false
    }
    this.pump()
  }

  /** Says what is wrong (once), waits, and tells whether to go on (false: failed for good). */
  async #trouble(err: Error): Promise<boolean> {
    if (this.#hooks.closing()) return false // what is left is not waited for (Publisher.close)
    const e = natsError(err, this.#fleet)
    if (e instanceof LogmergeError && e.code === 'ENATS_AUTH') {
      this.#hooks.fail(e)
      return false
    }
    const { stream, display } = this.#fleet.url
    const full = /maximum (messages|bytes) exceeded|insufficient resources/i.test(err.message)
    const missing = /stream not found|no responders/i.test(err.message)
    const why = full
      ? `stream ${stream} is full (is the centre running and keeping up?)`
      : missing
        ? `stream ${stream} is not there (deleted?): creating it again`
        : `cannot publish to ${display}: ${err.message}`
    if (this.#said !== why) {
      this.#hooks.log.warn(`${why}; the readers wait, the lines stay in their files`)
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
        await ensureStream(this.#nc, this.#fleet, this.#hooks.log)
      } catch {
        // said on the next failure
      }
    }
    this.#troubled = null
    return true
  }

  /** A message got through: an outage is over. */
  #through(): void {
    if (this.#said !== null) {
      this.#hooks.log.warn(`publishing to ${this.#fleet.url.display} again`)
      this.#said = null
    }
    this.#backoff = FIRST_BACKOFF_MS
    if (this.#pausedSince !== null) {
      this.#pausedMs += Date.now() - this.#pausedSince
      this.#pausedSince = null
    }
  }
}
