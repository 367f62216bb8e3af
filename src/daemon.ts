/**
 * The lifecycle around the engines: one engine per job, all in this process, under one set of
 * signal handlers. SIGTERM/SIGINT drain every job and exit 0; SIGHUP reopens every job's
 * output; a job that fails for good stops the others (drained and checkpointed) and the daemon
 * exits with its code, for the service manager to restart it (docs/service.md says why).
 */
import { EventEmitter } from 'node:events'
import type { Config } from './config.js'
import type { EngineView } from './engines/engine.js'
import { engines } from './engines/index.js'
import { ExitCode, LogmergeError } from './errors.js'
import { prepareFleet } from './fleet/options.js'
import { capYoungGeneration, GarbageWatch } from './gc.js'
import { checkOutputNotInput, checkOutputWritable } from './guard.js'
import type { Job, Run } from './jobs.js'
import type { Logger } from './log.js'
import type { Notifier } from './sd-notify.js'
import { sourceStack } from './stack-sources.js'

export interface DaemonIO {
  /** The daemon's own diagnostics (signals, stopping). */
  readonly log: Logger
  /** A job's diagnostics (prefixed with its name when there are several jobs). */
  readonly logFor: (job: Job) => Logger
  /** systemd notifications, when running under Type=notify. */
  readonly notifier?: Notifier | null
}

/** One job from the command line (the shape before config files). */
export function runDaemon(config: Config, log: Logger): Promise<ExitCode> {
  const run: Run = {
    jobs: [{ name: 'main', config }],
    logLevel: config.logLevel,
    shutdownTimeoutMs: config.shutdownTimeoutMs,
    configPath: null,
    metrics: null,
  }
  return runJobs(run, { log, logFor: () => log })
}

/**
 * Exit codes from the most to the least severe: with several jobs the daemon exits with the
 * worst of theirs. A bug first, then the output (data stops flowing), lines lost from a fleet
 * stream, a reader thread, NATS refusing or unreachable, a usage problem found late (a missing
 * output directory), unreadable --once inputs, success.
 */
const SEVERITY: readonly ExitCode[] = [
  ExitCode.internal,
  ExitCode.io,
  ExitCode.streamLost,
  ExitCode.thread,
  ExitCode.natsAuth,
  ExitCode.natsUnreachable,
  ExitCode.usage,
  ExitCode.shutdownTimeout,
  ExitCode.inputs,
  ExitCode.ok,
]

export const worstOf = (codes: readonly ExitCode[]): ExitCode =>
  codes.reduce<ExitCode>(
    (worst, code) => (SEVERITY.indexOf(code) < SEVERITY.indexOf(worst) ? code : worst),
    ExitCode.ok,
  )

interface Running {
  readonly job: Job
  readonly log: Logger
  /** Aborted to drain and stop this job. */
  readonly stop: AbortController
  /** 'reopen' to the engine; 'ready' from it. */
  readonly events: EventEmitter
  /** With metrics on: takes the engine's view (EngineContext.observe). */
  readonly observe: ((view: EngineView) => void) | undefined
}

export async function runJobs(run: Run, io: DaemonIO): Promise<ExitCode> {
  const { log } = io
  for (const { config } of run.jobs) {
    if (config.fleet) prepareFleet(config)
    checkOutputNotInput(config.output, config.inputs)
    checkOutputWritable(config.output, config.statePath)
  }
  // Before any job starts: an address that cannot be listened on stops logmerge here (exit 2).
  const metrics = run.metrics
    ? await (await import('./metrics/index.js')).Metrics.start(run.metrics, run.jobs, log)
    : null
  // Each job its own controller and emitter: one shared by many engines would pass Node's
  // listener limit (10) and warn.
  const running: Running[] = run.jobs.map((job) => ({
    job,
    log: io.logFor(job),
    stop: new AbortController(),
    events: new EventEmitter(),
    observe: metrics?.observer(job),
  }))
  const stopping = new Stopping(run, running, io)
  stopping.listen()
  announceReady(running, io, () => stopping.draining || stopping.failed)
  for (const r of running) r.events.once('ready', () => metrics?.ready())
  const follows = run.jobs.some((j) => !j.config.once)
  const stopCapping = follows ? capYoungGeneration() : () => {}
  const stopWatching = follows ? new GarbageWatch().start() : () => {}
  try {
    const codes = await Promise.all(
      running.map((r) => runJob(r, (code) => stopping.jobFailed(r, code))),
    )
    return worstOf(codes)
  } finally {
    stopping.unlisten()
    stopCapping()
    stopWatching()
    io.notifier?.close()
    await metrics?.close() // the metrics file's last version: every job's final counts
  }
}

/**
 * How the daemon stops: SIGTERM or SIGINT drains every job (a second one exits at once);
 * SIGHUP reopens every job's output; a job that fails for good drains the others. A drain that
 * does not end within the shutdown timeout exits with its code: what was not written is not in
 * the checkpoint, so a restart reads it again.
 */
