/**
 * Takes checkpoints: every interval and at shutdown. Each one is a consistent snapshot from the
 * writer, then an fsync of the output, then an atomic replacement of the state file; never two
 * at once. A failed checkpoint is a warning (the previous one still holds), not the end.
 */
import { checkpointSaved } from '../gc.js'
import type { Logger } from '../log.js'
import type { Snapshot, SourceStats, StateLines } from '../sink/sink.js'
import type { LineMaker } from '../sink/source-slots.js'
import { identityKey } from '../tail/cursor.js'
import { base64Of, KEEPS_LINE, keepsItsLine, type SourceState } from '../tail/source-state.js'
import { encodeStateLines, type OutputState, saveState, sourceLine } from './checkpoint.js'

export interface Checkpointable {
  /** Output size, its identity, and each source's offset, taken at one instant. */
  snapshot(): Snapshot
  /** The sources as the readers know them, with those offsets; null: not now, try later. */
  sources(offsets: ReadonlyMap<string, number>): SourceState[] | null
  /** Makes every byte written so far durable. */
  fsync(): Promise<void>
  /** A count that moves whenever anything a checkpoint records may have changed. */
  changes(): number
  /**
   * The thread engines' locked writer: snapshot and sources in one, each source's line made
   * again only when it moved (LockedWriter.stateLines, with toldLines). Null: not now (as
   * sources). When given, snapshot and sources are not used for checkpoints.
   */
  stateLines?(): StateLines | null
}

/** What one checkpoint saves, as taken (see Checkpointer.#take). */
interface Taken {
  readonly output: OutputState | null
  readonly lines: readonly string[]
  readonly writer?: unknown
  readonly onSaved?: () => void
}

/** One checkpoint taken (or that failed), for metrics. */
export interface CheckpointTaken {
  readonly ok: boolean
  /** From the snapshot to the state file replaced (fsync included). */
  readonly seconds: number
}

/**
 * The reader-thread engines' sources for a checkpoint: each source the writer has an offset for
 * (`offsets`, from one snapshot), as its thread last described it (`told`, from the threads'
 * 'source' messages, by identity key), at that offset. Null when the writer counts a source no
 * message has described yet (one may be on its way): the checkpoint is put off, never taken
 * without it, since a source left out of the state is read again from --from after a crash.
 * The fingerprint stays the one the thread sent until the checkpointer puts the writer's in
 * its place (Snapshot.heads): the one recorded with the offset.
 */
export function sourcesAt(
  told: ReadonlyMap<string, SourceState>,
  offsets: ReadonlyMap<string, number>,
): SourceState[] | null {
  const out: SourceState[] = []
  for (const [key, offset] of offsets) {
    const known = told.get(key)
    if (!known) return null
    out.push({ ...known, offset })
  }
  return out
}

/**
 * The thread engines' sources for a checkpoint taken line by line (LockedWriter.stateLines):
 * each source as its thread last described it (`told`), at its slot's offset, with its slot's
 * fingerprint and stats: sourcesAt's record as savedRecord completes it, field for field.
 */
export function toldLines(told: ReadonlyMap<string, SourceState>): LineMaker<SourceState> {
  return {
    basis: (key) => told.get(key),
    line: (desc, offset, bytes, stats) =>
      JSON.stringify({ ...desc, offset, head: bytes ? base64Now(bytes) : desc.head, stats }),
  }
}

/** `bytes` in base64, made each time (for fingerprints read out of shared memory). */
const base64Now = (bytes: Uint8Array): string =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('base64')

/** Where a record that keeps its line keeps the record made from it last (see savedRecord). */
const SAVED = Symbol('record saved')

interface Saved {
  readonly head: string
  readonly stats: SourceStats | undefined
  readonly record: SourceState
}

/**
 * A reader's record with what the writer holds of that source at the snapshot's offset: its
 * fingerprint (Snapshot.heads) and its stats. The reader's record itself when the fingerprint
 * is the same and there are no stats. For a record given again while unchanged (KEEPS_LINE:
 * the event-loop engines' FileIndex records), the record made last time, line and all, while
 * the fingerprint and the writer's stats object are the same: the writer keeps a source's
 * stats object until its next write, and every source written to since start, or restored from
 * a state file, has one. The thread engines' records and stats are new each snapshot: made
 * anew, nothing kept.
 */
