/**
 * The centre's reading of the stream: every message in order from the next one to read, one
 * consumer after another. A consumer that delivers nothing for STALL_CHECK_MS while the stream
 * holds messages past the last one read (seen after a stream leader was killed: its pull
 * requests kept expiring empty) is replaced by a new one from the next message. A stream that
 * now ends before a message already read (servers that lost acknowledged messages, whose
 * sequence numbers new messages would take) is exit 9, never taken for read. After the client
 * reconnects (a server restarted, another one of the cluster taken) the consumer is replaced at
 * once: its server side may be gone with the old connection's server.
 */
import {
  type ConsumerMessages,
  DeliverPolicy,
  type JetStreamManager,
  type JsMsg,
  jetstream,
} from '@nats-io/jetstream'
import type { NatsConnection } from '@nats-io/nats-core'
import type { Logger } from '../log.js'
import { sameStream, streamLost } from './centre-recover.js'
import { startupRetry } from './connect.js'
import type { FleetConfig } from './options.js'

/**
 * Messages the client fetches ahead of the merge: 16 full ones are 4 MiB, enough to keep it
 * busy (the client asks for more at half). 64 held 16 MiB of received messages and cost the
 * centre 8-10 % more CPU (docs/fleet.md, Figures).
 */
const FETCH_MESSAGES = 16
/** A consumer that delivered nothing this long, with messages waiting, is replaced. */
const STALL_CHECK_MS = 5000

export interface ReaderParts {
  readonly nc: NatsConnection
  readonly jsm: JetStreamManager
  readonly fleet: FleetConfig
  readonly log: Logger
  /** The stream's creation time (another stream of the same name is not this one). */
  readonly created: string
  /** The last message read: a new consumer starts after it. */
  readonly lastRead: () => number
  /** Reading failed for good (the iteration then ends). */
  readonly fail: (err: Error) => void
}

export class StreamReader {
  readonly #p: ReaderParts
  #lastDelivery = Date.now()
  #failed = false
  #current: ConsumerMessages | null = null

  constructor(parts: ReaderParts) {
    this.#p = parts
  }

  /** Stops the consumer under way (the iteration ends). */
  stop(): void {
    this.#current?.stop()
  }

  /** The messages, in order; `onConsumer` is called each time a consumer is ready. */
  async *messages(ended: AbortSignal, onConsumer: () => void): AsyncGenerator<JsMsg> {
    const { fleet, log } = this.#p
    const js = jetstream(this.#p.nc)
    void this.#watchReconnects()
    while (!ended.aborted && !this.#failed) {
      const consumer = await startupRetry(fleet, log, 'reading the stream', () =>
        js.consumers.get(fleet.url.stream, {
          deliver_policy: DeliverPolicy.StartSequence,
          opt_start_seq: this.#p.lastRead() + 1,
        }),
      )
      const current = await consumer.consume({ max_messages: FETCH_MESSAGES })
      this.#current = current
      this.#lastDelivery = Date.now()
      void this.#watchConsumer(current)
      const watchdog = setInterval(() => void this.#watchdog(current), STALL_CHECK_MS)
      watchdog.unref()
      onConsumer()
      if (ended.aborted) current.stop()
      try {
        for await (const m of current) {
          this.#lastDelivery = Date.now()
          yield m
        }
      } finally {
        clearInterval(watchdog)
        current.stop()
      }
    }
  }

  async #watchdog(current: ConsumerMessages): Promise<void> {
    if (Date.now() - this.#lastDelivery < STALL_CHECK_MS) return
    const { jsm, fleet, log } = this.#p
    const { stream } = fleet.url
    const lastRead = this.#p.lastRead()
    try {
      const info = await jsm.streams.info(stream)
      if (info.state.last_seq < lastRead && sameStream(this.#p.created, info.created)) {
        // Messages the centre has read are not in the stream any more, and their sequence
        // numbers will be given to new messages, which would then look read: say so and stop.
        this.#failed = true
        this.#p.fail(
          streamLost(
            `stream ${stream} now ends at message ${info.state.last_seq}, before message ${lastRead} the centre has read (the servers lost messages they had acknowledged)`,
          ),
        )
        current.stop()
        return
      }
      if (info.state.last_seq <= lastRead) return
      if (Date.now() - this.#lastDelivery < STALL_CHECK_MS) return
      log.info(
        `stream ${stream}: no message for ${STALL_CHECK_MS / 1000} s though it holds ${info.state.last_seq - lastRead} past ${lastRead}; reading again from ${lastRead + 1}`,
      )
      this.#lastDelivery = Date.now()
      current.stop()
    } catch {
      // The servers do not answer: the client is reconnecting; looked at again later.
    }
  }

  async #watchReconnects(): Promise<void> {
    for await (const s of this.#p.nc.status()) {
      if (s.type !== 'reconnect') continue
      this.#p.log.debug(`reconnected: reading the stream again from ${this.#p.lastRead() + 1}`)
      this.#current?.stop()
    }
  }

  /** The client's own notes on the consumer (recreated after a server went away...), for debug. */
  async #watchConsumer(messages: ConsumerMessages): Promise<void> {
    for await (const s of messages.status()) {
      if (s.type === 'heartbeat' || s.type === 'next') continue
      this.#p.log.debug(`stream consumer: ${JSON.stringify(s)}`)
    }
  }
}
