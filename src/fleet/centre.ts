/**
 * The centre (a nats:// input): reads the stream in order and writes every host's lines into
 * one output file, exactly once, on the event loop. The pieces are the ones a local run uses:
 * the event-loop writer, and in front of it the time-order merge or the formatter
 * (engines/output.ts); the applier (applier.ts) decides what of each message to write, and a
 * checkpoint (centre-state.ts) records the output with the stream position to read again from.
 *
 * A message the stream no longer holds (deleted by limits or by hand, or the stream made
 * again) is an error with exit 9, never silence; --nats-skip-lost goes on past it after naming
 * what was lost. Behind the last checkpoint the stream is purged, so it holds only what the
 * centre has not made durable yet (one centre per stream: docs/fleet.md).
 */
import { statSync, truncateSync } from 'node:fs'
import {
  type ConsumerMessages,
  DeliverPolicy,
  type JetStreamManager,
  type JsMsg,
  jetstream,
  jetstreamManager,
  type StreamInfo,
} from '@nats-io/jetstream'
import type { NatsConnection } from '@nats-io/nats-core'
import type { Config } from '../config.js'
import type { EngineContext, EngineResult } from '../engines/engine.js'
import { outputChain } from '../engines/output.js'
import { LogmergeError } from '../errors.js'
import type { Logger } from '../log.js'
import { LoopWriter } from '../sink/loop-writer.js'
import { planOutput, quarantine, saveState } from '../state/checkpoint.js'
import { type Action, Applier, type GenState } from './applier.js'
import {
  CENTRE_FORMAT,
  CENTRE_VERSION,
  type CentreState,
  encodeCentreState,
  loadCentreState,
  type SavedGen,
  type SavedHost,
  tablesOf,
} from './centre-state.js'
import { connectFleet, natsError, startupRetry } from './connect.js'
import { decodeBatch } from './frame.js'
import type { FleetConfig } from './options.js'
import { ensureStream } from './stream.js'
import { hostToken } from './url.js'

/** Messages the client fetches ahead of the merge. */
const FETCH_MESSAGES = 64
/** A generation ended this long ago leaves the state (see #checkpointNow). */
const FORGET_ENDED_MS = 3600_000
/** A consumer that delivered nothing this long, with messages waiting, is replaced. */
const STALL_CHECK_MS = 5000
/** Purge the stream behind the checkpoint at most this often. */
const PURGE_EVERY_MS = 2000