function savedRecord(s: SourceState, snap: Pick<Snapshot, 'heads' | 'stats'>): SourceState {
  const key = identityKey(s)
  const stats = snap.stats.get(key)
  const kept = KEEPS_LINE in s
  // The fingerprint that goes with the offset, where the writer keeps it (SourceMark.head):
  // the cursor's own on the event-loop engines (base64 made once), a copy out of shared memory
  // each snapshot on the thread engines.
  const bytes = snap.heads?.get(key)
  const head = !bytes ? s.head : kept ? base64Of(bytes) : base64Now(bytes)
  if (head === s.head && !stats) return s
  if (!kept) return stats ? { ...s, head, stats } : { ...s, head }
  const last = (s as { [SAVED]?: Saved })[SAVED]
  if (last !== undefined && last.head === head && last.stats === stats) return last.record
  const record = keepsItsLine(stats ? { ...s, head, stats } : { ...s, head })
  Object.defineProperty(s, SAVED, { value: { head, stats, record }, writable: true })
  return record
}

/** How long checkpoints may be put off for an undescribed source before a warning. */
export const PUT_OFF_WARN_MS = 30_000

/**
 * The most of the main thread's time periodic checkpoints may take: after a checkpoint of N
 * sources, the next periodic one comes no sooner than N x CHECKPOINT_MS_PER_SOURCE x (1 / share
 * - 1) later, whatever the interval. A checkpoint snapshots and encodes every source (10,000
 * sources: 1.1 MB of state, 60-200 ms on the 2-vCPU machine, longer under load), and at a 1 s
 * interval that took a core's fifth from a busy daemon and held its reader threads at the
 * writer's lock (start-up of 10,000 files: the main thread spent most of its time in
 * checkpoints). Reckoned from the number of sources, not from a clock: timed, a loaded
 * machine's slow disk and preemptions spaced the checkpoints of 3 sources seconds apart (3
 * writers at 2,000 lines/s, --checkpoint-interval 100ms, load 17-20: gaps of 1.5-3.9 s), which
 * widens what must still be on disk at a restart (a copytruncate copy written over in place).
 * Up to about 7,000 sources the default 1 s interval holds; 10,000 are checkpointed every 1.35 s.
 * Checkpoints asked for (a new file, a reopen, the last one) are never put off.
 */
export const CHECKPOINT_TIME_SHARE = 0.1
/** What a checkpoint costs the main thread per source (ms; measured 6-20 µs). */
export const CHECKPOINT_MS_PER_SOURCE = 0.015

export class Checkpointer {
  readonly path: string
  readonly #output: string
  readonly #from: Checkpointable
  readonly #log: Logger
  #running: Promise<void> = Promise.resolve()
  #timer: NodeJS.Timeout | null = null
  #queued: Promise<void> | null = null
  /** The change count the last saved checkpoint was taken at. */
  #savedChanges = -1
  readonly #startedAt = new Date()
  /** When the state file was last known to match the writer: saved, or found unchanged. */
  #currentAt: number | null = null
  readonly #observers: ((taken: CheckpointTaken) => void)[] = []
  /** Since when checkpoints are put off for a source not described yet (see #saveNow). */
  #putOffSince: number | null = null
  /** No periodic checkpoint before this time (performance.now(); see CHECKPOINT_TIME_SHARE). */
  #periodicFrom = 0
  /** A checkpoint is being taken. */
  #saving = false

  constructor(path: string, output: string, from: Checkpointable, log: Logger) {
    this.path = path
    this.#output = output
    this.#from = from
    this.#log = log
  }

  /**
   * When the state file was last known to hold everything written (ms since epoch): the
   * snapshot time of the last checkpoint saved, or the time one found nothing new to save.
   * Null before the first. Its age is how much a crash would make logmerge write again.
   */
  get currentAt(): number | null {
    return this.#currentAt
  }

