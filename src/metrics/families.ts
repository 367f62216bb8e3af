/**
 * Every metric logmerge exposes, in one place: names by Prometheus conventions (`logmerge_`
 * prefix, `_total` counters, base units: seconds and bytes), help texts, labels; and
 * prom-client's default process metrics. docs/service.md ("Monitoring") lists the same.
 *
 * The job label is `logmerge_job`, not `job`: Prometheus gives every scraped series a `job`
 * label of its own (the scrape job), and an exposed `job` would be renamed `exported_job`.
 */
import { readdirSync } from 'node:fs'
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'

export const JOB = 'logmerge_job'

/**
 * prom-client's default metrics that `promtool check metrics` rejects: gauges named `_total`
 * (counters' suffix). The same counts stay, by type, in nodejs_active_handles,
 * nodejs_active_requests and nodejs_active_resources.
 */
const LINT_FAILURES = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
]

/**
 * How often the event-loop delay is sampled, in ms. Each sample is a timer that wakes the loop:
 * prom-client's default, 10 ms, cost an idle process 0.67 % of a core on the machine of
 * docs/service.md ("What it costs"), 100 ms about 0.1 %. A block of the loop of 100 ms or more
 * is always seen; a shorter one in proportion to its length.
 */
export const EVENT_LOOP_PRECISION_MS = 100

/**
 * prom-client's process_open_fds lists /proc/self/fd at every collection: 9-16 ms with 10,000
 * files open, every second with --metrics-file. Ours counts at most this often (ms).
 */
export const OPEN_FDS_MS = 30_000

export type Families = ReturnType<typeof makeFamilies>

/**
 * Two registries: `registry` (the process and the jobs, a few dozen series) is collected at
 * every exposition; `inputs` (up to --metrics-max-inputs x 9 series a job) only when a value in
 * it changed (`inputsChanged`), and its text is kept in between: an idle daemon with the
 * metrics file writes the same per-input text every second without formatting it again.
 * One long list on purpose (about 130 lines): every family's name, help and labels in one
 * place, in the order an exposition prints them (docs/service.md lists the same).
 */