class Stopping {
  readonly #run: Run
  readonly #running: readonly Running[]
  readonly #io: DaemonIO
  #draining = false
  #signalled = false
  #failed = false
  readonly #onStop = (signal: NodeJS.Signals) => this.#stop(signal)
  readonly #onHup = () => this.#reopen()

  constructor(run: Run, running: readonly Running[], io: DaemonIO) {
    this.#run = run
    this.#running = running
    this.#io = io
  }

  /** Draining has begun. */
  get draining(): boolean {
    return this.#draining
  }

  /** Some job failed. */
  get failed(): boolean {
    return this.#failed
  }

  listen(): void {
    process.on('SIGTERM', this.#onStop)
    process.on('SIGINT', this.#onStop)
    process.on('SIGHUP', this.#onHup)
  }

  unlisten(): void {
    process.off('SIGTERM', this.#onStop)
    process.off('SIGINT', this.#onStop)
    process.off('SIGHUP', this.#onHup)
  }

  /** Job `r` failed with `code`: with several jobs, the others are drained and stopped. */
  jobFailed(r: Running, code: ExitCode): void {
    this.#failed = true
    if (this.#running.length < 2 || this.#draining) return
    this.#io.log.error(
      `job ${r.job.name} failed (exit ${code}): stopping the other jobs; they resume from their checkpoints when logmerge is started again`,
    )
    this.#drainAll('draining the other jobs')
  }

  #stop(signal: NodeJS.Signals): void {
    if (this.#signalled) {
      this.#io.log.warn(`${signal} again: exiting without draining`)
      process.exit(128 + (signal === 'SIGINT' ? 2 : 15))
    }
    this.#signalled = true
    this.#drainAll(`${signal}: draining and stopping`)
  }

  #reopen(): void {
    const several = this.#running.length > 1
    this.#io.log.info(several ? 'SIGHUP: reopening every output' : 'SIGHUP: reopening the output')
    for (const r of this.#running) r.events.emit('reopen')
  }

  #drainAll(why: string): void {
    if (this.#draining) return
    this.#draining = true
    const { log, notifier } = this.#io
    log.info(why)
    notifier?.stopping('draining')
    for (const r of this.#running) r.stop.abort()
    // The drain must end: a stuck output (a full disk that never clears) must not hang the stop.
    setTimeout(() => {
      log.error(
        `could not drain within ${this.#run.shutdownTimeoutMs} ms (is an output stuck?); exiting; unwritten lines are read again on restart`,
      )
      process.exit(ExitCode.shutdownTimeout)
    }, this.#run.shutdownTimeoutMs).unref()
  }
}

/** Runs one job's engine to its end; its exit code (a failure is reported here, one line). */
async function runJob(r: Running, onFailed: (code: ExitCode) => void) {
  const { config } = r.job
  try {
    // The fleet's centre (a nats:// input) runs on the event loop whatever the engine.
    const engine =
      config.fleet?.role === 'centre'
        ? (await import('./fleet/centre.js')).runCentre
        : await engines[config.engine]()
    const result = await engine({
      config,
      log: r.log,
      stop: r.stop.signal,
      events: r.events,
      ...(r.observe && { observe: r.observe }),
    })
    if (config.once && result.unreadable.length > 0) {
      r.log.error(
        `could not read ${result.unreadable.length} input(s): ${result.unreadable.join(', ')}`,
      )
      return ExitCode.inputs
    }
    return ExitCode.ok
  } catch (err) {
    const code = report(err, r.log)
    onFailed(code)
    return code
  } finally {
    r.log.debug('job ended')
    r.events.emit('ended')
  }
}

/** Logs a job's fatal error and returns its exit code. */
function report(err: unknown, log: Logger): ExitCode {
  if (err instanceof LogmergeError) {
    // The output's reader hung up (`logmerge ... | head`): stop quietly, like cat.
    if (err.code === 'EOUTPUT_CLOSED') return err.exitCode
    log.error(`${err.message}${err.hint ? ` (${err.hint})` : ''}`)
    return err.exitCode
  }
  log.error(
    `internal error (a bug: please report it): ${sourceStack((err as Error)?.stack ?? String(err))}`,
  )
  return ExitCode.internal
}

/**
 * READY=1 once every job follows its inputs (or has ended: a --once job); not when draining has
 * begun (a job failed at start-up: systemd then sees a failed start).
 */
function announceReady(running: readonly Running[], io: DaemonIO, draining: () => boolean): void {
  let waiting = running.length
  const one = () => {
    waiting--
    if (waiting > 0 || draining()) return
    const names = running.map((r) => r.job.name).join(', ')
    const status = running.length > 1 ? `following: ${running.length} jobs (${names})` : 'following'
    io.log.info(`ready: ${status}`)
    io.notifier?.ready(status)
  }
  for (const r of running) {
    let counted = false
    const once = () => {
      if (counted) return
      counted = true
      one()
    }
    r.events.once('ready', once)
    r.events.once('ended', once)
  }
}