/** A message read, until all its lines are in the output (for the resume position). */
interface Read {
  readonly seq: number
  readonly host: string
  /** The host's run and next number before this message (the state to resume with). */
  readonly before: { run: string; next: number } | null
  /** Each generation written by it, and the offset its bytes end at. */
  readonly writes: readonly { key: string; end: number }[]
}

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
  readonly #startedAt = new Date()
  /** The first sequence to read. */
  readonly #from: number
  /** With --once: the stream's last sequence at start (read up to it, then stop). */
  readonly #until: number
  /** No state: what the stream holds at start is adopted (see Applier). */
  readonly #adoptUntil: number
  #lastRead: number
  #streamLast: number
  #reads: Read[] = []
  /** When the consumer last delivered a message (for #watchdog). */
  #lastDelivery = Date.now()
  /** --order time: hosts in the stream whose first message is still to come (see #awaitHosts). */
  readonly #waitingHosts = new Map<string, () => void>()
  #fatal: Error | null = null
  readonly #failed = new AbortController()
  #checkpointing: Promise<void> = Promise.resolve()
  #lastPurge = 0
  #purged = 0
  #savedChanges = -1
  /** The resume position of the last checkpoint saved: the stream is purged up to it. */
  #savedResume = 0
  #changes = 0

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
    this.#lastRead = from - 1
    this.#streamLast = info.state.last_seq
    this.#until = info.state.last_seq
    this.#adoptUntil = saved ? (saved.stream.adoptUntil ?? 0) : info.state.last_seq
    this.#applier = new Applier(
      saved ? tablesOf(saved) : null,
      (gen, from, to) =>
        log.info(
          `${gen.host} ${gen.path}: bytes ${from}-${to} never came (the host started there); going on`,
        ),
      from <= this.#adoptUntil,
    )
  }

  static async start(
    config: Config,
    fleet: FleetConfig,
    nc: NatsConnection,
    jsm: JetStreamManager,
    info: StreamInfo,
    log: Logger,
  ): Promise<Centre> {
    const saved = config.statePath ? await recoverCentre(config, fleet, info, log) : null
    // An empty stream that never held a message says first_seq 0; sequences start at 1.
    const first = Math.max(1, info.state.first_seq)
    let from = saved ? saved.stream.resume : first
    if (saved && from > info.state.last_seq + 1) {
      throw streamLost(
        `stream ${fleet.url.stream} ends at message ${info.state.last_seq}, before message ${from - 1} the centre had read (the servers lost messages they had acknowledged)`,
      )
    }
    if (saved && from < first) {
      // Messages [from, first) are gone: unless the stream is simply empty past them.
      const lost = `messages ${from} to ${first - 1} of stream ${fleet.url.stream} were deleted before the centre merged them (stream limits, a purge, or another centre on the same stream)`
      if (!fleet.skipLost) throw streamLost(lost)
      log.error(
        `${lost}; going on from ${first} (--nats-skip-lost): their lines are not in ${config.output}`,
      )
      from = first
    }
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
    let messages: ConsumerMessages | null = null
    const onEnd = () => messages?.stop()
    ended.addEventListener('abort', onEnd)
    try {
      await this.checkpoint() // the output's identity before the first byte (as checkpoints.md)
      if (this.#config.order === 'time') await this.#awaitHosts(chain)
      const js = jetstream(this.#nc)
      let ready = false
      let done = once && this.#until < this.#from
      // One consumer after another: a consumer that stalls (see #watchdog) is replaced by a new
      // one from the next message to read.
      while (!done && !ended.aborted) {
        const consumer = await startupRetry(this.#fleet, this.#log, 'reading the stream', () =>
          js.consumers.get(this.#fleet.url.stream, {
            deliver_policy: DeliverPolicy.StartSequence,
            opt_start_seq: this.#lastRead + 1,
          }),
        )
        const current = await consumer.consume({ max_messages: FETCH_MESSAGES })
        messages = current
        void this.#watchConsumer(current)
        const watchdog = setInterval(() => void this.#watchdog(current), STALL_CHECK_MS)
        watchdog.unref()
        if (!ready && !once) events.emit('ready')
        ready = true
        if (ended.aborted) current.stop()
        try {
          for await (const m of current) {
            this.#lastDelivery = Date.now()
            await this.#take(m, chain, opened)
            if (once && m.seq >= this.#until) {
              done = true
              break
            }
            if (ended.aborted) break
          }
        } finally {
          clearInterval(watchdog)
          current.stop()
        }
        if (this.#fatal) break
      }
      if (this.#fatal) throw this.#fatal
      chain.finish() // what the time order still holds, before the final checkpoint
      if (chain.late > 0)
        this.#log.info(`--order time: ${chain.late} lines came later than the window`)
      await this.#writer.drain()
      if (this.#fatal) throw this.#fatal
      if (timer) await this.checkpoint()
    } finally {
      ended.removeEventListener('abort', onEnd)
      if (timer) clearInterval(timer)
      messages?.stop()
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

  /**
   * A consumer that delivers nothing while the stream holds messages past the last one read
   * (seen after a stream leader was killed: its pull requests kept expiring empty) is stopped;
   * run() makes a new one from the next message.
   */
  async #watchdog(current: ConsumerMessages): Promise<void> {
    if (Date.now() - this.#lastDelivery < STALL_CHECK_MS) return
    try {
      const info = await this.#jsm.streams.info(this.#fleet.url.stream)
      if (info.state.last_seq < this.#lastRead && info.created === this.#created) {
        // Messages the centre has read are not in the stream any more, and their sequence
        // numbers will be given to new messages, which would then look read: say so and stop.
        this.fail(
          streamLost(
            `stream ${this.#fleet.url.stream} now ends at message ${info.state.last_seq}, before message ${this.#lastRead} the centre has read (the servers lost messages they had acknowledged)`,
          ),
        )
        current.stop()
        return
      }
      if (info.state.last_seq <= this.#lastRead) return
      if (Date.now() - this.#lastDelivery < STALL_CHECK_MS) return
      this.#log.info(
        `stream ${this.#fleet.url.stream}: no message for ${STALL_CHECK_MS / 1000} s though it holds ${info.state.last_seq - this.#lastRead} past ${this.#lastRead}; reading again from ${this.#lastRead + 1}`,
      )
      this.#lastDelivery = Date.now()
      current.stop()
    } catch {
      // The servers do not answer: the client is reconnecting; looked at again later.
    }
  }

  /** The client's own notes on the consumer (recreated after a server went away...), for debug. */
  async #watchConsumer(messages: ConsumerMessages): Promise<void> {
    for await (const s of messages.status()) {
      if (s.type === 'heartbeat' || s.type === 'next') continue
      this.#log.debug(`stream consumer: ${JSON.stringify(s)}`)
    }
  }

  async #take(m: JsMsg, chain: ReturnType<typeof outputChain>, opened: Set<string>): Promise<void> {
    const seq = m.seq
    if (seq > this.#lastRead + 1) {
      const lost = `messages ${this.#lastRead + 1} to ${seq - 1} of stream ${this.#fleet.url.stream} were deleted before the centre read them (stream limits, a purge, or another centre on the same stream)`
      if (!this.#fleet.skipLost) {
        const info = await this.#jsm.streams.info(this.#fleet.url.stream).catch(() => null)
        this.#log.debug(`stream now: ${JSON.stringify(info?.state)}`)
        this.fail(streamLost(lost))
        return
      }
      this.#log.error(`${lost}; going on (--nats-skip-lost): their lines are not in the output`)
    }
    if (seq <= this.#lastRead) return // the consumer delivered it again
    this.#lastRead = seq
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
    this.#changes++
    if (verdict.kind === 'early') {
      this.#reads.push({ seq, host: meta.h, before, writes: [] })
      return
    }
    const writes: { key: string; end: number }[] = []
    this.#reads.push({ seq, host: meta.h, before, writes })
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

  /** One checkpoint after the running one (never two at once); a failure is a warning. */
  checkpoint(): Promise<void> {
    this.#checkpointing = this.#checkpointing.then(() => this.#checkpointNow())
    return this.#checkpointing
  }

  async #checkpointNow(): Promise<void> {
    const path = this.#config.statePath
    if (!path) return
    const changes = this.#changes + this.#writer.changes
    // Nothing new to record; the purge behind the last one may still be due.
    if (changes === this.#savedChanges) return this.#purge(this.#savedResume)
    const snap = this.#writer.snapshot()
    // Messages whose every line is now in the output are done; the first one that is not is
    // where a restart reads again (the hosts' run numbers as they were before it).
    while (this.#reads.length > 0) {
      const r = this.#reads[0] as Read
      if (!r.writes.every((w) => (snap.offsets.get(w.key) ?? -1) >= w.end)) break
      this.#reads.shift()
    }
    const resume = this.#reads[0]?.seq ?? this.#lastRead + 1
    const hosts: Record<string, SavedHost> = {}
    for (const [name, h] of this.#applier.hosts) {
      hosts[name] = {
        run: h.run,
        next: h.next,
        lastSeq: h.lastSeq,
        lastTime: h.lastTime ? new Date(h.lastTime).toISOString() : null,
        lines: h.lines,
      }
    }
    const seen = new Set<string>()
    for (const r of this.#reads) {
      if (seen.has(r.host)) continue
      seen.add(r.host)
      const h = hosts[r.host]
      if (!h) continue
      if (r.before) hosts[r.host] = { ...h, run: r.before.run, next: r.before.next }
      else delete hosts[r.host]
    }
    const generations: Record<string, SavedGen> = {}
    const forgetBefore = Date.now() - FORGET_ENDED_MS
    for (const [key, g] of this.#applier.gens) {
      // A generation its host ended (the file read to its end and let go) an hour ago will
      // not be sent again: the state does not grow by one entry per rotation forever.
      if (g.ended && g.lastTime < forgetBefore && !snap.offsets.has(key)) {
        this.#applier.gens.delete(key)
        continue
      }
      generations[key] = savedGen(g, snap.offsets.get(key))
    }
    const state: CentreState = {
      format: CENTRE_FORMAT,
      version: CENTRE_VERSION,
      savedAt: new Date().toISOString(),
      startedAt: this.#startedAt.toISOString(),
      pid: process.pid,
      output: snap.output && { path: this.#config.output, ...snap.output, size: snap.size },
      stream: {
        url: this.#fleet.url.display,
        name: this.#fleet.url.stream,
        created: this.#created,
        resume,
        read: this.#lastRead,
        ...(resume <= this.#adoptUntil && { adoptUntil: this.#adoptUntil }),
      },
      hosts,
      generations,
    }
    try {
      await this.#writer.fsync()
      await saveState(path, encodeCentreState(state))
      this.#savedChanges = changes
      this.#savedResume = resume
      this.#log.forget('checkpoint')
    } catch (err) {
      this.#log.warnOnce(
        'checkpoint',
        `cannot save state ${path}: ${(err as Error).message}; will retry`,
      )
      return
    }
    await this.#purge(resume)
  }

  /** Drops from the stream what the output holds for good (behind the saved checkpoint). */
  async #purge(upTo: number): Promise<void> {
    if (upTo <= this.#purged + 1 || Date.now() - this.#lastPurge < PURGE_EVERY_MS) return
    this.#lastPurge = Date.now()
    try {
      const r = await this.#jsm.streams.purge(this.#fleet.url.stream, { seq: upTo })
      this.#purged = upTo - 1
      this.#log.debug(
        `purged ${r.purged} messages of stream ${this.#fleet.url.stream} before ${upTo}`,
      )
    } catch (err) {
      this.#log.warnOnce(
        'purge',
        `cannot purge stream ${this.#fleet.url.stream}: ${(err as Error).message}`,
      )
    }
  }
}

function savedGen(g: GenState, written: number | undefined): SavedGen {
  return {
    applied: written ?? g.base,
    path: g.path,
    label: g.label,
    ended: g.ended,
    lastSeq: g.lastSeq,
    ...(g.lastTime > 0 && { lastTime: new Date(g.lastTime).toISOString() }),
  }
}

function streamLost(message: string): LogmergeError {
  return new LogmergeError('ESTREAM_LOST', message, {
    hint: 'give the stream room (--nats-max-bytes when it is created, or its limits), run one centre per stream; --nats-skip-lost goes on without those lines',
  })
}

/**
 * The centre's state, if usable: a bad one (or another output's, or another stream's) is moved
 * aside; the output is cut back to the recorded size (what came after is written again).
 */
async function recoverCentre(
  config: Config,
  fleet: FleetConfig,
  info: StreamInfo,
  log: Logger,
): Promise<CentreState | null> {
  const path = config.statePath as string
  const loaded = loadCentreState(path)
  if (loaded.kind === 'none') return null
  const aside = async (why: string) => {
    const to = await quarantine(path)
    log.warn(`state file ${path} ${why}; moved it to ${to} and starting afresh`)
    return null
  }
  if (loaded.kind === 'bad') return aside(`is unusable (${loaded.reason})`)
  const state = loaded.state
  if (state.output && state.output.path !== config.output) {
    return aside(`belongs to output ${state.output.path}, not ${config.output}`)
  }
  if (state.stream.name !== fleet.url.stream) {
    return aside(`was kept for stream ${state.stream.name}, not ${fleet.url.stream}`)
  }
  if (state.stream.created !== info.created) {
    const lost = `stream ${fleet.url.stream} was made again since the last checkpoint (created ${info.created}, the state says ${state.stream.created}): what the old one held from message ${state.stream.resume} on was not merged`
    if (!fleet.skipLost) throw streamLost(lost)
    log.error(`${lost}; going on (--nats-skip-lost)`)
    return {
      ...state,
      stream: { ...state.stream, created: info.created, resume: info.state.first_seq },
    }
  }
  const now = statSync(config.output, { throwIfNoEntry: false }) ?? null
  const plan = planOutput(state.output, now)
  if (plan.kind === 'truncate' && now && now.size > plan.size) {
    log.info(
      `output ${config.output}: dropping ${now.size - plan.size} bytes written after the last checkpoint; they are read again`,
    )
    truncateSync(config.output, plan.size)
  } else if (plan.kind === 'at-least-once') {
    log.warn(`${plan.why}: lines written after the last checkpoint may appear twice`)
  }
  return state
}
