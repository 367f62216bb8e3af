/**
 * The centre's checkpoints: at one instant, the output's size and identity, every
 * generation's offset as written (the writer moves the size and the offsets together), the
 * first stream message not yet entirely in the output, and each host's run and next number as
 * of that message. Saved as for files (fsync the output, then replace the state file
 * atomically); then the messages before that one are deleted from the stream, so it holds only
 * what the output has not made durable yet. One checkpoint at a time; a failure is a warning,
 * retried.
 *
 * Each message is deleted by itself, never by a purge of the stream up to a sequence:
 * nats-server before 2.9.18 (Debian 12's 2.9.10) applies a purge that a restarted server
 * replays from its log as "every message up to the stream's last one when the purge was
 * made", not up to the sequence asked for (fixed upstream by commit dee5324, June 2023). A
 * server killed and started again soon after a purge (before its log was compacted) so
 * deleted messages the centre had not read, and once it led the stream they were gone for
 * everyone: the 200-kill fleet soak of 2026-12-07 00:17 (messages 5084-6264, the stream's last
 * one when the centre purged before 5084) and the 11:53 soak before it. A deletion of one
 * message is replayed as that message only.
 */
import { JetStreamApiError, type JetStreamManager } from '@nats-io/jetstream'
import type { Config } from '../config.js'
import type { Logger } from '../log.js'
import type { LoopWriter } from '../sink/loop-writer.js'
import { saveState } from '../state/checkpoint.js'
import { type Applier, FORGET_ENDED_MS, type GenState } from './applier.js'
import {
  CENTRE_FORMAT,
  CENTRE_VERSION,
  type CentreState,
  encodeCentreState,
  type SavedGen,
  type SavedHost,
} from './centre-state.js'
import type { FleetConfig } from './options.js'

/** Delete the messages behind the checkpoint at most this often. */
const PURGE_EVERY_MS = 2000
/** Deletions under way at once (each is a request to the stream's leader). */
const DELETE_CONCURRENCY = 32
/** The server's answer to a deletion of a message that is not there (deleted already). */
const SEQUENCE_NOT_FOUND = 10043

/** A message read, until all its lines are in the output (for the resume position). */
export interface Read {
  readonly seq: number
  readonly host: string
  /** The host's run and next number before this message (the state to resume with). */
  readonly before: { run: string; next: number } | null
  /** Each generation written by it, and the offset its bytes end at. */
  readonly writes: readonly { key: string; end: number }[]
}

export interface CentreParts {
  readonly config: Config
  readonly fleet: FleetConfig
  readonly jsm: JetStreamManager
  readonly log: Logger
  readonly writer: LoopWriter
  readonly applier: Applier
  /** The stream's creation time (a stream made again is another stream). */
  readonly created: string
  readonly startedAt: Date
  /** No state at start: what the stream held up to here was adopted (see Applier). */
  readonly adoptUntil: number
  /** The stream's first message at start (those before it are gone already). */
  readonly firstSeq: number
}

export class CentreCheckpoints {
  /** Messages read whose lines are not all in the output yet, in stream order. */
  readonly reads: Read[] = []
  /** The last message read (the resume position when every read is written). */
  lastRead: number
  readonly #p: CentreParts
  #running: Promise<void> = Promise.resolve()
  #changes = 0
  #savedChanges = -1
  /** The resume position of the last checkpoint saved: messages before it are deleted. */
  #savedResume = 0
  #lastPurge = 0
  /** Every message up to this one is deleted. */
  #purged: number
  /** The output is closing: no checkpoint starts any more (see stop). */
  #stopped = false

  constructor(parts: CentreParts, lastRead: number) {
    this.#p = parts
    this.lastRead = lastRead
    this.#purged = Math.max(0, parts.firstSeq - 1)
  }

  /** Something a checkpoint records changed (a message taken). */
  changed(): void {
    this.#changes++
  }

  /** One checkpoint after the running one (never two at once). */
  save(): Promise<void> {
    this.#running = this.#running.then(() => this.#saveNow())
    return this.#running
  }

  /**
   * Waits for the checkpoint under way and starts none after it: the output is about to be
   * closed. A checkpoint asked for later (the interval's, a leader switch's) would fsync a
   * closed descriptor ("cannot save state ...: EBADF", seen after an exit 9), or, had the
   * descriptor number been reused, record offsets of an output never synced.
   */
  stop(): Promise<void> {
    this.#stopped = true
    return this.#running
  }