  /** Calls `fn` after each checkpoint saved or failed (not the ones skipped as unchanged). */
  observe(fn: (taken: CheckpointTaken) => void): void {
    this.#observers.push(fn)
  }

  /** Checkpoints every `ms` until stop(), or less often when they are slow (CHECKPOINT_TIME_SHARE). */
  start(ms: number): void {
    this.#timer = setInterval(() => {
      // Not queued behind one under way either: its end sets when the next may come.
      if (this.#queued === null && !this.#saving && performance.now() >= this.#periodicFrom)
        void this.save()
    }, ms)
    this.#timer.unref()
  }

  /**
   * A checkpoint, after the running one. Calls while one is already waiting share it (a burst of
   * new files asks once); skipped when nothing changed since the last one saved.
   */
  save(): Promise<void> {
    if (this.#queued) return this.#queued
    const next = this.#running.then(async () => {
      this.#queued = null
      this.#saving = true
      try {
        await this.#saveNow()
      } finally {
        this.#saving = false
      }
    })
    this.#queued = next
    this.#running = next
    return next
  }

  async #saveNow(): Promise<void> {
    const changes = this.#from.changes()
    if (changes === this.#savedChanges) {
      this.#currentAt = Date.now()
      return // idle: costs one comparison
    }
    const began = Date.now()
    const t0 = performance.now()
    const taken = this.#take()
    if (taken === null) {
      // Put off until the readers have described every source, which takes a message or two.
      // For longer, something counts a source nobody will describe: say so, as checkpoints
      // that silently stop make every crash from then on resume from an old state.
      this.#putOffSince ??= Date.now()
      const seconds = Math.round((Date.now() - this.#putOffSince) / 1000)
      if (seconds * 1000 >= PUT_OFF_WARN_MS)
        this.#log.warnOnce(
          'checkpoint-put-off',
          `checkpoints of ${this.path} put off for ${seconds} s: the writer counts a source no reader described (a bug: please report it with this message)`,
        )
      return
    }
    if (this.#putOffSince !== null) this.#log.forget('checkpoint-put-off')
    this.#putOffSince = null
    const costMs = taken.lines.length * CHECKPOINT_MS_PER_SOURCE
    try {
      await this.#from.fsync()
      const text = encodeStateLines(
        taken.output,
        taken.lines,
        this.#startedAt,
        undefined,
        undefined,
        taken.writer,
      )
      await saveState(this.path, text)
      this.#savedChanges = changes
      this.#currentAt = began
      taken.onSaved?.()
      checkpointSaved() // its garbage, collected soon after the first one (gc.ts)
      this.#log.forget('checkpoint')
      this.#tell(true, t0, costMs)
    } catch (err) {
      this.#log.warnOnce(
        'checkpoint',
        `cannot save state ${this.path}: ${(err as Error).message}; will retry`,
      )
      this.#tell(false, t0, costMs)
    }
  }

  /** The output at one instant and every source's line at its offset; null: put off. */
  #take(): Taken | null {
    const at = (output: Snapshot['output'], size: number): OutputState | null =>
      output && { path: this.#output, ...output, size }
    if (this.#from.stateLines) {
      const got = this.#from.stateLines()
      return got && { output: at(got.output, got.size), lines: got.lines }
    }
    const snap = this.#from.snapshot()
    const known = this.#from.sources(snap.offsets)
    if (known === null) return null
    return {
      output: at(snap.output, snap.size),
      lines: known.map((s) => sourceLine(savedRecord(s, snap))),
      writer: snap.writer,
      onSaved: snap.onSaved,
    }
  }

  #tell(ok: boolean, t0: number, costMs: number): void {
    const now = performance.now()
    this.#periodicFrom = now + costMs * (1 / CHECKPOINT_TIME_SHARE - 1)
    const taken = { ok, seconds: (now - t0) / 1000 }
    for (const fn of this.#observers) fn(taken)
  }

  /** Stops the timer and takes the last checkpoint. */
  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer)
    this.#timer = null
    await this.save()
  }
}
