/**
 * The daemon's metrics (docs/service.md, "Monitoring"): one registry for every job, served at
 * /metrics (--metrics-listen) and/or written to a file (--metrics-file). Loaded only when one
 * of them is asked for, so a run without metrics pays nothing for prom-client.
 *
 * Timers (unref'd, cleared by close()):
 * - the tick, every checkpoint interval (the jobs' shortest; at most 10 poll intervals): each
 *   job's fast sample, then the metrics file. A file forgotten by its reader (deleted, then not
 *   found by two directory searches, 30 sweeps apart) leaves the writer at least 30 poll
 *   intervals after its last line: a tick in between has counted that line.
 *   The metrics file is written at the tick when anything but the clock moved since the last
 *   one (lines, bytes, files, lag, errors, a checkpoint taken), else every FILE_IDLE_MS at
 *   least: like an unchanged checkpoint, an idle daemon does not format and replace the same
 *   numbers every second (that cost 0.3 % of a core, docs/service.md, "What it costs"); the
 *   process's own numbers (CPU, memory) and the file's mtime are at most that old.
 * - the refresh, every 5 poll intervals (the jobs' shortest), between 0.5 and 5 s: each job's
 *   slow part (reader summaries, a round of at most LAG_LOOKS lag looks).
 */
import type { EngineView } from '../engines/engine.js'
import { checkMetricsFileWritable } from '../guard.js'
import type { Job } from '../jobs.js'
import type { Logger } from '../log.js'
import { packageVersion } from '../package-files.js'
import { type Families, makeFamilies } from './families.js'
import { JobMetrics } from './job-metrics.js'
import { type MetricsServer, serveMetrics } from './server.js'
import type { MetricsSettings } from './settings.js'
import { MetricsFile } from './textfile.js'

/** The longest the metrics file goes without being written again (ms). */
export const FILE_IDLE_MS = 10_000

/** How often the slow part runs at most and at least (reader summaries, lag looks). */
export const REFRESH_MS = { most: 5000, least: 500 } as const

export class Metrics {
  readonly #families: Families
  readonly #jobs = new Map<string, JobMetrics>()
  readonly #log: Logger
  #server: MetricsServer | null = null
  #file: MetricsFile | null = null
  #tick: NodeJS.Timeout | null = null
  #refresh: NodeJS.Timeout | null = null
  #refreshing: Promise<void> | null = null
  #closed: Promise<void> | null = null
  /** A checkpoint was taken since the metrics file was last written. */
  #checkpointed = false
  /** The per-input series' text, as last made (see Families.inputs). */
  #inputsText = ''

  private constructor(families: Families, log: Logger) {
    this.#families = families
    this.#log = log
  }

  /**
   * Checks the file's directory and binds the server (an address that cannot be used is a
   * LogmergeError, exit 2), before any job starts; then the timers.
   */
  static async start(
    settings: MetricsSettings,
    jobs: readonly Job[],
    log: Logger,
  ): Promise<Metrics> {
    if (settings.file) checkMetricsFileWritable(settings.file)
    const metrics = new Metrics(makeFamilies(packageVersion()), log)
    for (const job of jobs) {
      metrics.#jobs.set(
        job.name,
        new JobMetrics(job.name, job.config, metrics.#families, settings.maxInputs),
      )
    }
    if (settings.listen) {
      metrics.#server = await serveMetrics(
        settings.listen,
        async () => ({
          body: await metrics.exposition(),
          contentType: metrics.#families.registry.contentType,
        }),
        log,
      )
    }
    if (settings.file)
      metrics.#file = new MetricsFile(settings.file, () => metrics.exposition(), log)
    const checkpointMs = Math.min(...jobs.map((j) => j.config.checkpointIntervalMs))
    const tickMs = Math.min(checkpointMs, ...jobs.map((j) => 10 * j.config.pollIntervalMs))
    let fileDue = 0
    let fileStale = 0
    metrics.#tick = setInterval(() => {
      const now = Date.now()
      try {
        for (const job of metrics.#jobs.values()) job.sample(now)
      } catch (err) {
        metrics.#warn(err as Error) // a metrics fault must never stop the jobs
      }
      const jobs = [...metrics.#jobs.values()]
      const moved = jobs.some((j) => j.changed) || metrics.#checkpointed
      if (metrics.#file && now >= fileDue && (moved || now >= fileStale)) {
        fileDue = now + checkpointMs - tickMs / 2
        fileStale = now + FILE_IDLE_MS - tickMs / 2
        for (const j of jobs) j.changed = false
        metrics.#checkpointed = false
        void metrics.#file.write()
      }
    }, tickMs)
    metrics.#tick.unref()
    const pollMs = Math.min(...jobs.map((j) => j.config.pollIntervalMs))
    const refreshMs = Math.min(REFRESH_MS.most, Math.max(REFRESH_MS.least, 5 * pollMs))
    metrics.#refresh = setInterval(() => void metrics.#refreshAll(), refreshMs)
    metrics.#refresh.unref()
    return metrics
  }

  /** Where the server listens, if it does. */
  get address() {
    return this.#server?.address ?? null
  }

  /** What the job's engine calls with its view (EngineContext.observe). */
  observer(job: Job): (view: EngineView) => void {
    return (view) => {
      this.#jobs.get(job.name)?.attach(view)
      view.checkpoints?.observe(() => {
        this.#checkpointed = true
      })
    }
  }

  /** A job follows its inputs now: its files and lag at once, not at the next refresh. */
  ready(): void {
    void this.#refreshAll()
  }

  /**
   * The exposition, every job sampled first (the Prometheus text format): the process's and
   * the jobs' series, then the per-input ones, formatted again only when one changed.
   */
  async exposition(): Promise<string> {
    const now = Date.now()
    for (const job of this.#jobs.values()) job.sample(now)
    const f = this.#families
    const head = await f.registry.metrics()
    if (f.inputsChanged) {
      f.inputsChanged = false // before: a change while it is formatted makes it again next time
      this.#inputsText = await f.inputs.metrics()
    }
    return this.#inputsText.trim() === '' ? head : `${head}\n${this.#inputsText}`
  }

  /** Stops the timers, writes the file one last time, closes the server. Idempotent. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      if (this.#tick) clearInterval(this.#tick)
      if (this.#refresh) clearInterval(this.#refresh)
      await this.#refreshing
      await this.#refreshAll()
      await this.#file?.write()
      await this.#server?.close()
    })()
    return this.#closed
  }

  #refreshAll(): Promise<void> {
    this.#refreshing ??= (async () => {
      try {
        for (const job of this.#jobs.values()) await job.refresh()
      } catch (err) {
        this.#warn(err as Error)
      } finally {
        this.#refreshing = null
      }
    })()
    return this.#refreshing
  }

  #warn(err: Error): void {
    this.#log.warnOnce('metrics-refresh', `metrics: ${err.message}`)
  }
}
