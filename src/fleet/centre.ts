/**
 * The centre (a nats:// input): reads the stream in order and writes every host's lines into
 * one output file, exactly once, on the event loop. The pieces are the ones a local run uses:
 * the event-loop writer, and in front of it the time-order merge or the formatter
 * (engines/output-chain.ts); the stream is read in order by stream-reader.ts, the applier
 * (applier.ts) decides what of each message to write, and a checkpoint (centre-checkpoint.ts)
 * records the output with the stream position to read again from (centre-recover.ts: start).
 *
 * A message the stream no longer holds (deleted by limits or by hand, or the stream made
 * again) is an error with exit 9, never silence; --nats-skip-lost goes on past it after naming
 * what was lost. Behind the last checkpoint the stream is purged, so it holds only what the
 * centre has not made durable yet (one centre per stream: docs/fleet.md).
 */
import {
  type JetStreamManager,
  type JsMsg,
  jetstreamManager,
  type StreamInfo,
} from '@nats-io/jetstream'
import type { NatsConnection } from '@nats-io/nats-core'
import type { Config } from '../config.js'
import type { EngineContext, EngineResult } from '../engines/engine.js'
import { outputChain } from '../engines/output-chain.js'
import type { Logger } from '../log.js'
import { LoopWriter } from '../sink/loop-writer.js'
import { type Action, Applier, type Gap, type Missing } from './applier.js'
import { CentreCheckpoints } from './centre-checkpoint.js'
import { startPoint, streamLost } from './centre-recover.js'
import { type CentreState, tablesOf } from './centre-state.js'
import { connectFleet, natsError, startupRetry } from './connect.js'
import { decodeBatch, WINDOW } from './frame.js'
import type { FleetConfig } from './options.js'
import { ensureStream } from './stream.js'
import { StreamReader } from './stream-reader.js'
import { hostToken } from './url.js'

/** The time order's hold on the whole --once snapshot (see run); no file has this key. */
const SNAPSHOT_KEY = '*snapshot*'

export async function runCentre({
  config,
  log,
  stop,
  events,
}: EngineContext): Promise<EngineResult> {
  const fleet = config.fleet as FleetConfig
  const nc = await connectFleet(fleet, log)
  try {
    const info = await ensureStream(nc, fleet, log)
    const jsm = await startupRetry(fleet, log, 'JetStream', () => jetstreamManager(nc))
    const centre = await Centre.start(config, fleet, nc, jsm, info, log)
    return await centre.run(stop, events)
  } catch (err) {
    throw natsError(err, fleet)
  } finally {
    await nc.close().catch(() => {})
  }
}

class Centre {
  readonly #config: Config
  readonly #fleet: FleetConfig
  readonly #nc: NatsConnection
  readonly #jsm: JetStreamManager
  readonly #log: Logger
  readonly #writer: LoopWriter
  readonly #applier: Applier
  readonly #created: string
  readonly #checkpoints: CentreCheckpoints
  /** The first sequence to read. */
  readonly #from: number
  /** With --once: the stream's last sequence at start (read up to it, then stop). */
  readonly #until: number
  /** No state: what the stream holds at start is adopted (see Applier). */
  readonly #adoptUntil: number
  #streamLast: number
  /** --order time: hosts in the stream whose first message is still to come (see #awaitHosts). */
  readonly #waitingHosts = new Map<string, () => void>()
  #fatal: Error | null = null
  readonly #failed = new AbortController()

