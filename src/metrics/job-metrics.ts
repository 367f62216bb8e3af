/**
 * One job's metrics, from what its engine already knows (EngineView): the writer's per-source
 * totals and output size, its health, the checkpointer, and the readers' table summaries. No
 * hook in the follow path: the numbers are read when asked.
 *
 * Two speeds, so following 10,000 idle files costs next to nothing:
 * - sample(), before every scrape or metrics file and on the daemon's tick: the writer's
 *   change count first; only when it moved, a snapshot and the per-input counters. Idle, one
 *   comparison.
 * - refresh(), every few seconds: the readers' summaries (files open, parked, missing;
 *   rotations and copies per name), and a round of lag looks (lag-looks.ts: a bounded number
 *   of stats, whatever the number of files).
 */
import type { Config } from '../config.js'
import type { EngineView } from '../engines/engine.js'
import { WRITE_ERROR_CODES } from '../sink/output-file.js'
import type { OutputHealth, SourceStats } from '../sink/sink.js'
import { loadState } from '../state/checkpoint.js'
import { identityKey } from '../tail/cursor.js'
import { makeMatcher } from '../tail/inputs.js'
import { type Families, JOB } from './families.js'
import { InputLabels } from './input-labels.js'
import { LagLooks } from './lag-looks.js'
import { type Counts, SourceTally, zeroCounts } from './source-tally.js'

export class JobMetrics {
  readonly name: string
  readonly #f: Families
  readonly #job: { readonly [JOB]: string }
  readonly #order: Config['order']
  readonly #labels: InputLabels
  readonly #tally: SourceTally
  readonly #started = Date.now()
  #view: EngineView | null = null
  /** The writer's change count at the last sample. */
  #seen = Number.NaN
  /** Identity key -> its input label, once its path is known. */
  readonly #keyLabel = new Map<string, string>()
  /** Identity key -> the input name looked at for its lag (when its path is one). */
  readonly #keyName = new Map<string, string>()
  /** The writer's offsets at the last snapshot (for the lag). */
  #offsets: ReadonlyMap<string, number> = new Map()
  readonly #lag = new LagLooks()
  /** Labels whose series exist. */
  readonly #inputLabels = new Set<string>()
  /** Per input name: rotations and copies counted so far (the readers' totals). */
  readonly #events = new Map<string, { rotations: number; copies: number }>()
  #health: OutputHealth | null = null
  /** Files open, parked, missing as last set. */
  #files = ''
  /**
   * Something but the clock moved since the owner last cleared this (the metrics file is
   * written again at once then; otherwise every few intervals: see index.ts).
   */
  changed = true

