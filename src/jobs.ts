/**
 * What one run of logmerge does: one job from the command line, or the jobs of a config file,
 * with the flags given on the command line laid over them. Checked as a whole here (each job,
 * then the jobs against each other) so `check-config` and the daemon refuse the same things.
 */
import { dirname, resolve } from 'node:path'
import { type Config, defaults, type Options, resolveConfig, settings } from './config.js'
import type { ConfigFile, FileJob } from './config-file.js'
import { errors, LogmergeError } from './errors.js'
import { isFleetUrl } from './fleet/url.js'
import { checkJobs } from './guard.js'
import type { Level } from './log.js'
import { type MetricsOptions, type MetricsSettings, metricsSettings } from './metrics/settings.js'

export interface Job {
  /** Its name in the config (`main` for a run without one); prefixes its diagnostics. */
  readonly name: string
  readonly config: Config
}

export interface Run {
  readonly jobs: readonly Job[]
  /** The daemon's: one stderr, one drain. */
  readonly logLevel: Level
  readonly shutdownTimeoutMs: number
  /** The config file the jobs come from, or null. */
  readonly configPath: string | null
  /** --metrics-listen / --metrics-file (one endpoint and file for every job), or null. */
  readonly metrics: MetricsSettings | null
}

/** The options that belong to the whole daemon: allowed on the command line with several jobs. */
const DAEMON_OPTIONS: readonly (keyof Options)[] = [
  'logLevel',
  'shutdownTimeout',
  'metricsListen',
  'metricsFile',
  'metricsMaxInputs',
]

/**
 * @param cli    the command line's options (commander's defaults included)
 * @param given  which of them were given on the command line (`inputs` when paths were)
 */
export function resolveRun(
  file: ConfigFile | null,
  cli: Options,
  given: ReadonlySet<keyof Options>,
  cwd = process.cwd(),
): Run {
  if (file === null) {
    const config = resolveConfig(cli, cwd)
    return {
      jobs: [{ name: 'main', config }],
      logLevel: config.logLevel,
      shutdownTimeoutMs: config.shutdownTimeoutMs,
      configPath: null,
      metrics: metricsSettings(cli, cwd),
    }
  }
  const overrides = overridesFrom(cli, given, cwd)
  if (file.jobs.length > 1) refusePerJobFlags(file, given)
  // The flags are checked on their own first, so an error in one is not blamed on the file.
  settings(overrides, cwd)
  const logLevel = (overrides.logLevel ?? file.logLevel ?? defaults.logLevel) as Level
  const shutdownTimeout = overrides.shutdownTimeout ?? file.shutdownTimeout
  const metrics = metricsSettings({ ...file.metrics, ...definedOnly(overrides) }, cwd)
  const problems: string[] = []
  const jobs: Job[] = []
  for (const entry of file.jobs) {
    const options: Options = {
      ...entry.options,
      ...overrides,
      logLevel,
      shutdownTimeout,
      inputs: overrides.inputs ?? entry.options.inputs ?? [],
    }
    const job = resolveJob(entry, options, file.path, problems)
    if (job) jobs.push(job)
  }
  if (problems.length === 0) {
    problems.push(
      ...checkJobs(
        jobs.map((job, i) => ({
          where: file.jobs[i]?.where || 'top level',
          name: job.name,
          output: job.config.output,
          inputs: job.config.inputs,
          statePath: job.config.statePath,
        })),
      ),
    )
  }
  if (problems.length > 0) throw errors.config(file.path, problems)
  const first = jobs[0] as Job
  return {
    jobs,
    logLevel,
    shutdownTimeoutMs: first.config.shutdownTimeoutMs,
    configPath: file.path,
    metrics,
  }
}

/** The metrics options given on the command line (they win over the file's). */
function definedOnly(o: Partial<Options>): MetricsOptions {
  const out: MetricsOptions = {}
  if (o.metricsListen !== undefined) out.metricsListen = o.metricsListen
  if (o.metricsFile !== undefined) out.metricsFile = o.metricsFile
  if (o.metricsMaxInputs !== undefined) out.metricsMaxInputs = o.metricsMaxInputs
  return out
}

/** One job of the file, or null after noting its problems. */
function resolveJob(
  entry: FileJob,
  options: Options,
  file: string,
  problems: string[],
): Job | null {
  const at = entry.where ? `${entry.where}.` : ''
  if (options.inputs.length === 0) {
    problems.push(
      `${at}inputs: missing: each job needs "inputs", a list of files, directories or globs${entry.where ? '' : ' (or give them on the command line)'}`,
    )
    return null
  }
  try {
    // Relative paths in the file are relative to its directory; the flags' were made absolute.
    const config = resolveConfig(options, dirname(file))
    return { name: entry.name, config }
  } catch (err) {
    if (!(err instanceof LogmergeError)) throw err
    const hint = err.hint ? ` (${err.hint})` : ''
    problems.push(`${entry.where || 'top level'}: ${err.message}${hint}`)
    return null
  }
}

/** The options given on the command line, their paths made absolute against `cwd`. */
function overridesFrom(
  cli: Options,
  given: ReadonlySet<keyof Options>,
  cwd: string,
): Partial<Options> {
  const out: Record<string, unknown> = {}
  for (const key of given) out[key] = cli[key]
  if (
    typeof cli.output === 'string' &&
    given.has('output') &&
    cli.output !== '-' &&
    !isFleetUrl(cli.output)
  ) {
    out.output = resolve(cwd, cli.output)
  }
  if (typeof cli.state === 'string' && given.has('state')) out.state = resolve(cwd, cli.state)
  if (given.has('inputs')) out.inputs = cli.inputs.map((p) => (isFleetUrl(p) ? p : resolve(cwd, p)))
  return out as Partial<Options>
}

/** With several jobs a flag like --output would mean every job: refuse it, say what to do. */
function refusePerJobFlags(file: ConfigFile, given: ReadonlySet<keyof Options>): void {
  const perJob = [...given].filter((key) => !DAEMON_OPTIONS.includes(key))
  if (perJob.length === 0) return
  const names = file.jobs.map((j) => j.name).join(', ')
  throw errors.usage(
    `${perJob.map(flagOf).join(', ')} cannot be used with ${file.path}: it has ${file.jobs.length} jobs (${names}) and ${perJob.length === 1 ? 'this applies' : 'these apply'} to one job`,
    'set it in the file, in a job or at its top level for every job; only --log-level, --shutdown-timeout and the --metrics-* flags go with several jobs',
  )
}

/** The flag an option comes from, for messages. */
export function flagOf(key: keyof Options): string {
  if (key === 'inputs') return 'input paths'
  if (key === 'labels') return '--label'
  return `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`
}