  private constructor(
    config: Config,
    fleet: FleetConfig,
    nc: NatsConnection,
    jsm: JetStreamManager,
    info: StreamInfo,
    writer: LoopWriter,
    saved: CentreState | null,
    from: number,
    log: Logger,
  ) {
    this.#config = config
    this.#fleet = fleet
    this.#nc = nc
    this.#jsm = jsm
    this.#log = log
    this.#writer = writer
    this.#created = info.created
    this.#from = from
    this.#streamLast = info.state.last_seq
    this.#until = info.state.last_seq
    this.#adoptUntil = saved ? (saved.stream.adoptUntil ?? 0) : info.state.last_seq
    this.#applier = new Applier(
      saved ? tablesOf(saved) : null,
      (gap, lost) =>
        lost
          ? log.error(
              `${describeGap(gap)}; going on (--nats-skip-lost): those lines are not in the output`,
            )
          : log.info(`${describeGap(gap)} (begun before this centre knew the host); going on`),
      from <= this.#adoptUntil,
      fleet.skipLost,
      Date.now,
      (missing) =>
        log.error(
          `${describeMissing(missing)}; going on (--nats-skip-lost): the lines they held are not in the output`,
        ),
    )
    this.#checkpoints = new CentreCheckpoints(
      {
        config,
        fleet,
        jsm,
        log,
        writer,
        applier: this.#applier,
        created: info.created,
        startedAt: new Date(),
        adoptUntil: this.#adoptUntil,
        firstSeq: info.state.first_seq,
      },
      from - 1,
    )
  }

  /** The last message read (the checkpoints keep it: it is where a restart may resume). */
  get #lastRead(): number {
    return this.#checkpoints.lastRead
  }

  static async start(
    config: Config,
    fleet: FleetConfig,
    nc: NatsConnection,
    jsm: JetStreamManager,
    info: StreamInfo,
    log: Logger,
  ): Promise<Centre> {
    const { saved, from } = await startPoint(config, fleet, info, log)
    const writer = await LoopWriter.open(config.output, {
      highWaterBytes: config.highWaterBytes,
      log,
      onFatal: (err) => holder.centre?.fail(err),
      watchMs: config.pollIntervalMs,
      onSwitch: () => holder.centre?.checkpoint(),
    })
    const holder: { centre?: Centre } = {}
    holder.centre = new Centre(config, fleet, nc, jsm, info, writer, saved, from, log)
    return holder.centre
  }

  fail(err: Error): void {
    if (this.#fatal) return
    this.#fatal = err
    this.#failed.abort()
  }

  async run(stop: AbortSignal, events: NodeJS.EventEmitter): Promise<EngineResult> {
    const chain = outputChain(this.#config, this.#writer)
    const opened = new Set<string>()
    const ended = AbortSignal.any([stop, this.#failed.signal])
    const once = this.#config.once
    const timer = this.#config.statePath
      ? setInterval(() => void this.checkpoint(), this.#config.checkpointIntervalMs)
      : null
    timer?.unref()
    const reader = new StreamReader({
      nc: this.#nc,
      jsm: this.#jsm,
      fleet: this.#fleet,
      log: this.#log,
      created: this.#created,
      lastRead: () => this.#lastRead,
      fail: (err) => this.fail(err),
    })
    const onEnd = () => reader.stop()
    ended.addEventListener('abort', onEnd)
    try {
      await this.checkpoint() // the output's identity before the first byte (as checkpoints.md)
      if (this.#config.order === 'time') await this.#awaitHosts(chain)
      // --once --order time: the stream's messages up to #until are one snapshot, merged as a
      // whole (within the window, as any source that holds the others back). A host's first
      // message releases only its own hold; a file of it whose first message comes later in
      // the stream was written after every line it precedes (CI on Node 22: db-1's b.log after
      // all 1,500 other lines, its first message read after the others were merged).
      const snapshot = once && this.#config.order === 'time' ? SNAPSHOT_KEY : null
      if (snapshot) chain.opened(snapshot, snapshot)
      let ready = false
      const onConsumer = () => {
        if (!ready && !once) events.emit('ready')
        ready = true
      }
      if (!(once && this.#until < this.#from)) {
        for await (const m of reader.messages(ended, onConsumer)) {
          await this.#take(m, chain, opened)
          if (once && m.seq >= this.#until) break
          if (ended.aborted || this.#fatal) break
        }
      }
      if (this.#fatal) throw this.#fatal
      if (snapshot) chain.released(snapshot)
      chain.finish() // what the time order still holds, before the final checkpoint
      if (chain.late > 0)
        this.#log.info(`--order time: ${chain.late} lines came later than the window`)
      await this.#writer.drain()
      if (this.#fatal) throw this.#fatal
      if (timer) await this.checkpoint()
    } finally {
      ended.removeEventListener('abort', onEnd)
      if (timer) clearInterval(timer)
      reader.stop()
      // A failed save has said so already; the output is closed whatever happened to it.
      await this.#checkpoints.stop().catch(() => {})
      await this.#writer.close()
    }
    if (this.#fatal) throw this.#fatal
    return { unreadable: [] }
  }

  /**
   * --order time: every host with messages in the stream holds the others back (for at most the
   * reorder window) until its first message is read. Without this, the host whose messages come
   * first in the stream would be written before any other host's file is open in the merge.
   */
  async #awaitHosts(chain: ReturnType<typeof outputChain>): Promise<void> {
    const prefix = `${this.#fleet.url.stream}.`
    let subjects: Record<string, number> = {}
    try {
      // Retried like start-up's requests: on a loaded or electing cluster one may time out,
      // and without the list the first host in the stream would be written alone.
      const info = await startupRetry(this.#fleet, this.#log, "listing the stream's hosts", () =>
        this.#jsm.streams.info(this.#fleet.url.stream, { subjects_filter: `${prefix}>` }),
      )
      subjects = info.state.subjects ?? {}
    } catch (err) {
      this.#log.warn(
        `cannot list the hosts of stream ${this.#fleet.url.stream} (${(err as Error).message}): the first lines may be written before other hosts' earlier ones`,
      )
    }
    for (const subject of Object.keys(subjects)) {
      const token = subject.slice(prefix.length)
      const key = `${token}/*`
      chain.opened(key, key)
      this.#waitingHosts.set(token, () => chain.released(key))
    }
  }

  async #take(m: JsMsg, chain: ReturnType<typeof outputChain>, opened: Set<string>): Promise<void> {
    const seq = m.seq
    if (seq > this.#lastRead + 1 && !(await this.#passedDeleted(seq))) return
    if (seq <= this.#lastRead) return // the consumer delivered it again
    this.#checkpoints.lastRead = seq
    if (seq > this.#streamLast) this.#streamLast = seq
    if (seq > this.#adoptUntil) this.#applier.stopAdopting()
    let decoded: ReturnType<typeof decodeBatch>
    try {
      decoded = decodeBatch(m.data)
    } catch (err) {
      this.#log.warnOnce(
        'foreign-message',
        `stream ${this.#fleet.url.stream} message ${seq} (subject ${m.subject}) is not logmerge's: ${(err as Error).message}; skipped`,
      )
      return
    }
    const { meta, data } = decoded
    const host = this.#applier.hosts.get(meta.h)
    const before = host ? { run: host.run, next: host.next } : null
    const time = Math.floor(m.info.timestampNanos / 1e6)
    const verdict = this.#applier.take(seq, time, meta, data)
    this.#checkpoints.changed()
    if (verdict.kind === 'early') {
      this.#log.debug(
        `stream ${this.#fleet.url.stream} message ${seq}: ${meta.h} run ${meta.r} number ${meta.c} skipped, ${verdict.expected} expected first`,
      )
      this.#checkpoints.reads.push({ seq, host: meta.h, before, writes: [] })
      return
    }
    if (verdict.kind === 'stale') {
      this.#log.debug(
        `stream ${this.#fleet.url.stream} message ${seq}: ${meta.h} run ${meta.r} number ${meta.c} (an older run's) skipped: it would leave a gap the newer run fills`,
      )
      this.#checkpoints.reads.push({ seq, host: meta.h, before, writes: [] })
      return
    }
    if (verdict.kind === 'missing') {
      this.#checkpoints.lastRead = seq - 1 // as for 'lost': a restart meets it again
      this.fail(
        streamLost(
          `stream ${this.#fleet.url.stream} message ${seq}: ${describeMissing(verdict.missing)}`,
        ),
      )
      return
    }
    if (verdict.kind === 'lost') {
      // Not read: a checkpoint resumes at this message, and a restart meets the gap again.
      this.#checkpoints.lastRead = seq - 1
      this.fail(
        streamLost(
          `stream ${this.#fleet.url.stream} message ${seq}: ${describeGap(verdict.gap)}, though the centre followed that generation from its start (the host had them acknowledged)`,
        ),
      )
      return
    }
    const writes: { key: string; end: number }[] = []
    this.#checkpoints.reads.push({ seq, host: meta.h, before, writes })
    for (const action of verdict.actions) {
      const busy = this.#act(action, chain, opened, writes)
      if (busy) await busy
    }
    const token = hostToken(meta.h)
    const waiting = this.#waitingHosts.get(token)
    if (waiting) {
      this.#waitingHosts.delete(token)
      waiting()
    }
  }

  /**
   * Messages before `seq` and after the last one read are gone from the stream: false (the run
   * fails) unless --nats-skip-lost says to go on, after saying which.
   */
  async #passedDeleted(seq: number): Promise<boolean> {
    const lost = `messages ${this.#lastRead + 1} to ${seq - 1} of stream ${this.#fleet.url.stream} were deleted before the centre read them (stream limits, a purge, or another centre on the same stream)`
    if (!this.#fleet.skipLost) {
      const info = await this.#jsm.streams.info(this.#fleet.url.stream).catch(() => null)
      this.#log.debug(`stream now: ${JSON.stringify(info?.state)}`)
      this.fail(streamLost(lost))
      return false
    }
    this.#log.error(`${lost}; going on (--nats-skip-lost): their lines are not in the output`)
    return true
  }

  #act(
    action: Action,
    chain: ReturnType<typeof outputChain>,
    opened: Set<string>,
    writes: { key: string; end: number }[],
  ): Promise<void> | undefined {
    const { key, gen } = action
    if (!opened.has(key)) {
      opened.add(key)
      const path = `${gen.host}:${gen.path}`
      chain.labels.addTable({ [path]: `${gen.host}:${gen.label}` })
      chain.opened(key, path)
    }
    if (action.kind === 'end') {
      chain.released(key)
      opened.delete(key)
      return undefined
    }
    writes.push({ key, end: action.end })
    return chain.sink.write(action.bytes, {
      key,
      offset: action.end,
      ...(action.inserted.length > 0 && { inserted: action.inserted }),
    })
  }

  /** A checkpoint now, after the one running (centre-checkpoint.ts). */
  checkpoint(): Promise<void> {
    return this.#checkpoints.save()
  }
}

/** A gap in words, with the host's messages skipped as early before it (the likely cause). */
function describeMissing(m: Missing): string {
  const e = m.early
  const early = e ? ` (stream messages ${e.firstSeq}-${e.lastSeq} were skipped waiting for it)` : ''
  return `${m.host} run ${m.run}: its message number ${m.got} came, but number ${m.expected} never did${early}; the host sends a number only once every number ${WINDOW} or more before it is acknowledged, so the stream had number ${m.expected} and lost it (a server that lost its store?)`
}

function describeGap(gap: Gap): string {
  const e = gap.early
  const early = e
    ? ` (${e.count} message(s) of its run ${e.run} were skipped waiting for its number ${e.expected}, which never came: stream messages ${e.firstSeq}-${e.lastSeq})`
    : ''
  return `${gap.host} ${gap.path} (generation ${gap.id}): bytes ${gap.from}-${gap.to} never came${early}`
}