export function makeFamilies(version: string) {
  const registry = new Registry()
  collectDefaultMetrics({
    register: registry,
    eventLoopMonitoringPrecision: EVENT_LOOP_PRECISION_MS,
  })
  for (const name of [...LINT_FAILURES, 'process_open_fds']) registry.removeSingleMetric(name)
  openFds(registry)
  const inputs = new Registry()
  const registers = [registry]
  const input = [JOB, 'input'] as const
  const job = [JOB] as const
  const counter = <T extends string>(name: string, help: string, labelNames: readonly T[]) =>
    new Counter({ name, help, labelNames, registers })
  const gauge = <T extends string>(name: string, help: string, labelNames: readonly T[]) =>
    new Gauge({ name, help, labelNames, registers })
  const inputCounter = (name: string, help: string) =>
    new Counter({ name, help, labelNames: input, registers: [inputs] })
  const inputGauge = (name: string, help: string) =>
    new Gauge({ name, help, labelNames: input, registers: [inputs] })
  new Gauge({
    name: 'logmerge_build_info',
    help: 'The running logmerge: 1, with its version as a label.',
    labelNames: ['version'],
    registers,
  }).set({ version }, 1)
  return {
    registry,
    inputs,
    /** Set when a value in `inputs` changed since its text was last made. */
    inputsChanged: true,
    jobInfo: gauge(
      'logmerge_job_info',
      'A job of this daemon: 1, with its engine, order and output as labels.',
      [JOB, 'engine', 'order', 'output'],
    ),
    // Per input (the first --metrics-max-inputs inputs; the rest summed under input="other").
    lines: inputCounter(
      'logmerge_input_lines_total',
      'Lines of the input written to the output (each piece of a split line counts).',
    ),
    bytes: inputCounter(
      'logmerge_input_bytes_total',
      'Bytes of the input written to the output (newlines added to split or flushed lines included).',
    ),
    linesSplit: inputCounter(
      'logmerge_input_lines_split_total',
      'Lines of the input longer than --max-line-bytes, split into pieces.',
    ),
    truncations: inputCounter(
      'logmerge_input_truncations_total',
      'Times the input was seen truncated (copytruncate, `: > file`) and read again from its start.',
    ),
    rotations: inputCounter(
      'logmerge_input_rotations_total',
      "Times the input's name stopped leading to the file followed there (rename rotation, or deleted); the old file is read to its end.",
    ),
    copies: inputCounter(
      'logmerge_input_copytruncate_copies_total',
      "logrotate copytruncate copies of the input found after a truncation, the input's unread lines read from them.",
    ),
    late: inputCounter(
      'logmerge_input_late_lines_total',
      '--order time: lines of the input written after a later line (past the reorder window).',
    ),
    lagBytes: inputGauge(
      'logmerge_input_lag_bytes',
      'Bytes of the file now at the input name not yet in the output (looked at every few seconds).',
    ),
    lagSeconds: inputGauge(
      'logmerge_input_lag_seconds',
      "How long the input's oldest bytes not yet in the output have waited (0 while logmerge keeps up).",
    ),
    inputsSummed: gauge(
      'logmerge_inputs_summed',
      'Inputs counted under input="other" (over --metrics-max-inputs).',
      job,
    ),
    files: gauge(
      'logmerge_input_files',
      'Input files by state: open (followed, held open), parked (followed by name, closed to save descriptors), missing (input names that could not be opened at the last look).',
      [JOB, 'state'],
    ),
    // The output
    outputBytes: counter(
      'logmerge_output_bytes_total',
      'Bytes written to the output (with --format, as formatted).',
      job,
    ),
    writeErrors: counter(
      'logmerge_output_write_errors_total',
      'Failed writes to the output, by error code (a write retried ten times counts ten).',
      [JOB, 'code'],
    ),
    pauses: counter(
      'logmerge_output_pauses_total',
      'Times writing paused: waiting out an error (ENOSPC, EFBIG, EDQUOT, EIO), or for a removed output that could not be created again.',
      job,
    ),
    pausedSeconds: counter(
      'logmerge_output_paused_seconds_total',
      'Seconds writing spent paused (the pause under way included).',
      job,
    ),
    paused: gauge('logmerge_output_paused', '1 while writing is paused, else 0.', job),
    queued: gauge(
      'logmerge_output_queued_bytes',
      'Bytes read and waiting to be written (the event-loop writer; 0 for the locked writer).',
      job,
    ),
    // Checkpoints
    checkpointAge: gauge(
      'logmerge_checkpoint_age_seconds',
      'Seconds since the state file was last known to hold everything written (saved, or found up to date).',
      job,
    ),
    checkpointDuration: new Histogram({
      name: 'logmerge_checkpoint_duration_seconds',
      help: 'Time to take a checkpoint: snapshot, fsync of the output, atomic replacement of the state file.',
      labelNames: job,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    }),
    checkpointFailures: counter(
      'logmerge_checkpoint_failures_total',
      'Checkpoints that could not be saved (the previous one still holds; retried at the next interval).',
      job,
    ),
  }
}

/** process_open_fds as prom-client names it, counted at most every OPEN_FDS_MS. */
function openFds(registry: Registry): void {
  let counted = Number.NEGATIVE_INFINITY
  let fds = 0
  new Gauge({
    name: 'process_open_fds',
    help: `Number of open file descriptors (counted at most every ${OPEN_FDS_MS / 1000} s).`,
    registers: [registry],
    collect() {
      const now = performance.now()
      if (now - counted >= OPEN_FDS_MS) {
        counted = now
        try {
          fds = readdirSync('/proc/self/fd').length - 1 // the listing's own fd, closed since
        } catch {
          return // not Linux, or no /proc: no value
        }
      }
      this.set(fds)
    },
  })
}