  constructor(name: string, config: Config, families: Families, maxInputs: number) {
    this.name = name
    this.#f = families
    this.#job = { [JOB]: name }
    this.#order = config.order
    const exclude = config.output === '-' ? undefined : config.output
    this.#labels = new InputLabels(makeMatcher(config.inputs, exclude), maxInputs)
    this.#tally = new SourceTally(restoredStats(config))
    families.jobInfo.set(
      { ...this.#job, engine: config.engine, order: config.order, output: config.output },
      1,
    )
    families.inputsSummed.set(this.#job, 0)
  }

  /** The engine's view, once it has a writer and readers (EngineContext.observe). */
  attach(view: EngineView): void {
    this.#view = view
    const f = this.#f
    const job = this.#job
    for (const c of [f.outputBytes, f.pauses, f.pausedSeconds]) c.inc(job, 0)
    for (const code of WRITE_ERROR_CODES) f.writeErrors.inc({ ...job, code }, 0)
    for (const state of ['open', 'parked', 'missing']) f.files.set({ ...job, state }, 0)
    if (view.checkpoints) {
      f.checkpointFailures.inc(job, 0)
      f.checkpointDuration.zero(job)
      view.checkpoints.observe(({ ok, seconds }) => {
        if (ok) f.checkpointDuration.observe(job, seconds)
        else f.checkpointFailures.inc(job)
      })
    }
    this.sample()
  }

  /** The fast part: output health, checkpoint age, and the per-input counters if anything moved. */
  sample(now = Date.now()): void {
    const view = this.#view
    if (!view) return
    this.#takeHealth(view.health())
    if (view.checkpoints) {
      const current = view.checkpoints.currentAt ?? this.#started
      this.#f.checkpointAge.set(this.#job, Math.max(0, (now - current) / 1000))
    }
    const changes = view.changes()
    if (changes === this.#seen) return
    this.#seen = changes
    this.changed = true
    const snap = view.snapshot()
    // Every source the writer knows has its series, written to yet or not.
    this.#labelNew(view, snap.offsets)
    const grown = new Map<string, Counts>()
    for (const [key, stats] of snap.stats) {
      const label = this.#keyLabel.get(key)
      if (label === undefined) continue // its path is on its way: counted at a later sample
      let into = grown.get(label)
      if (into === undefined) {
        into = zeroCounts()
        grown.set(label, into)
      }
      this.#tally.take(key, stats, into)
    }
    this.#tally.keepOnly(snap.offsets)
    for (const key of this.#keyLabel.keys()) {
      if (snap.offsets.has(key)) continue
      this.#keyLabel.delete(key)
      this.#keyName.delete(key)
    }
    for (const [key, offset] of snap.offsets) {
      const name = this.#keyName.get(key)
      if (name !== undefined && this.#offsets.get(key) !== offset) this.#lag.moved(name)
    }
    this.#offsets = snap.offsets
    const f = this.#f
    for (const [label, c] of grown) {
      if (c.lines + c.bytes + c.linesSplit + c.truncations + c.late > 0) f.inputsChanged = true
      const labels = { ...this.#job, input: label }
      f.lines.inc(labels, c.lines)
      f.bytes.inc(labels, c.bytes)
      f.linesSplit.inc(labels, c.linesSplit)
      f.truncations.inc(labels, c.truncations)
      if (this.#order === 'time') f.late.inc(labels, c.late)
    }
  }

  /** The slow part: the readers' summaries and a round of lag looks. */
  async refresh(now = Date.now()): Promise<void> {
    const view = this.#view
    if (!view) return
    const summaries = await view.readers()
    const files = { open: 0, parked: 0, missing: 0 }
    const events = new Map<string, { rotations: number; copies: number }>()
    for (const s of summaries) {
      files.open += s.open
      files.parked += s.parked
      files.missing += s.missing
      for (const n of s.names) {
        const e = events.get(n.path) ?? { rotations: 0, copies: 0 }
        e.rotations += n.rotations
        e.copies += n.copies
        events.set(n.path, e)
      }
    }
    const f = this.#f
    const counted = `${files.open} ${files.parked} ${files.missing}`
    if (counted !== this.#files) {
      this.#files = counted
      this.changed = true
      for (const [state, n] of Object.entries(files)) f.files.set({ ...this.#job, state }, n)
    }
    for (const [path, e] of events) {
      const last = this.#events.get(path) ?? { rotations: 0, copies: 0 }
      if (e.rotations === last.rotations && e.copies === last.copies) continue
      const labels = { ...this.#job, input: this.#labelFor(path) }
      f.rotations.inc(labels, Math.max(0, e.rotations - last.rotations))
      f.copies.inc(labels, Math.max(0, e.copies - last.copies))
      f.inputsChanged = true
      this.changed = true
      this.#events.set(path, e)
    }
    this.#lookForLag(now)
  }

  /** Labels the sources seen for the first time (their paths, from the engine). */
  #labelNew(view: EngineView, offsets: ReadonlyMap<string, number>): void {
    let unknown: Map<string, number> | null = null
    for (const [key, offset] of offsets) {
      if (this.#keyLabel.has(key)) continue
      unknown ??= new Map()
      unknown.set(key, offset)
    }
    if (unknown === null) return
    for (const [key, path] of view.paths(unknown)) {
      this.#keyLabel.set(key, this.#labelFor(path))
      if (this.#lag.has(path)) this.#keyName.set(key, path)
    }
  }

  /** The label of a file first seen at `path`; its input name is looked at for the lag. */
  #labelFor(path: string): string {
    const name = this.#labels.nameOf(path)
    const label = this.#labels.labelOf(name)
    this.#initInput(label)
    if (this.#labels.isInput(name)) this.#lag.add(name, label)
    this.#f.inputsSummed.set(this.#job, this.#labels.summed)
    return label
  }

  /** A label's series exist from its first appearance (at 0), so rate() sees every increase. */
  #initInput(label: string): void {
    if (this.#inputLabels.has(label)) return
    this.#inputLabels.add(label)
    const f = this.#f
    f.inputsChanged = true
    const labels = { ...this.#job, input: label }
    for (const c of [f.lines, f.bytes, f.linesSplit, f.truncations, f.rotations, f.copies]) {
      c.inc(labels, 0)
    }
    if (this.#order === 'time') f.late.inc(labels, 0)
    f.lagBytes.set(labels, 0)
    f.lagSeconds.set(labels, 0)
  }

  /** A round of lag looks; the labels whose lag changed are set. */
  #lookForLag(now: number): void {
    for (const [label, lag] of this.#lag.look(now, this.#offsets)) {
      const labels = { ...this.#job, input: label }
      this.#f.lagBytes.set(labels, lag.bytes)
      this.#f.lagSeconds.set(labels, lag.seconds)
      this.#f.inputsChanged = true
      this.changed = true
    }
  }

  /** The writer's totals -> counters (what they grew by), and its state -> gauges. */
  #takeHealth(h: OutputHealth): void {
    const f = this.#f
    const job = this.#job
    const last = this.#health
    if (
      last === null ||
      h.bytes !== last.bytes ||
      h.pauses !== last.pauses ||
      h.paused !== last.paused ||
      h.queuedBytes !== last.queuedBytes ||
      h.errors.some((n, i) => n !== last.errors[i])
    ) {
      this.changed = true
    }
    // Only what moved: an idle tick then costs a few comparisons.
    const more = (key: 'bytes' | 'pauses' | 'pausedSeconds') => h[key] - (last?.[key] ?? 0)
    if (more('bytes') > 0) f.outputBytes.inc(job, more('bytes'))
    if (more('pauses') > 0) f.pauses.inc(job, more('pauses'))
    if (more('pausedSeconds') > 0) f.pausedSeconds.inc(job, more('pausedSeconds'))
    for (const [i, code] of WRITE_ERROR_CODES.entries()) {
      const failed = (h.errors[i] ?? 0) - (last?.errors[i] ?? 0)
      if (failed > 0) f.writeErrors.inc({ ...job, code }, failed)
    }
    if (h.paused !== last?.paused) f.paused.set(job, h.paused ? 1 : 0)
    if (h.queuedBytes !== last?.queuedBytes) f.queued.set(job, h.queuedBytes)
    this.#health = h
  }
}

/**
 * The totals each file's counting resumes from: the state file's, when it belongs to this
 * job's output (as recover() decides; a state it moves aside restarts every count at 0).
 */
function restoredStats(config: Config): Map<string, SourceStats> {
  const out = new Map<string, SourceStats>()
  if (config.statePath === null) return out
  const loaded = loadState(config.statePath)
  if (loaded.kind !== 'ok') return out
  const { state } = loaded
  if (state.output && state.output.path !== config.output) return out
  // A file recorded without stats (an older state) resumes its counts from 0.
  const none: SourceStats = {
    lines: 0,
    linesSplit: 0,
    truncations: 0,
    pendingBytes: 0,
    lastActivity: 0,
  }
  for (const s of state.sources) out.set(identityKey(s), s.stats ?? none)
  return out
}