  async #saveNow(): Promise<void> {
    const { config, writer, log } = this.#p
    const path = config.statePath
    if (!path || this.#stopped) return
    const changes = this.#changes + writer.changes
    // Nothing new to record; the purge behind the last one may still be due.
    if (changes === this.#savedChanges) return this.#purge(this.#savedResume)
    const state = this.#state()
    try {
      await writer.fsync()
      await saveState(path, encodeCentreState(state))
      this.#savedChanges = changes
      this.#savedResume = state.stream.resume
      log.forget('checkpoint')
    } catch (err) {
      log.warnOnce('checkpoint', `cannot save state ${path}: ${(err as Error).message}; will retry`)
      return
    }
    await this.#purge(state.stream.resume)
  }

  #state(): CentreState {
    const { config, fleet, writer } = this.#p
    const snap = writer.snapshot()
    // Messages whose every line is now in the output are done; the first one that is not is
    // where a restart reads again (the hosts' run numbers as they were before it).
    while (this.reads.length > 0) {
      const r = this.reads[0] as Read
      if (!r.writes.every((w) => (snap.offsets.get(w.key) ?? -1) >= w.end)) break
      this.reads.shift()
    }
    const resume = this.reads[0]?.seq ?? this.lastRead + 1
    return {
      format: CENTRE_FORMAT,
      version: CENTRE_VERSION,
      savedAt: new Date().toISOString(),
      startedAt: this.#p.startedAt.toISOString(),
      pid: process.pid,
      output: snap.output && { path: config.output, ...snap.output, size: snap.size },
      stream: {
        url: fleet.url.display,
        name: fleet.url.stream,
        created: this.#p.created,
        resume,
        read: this.lastRead,
        ...(resume <= this.#p.adoptUntil && { adoptUntil: this.#p.adoptUntil }),
      },
      hosts: this.#savedHosts(),
      generations: this.#savedGenerations(snap.offsets),
    }
  }

  /**
   * Each host as a restart at the resume position must see it: a host with a message not yet
   * done (see #state) as it was before that message, or not at all when it was new then.
   */
  #savedHosts(): Record<string, SavedHost> {
    const hosts: Record<string, SavedHost> = {}
    const { applier } = this.#p
    for (const [name, h] of applier.hosts) {
      hosts[name] = {
        run: h.run,
        next: h.next,
        lastSeq: h.lastSeq,
        lastTime: h.lastTime ? new Date(h.lastTime).toISOString() : null,
        lines: h.lines,
        ...(h.from !== undefined && { from: h.from }),
      }
    }
    const seen = new Set<string>()
    for (const r of this.reads) {
      if (seen.has(r.host)) continue
      seen.add(r.host)
      const h = hosts[r.host]
      if (!h) continue
      if (r.before) hosts[r.host] = { ...h, run: r.before.run, next: r.before.next }
      else delete hosts[r.host]
    }
    return hosts
  }

  /** Each generation with the offset the output holds of it (`offsets`, the writer's). */
  #savedGenerations(offsets: ReadonlyMap<string, number>): Record<string, SavedGen> {
    const { writer, applier } = this.#p
    const generations: Record<string, SavedGen> = {}
    const forgetBefore = Date.now() - FORGET_ENDED_MS
    for (const [key, g] of applier.gens) {
      // A generation its host ended (the file read to its end and let go) an hour ago will
      // not be sent again: the state does not grow by one entry per rotation forever, nor the
      // writer's offsets (nothing else makes it forget one: the centre's merge never does).
      if (g.ended && g.lastTime < forgetBefore) {
        applier.gens.delete(key)
        writer.forget(key)
        continue
      }
      generations[key] = savedGen(g, offsets.get(key))
    }
    return generations
  }

  /**
   * Drops from the stream what the output holds for good (the messages before `upTo`, the
   * saved checkpoint's resume position), one deletion per message (see the header). What got
   * deleted without a gap below it counts; the rest is tried again next time.
   */
  async #purge(upTo: number): Promise<void> {
    if (upTo <= this.#purged + 1 || Date.now() - this.#lastPurge < PURGE_EVERY_MS) return
    this.#lastPurge = Date.now()
    const { jsm, fleet, log } = this.#p
    const from = this.#purged + 1
    const done = new Set<number>()
    let next = from
    let failure: Error | null = null
    const deleting = async () => {
      while (failure === null && next < upTo && !this.#stopped) {
        const seq = next++
        try {
          await jsm.streams.deleteMessage(fleet.url.stream, seq, false)
          done.add(seq)
        } catch (err) {
          if (err instanceof JetStreamApiError && err.code === SEQUENCE_NOT_FOUND) done.add(seq)
          else failure ??= err as Error
        }
      }
    }
    await Promise.all(
      Array.from({ length: Math.min(DELETE_CONCURRENCY, upTo - from) }, () => deleting()),
    )
    while (done.has(this.#purged + 1)) this.#purged++
    if (this.#purged >= from) {
      log.debug(
        `purged messages ${from} to ${this.#purged} of stream ${fleet.url.stream} (each deleted by itself)`,
      )
    }
    if (failure) {
      const { message } = failure as Error
      log.warnOnce('purge', `cannot delete messages of stream ${fleet.url.stream}: ${message}`)
    } else log.forget('purge')
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
