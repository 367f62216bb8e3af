/**
 * The resolved configuration every engine runs from, and the one place options are validated.
 * The user's options (strings from the command line) are kept apart from the resolved Config.
 */
import { availableParallelism, hostname } from 'node:os'
import { resolve } from 'node:path'
import { errors } from './errors.js'
import {
  type FleetConfig,
  type FleetOptions,
  fleetConfig,
  hostStatePath,
  refuseHostSettings,
} from './fleet/options.js'
import { isFleetUrl, parseFleetUrl } from './fleet/url.js'
import { LEVELS, type Level } from './log.js'
import { DEFAULT_WINDOW_MS } from './order/time-order.js'
import { defaultStatePath } from './state/checkpoint.js'
import { type InputSpec, parseInput } from './tail/inputs.js'
import {
  parseTimestampFormat,
  parseZone,
  type TimestampFormat,
  type Zone,
} from './time/timestamps.js'

export const ENGINES = ['async', 'threads', 'top-down', 'bottom-up'] as const
export type EngineName = (typeof ENGINES)[number]

export const ORDERS = ['arrival', 'time'] as const
export type Order = (typeof ORDERS)[number]

/** How a line is written: as read, `<source> <line>`, or one JSON object (issue 5 builds them). */
export const FORMATS = ['raw', 'prefix', 'json'] as const
export type Format = (typeof FORMATS)[number]

/**
 * The smallest value each numeric option takes, shared by the flags and the config file's keys.
 * Keyed by the option's name (the config key).
 */
export const MINIMUM = {
  maxLineBytes: 1024,
  pollInterval: 10,
  readChunk: 4096,
  threads: 1,
  checkpointInterval: 10,
  shutdownTimeout: 100,
  reorderWindow: 0,
} as const

/** Engines where every thread writes under the lock: no single place sees every line. */
const LOCKED_WRITER_ENGINES: readonly EngineName[] = ['threads', 'bottom-up']

/** What the user may give (all optional but the inputs), as commander hands it over. */
export interface Options extends FleetOptions {
  inputs: string[]
  output?: string
  once?: boolean
  from?: string
  engine?: string
  order?: string
  maxLineBytes?: string | number
  pollInterval?: string | number
  readChunk?: string | number
  threads?: string | number
  logLevel?: string
  /** A path, or false for --no-state. */
  state?: string | false
  /** Where default state files go (config file only; default: $STATE_DIRECTORY, or beside the output). */
  stateDirectory?: string
  checkpointInterval?: string | number
  shutdownTimeout?: string | number
  /** --format: raw, prefix or json. */
  format?: string
  /** Label name -> the input path it names (--label NAME=PATH, repeatable). */
  labels?: Readonly<Record<string, string>>
  timestampFormat?: string
  /** Zone of times written without one (utc, local, +hh:mm). */
  timestampZone?: string
  reorderWindow?: string | number
  /** --progress / --no-progress (absent: when stderr is a terminal, with --once). */
  progress?: boolean
  /** Daemon-wide (src/metrics/settings.ts): where /metrics is served, the metrics file, the bound on input series. */
  metricsListen?: string
  metricsFile?: string
  metricsMaxInputs?: string | number
}

export interface Config {
  readonly inputs: readonly InputSpec[]
  /** Absolute path of the output file, or '-' for stdout. */
  readonly output: string
  readonly once: boolean
  readonly from: 'start' | 'end'
  readonly engine: EngineName
  readonly order: Order
  /** Longest output line including its newline; longer ones are split. */
  readonly maxLineBytes: number
  /** How often a reader looks at its file when no event woke it. */
  readonly pollIntervalMs: number
  /** Largest single read from an input. */
  readonly readChunkBytes: number
  /** Bytes queued for the output before readers wait. */
  readonly highWaterBytes: number
  /** Reads in flight at once (async engine). */
  readonly readConcurrency: number
  readonly threads: number
  readonly logLevel: Level
  /** The state file for exactly-once restarts, or null (no checkpoints). */
  readonly statePath: string | null
  readonly checkpointIntervalMs: number
  /** After SIGTERM/SIGINT, how long draining may take before logmerge gives up. */
  readonly shutdownTimeoutMs: number
  /** --format: how each line is written (absent: raw). */
  readonly format?: Format
  /** --label: label name -> absolute path of the input it names. */
  readonly labels?: Readonly<Record<string, string>>
  /** --timestamp-format: how to find the time in a line (for --order time; absent: auto). */
  readonly timestampFormat?: TimestampFormat
  /** --timestamp-zone: the zone of times written without one (absent: UTC). */
  readonly timestampZone?: Zone
  /** --reorder-window: how long --order time holds lines back to put them in order. */
  readonly reorderWindowMs?: number
  /** --progress/--no-progress; absent: a progress bar with --once when stderr is a terminal. */
  readonly progress?: boolean
  /**
   * A nats:// output (this run is a host: it publishes its lines to a stream) or input (the
   * centre: it merges a stream into the output). docs/fleet.md.
   */
  readonly fleet?: FleetConfig
}

export const defaults = {
  maxLineBytes: 1024 * 1024,
  pollIntervalMs: 1000,
  readChunkBytes: 1024 * 1024,
  highWaterBytes: 16 * 1024 * 1024,
  readConcurrency: 64,
  logLevel: 'warn' as Level,
  checkpointIntervalMs: 1000,
  shutdownTimeoutMs: 30_000,
}

export function resolveConfig(options: Options, cwd = process.cwd()): Config {
  if (options.inputs.length === 0) {
    throw errors.usage('no input files given', 'name at least one file, directory or glob')
  }
  const fleet = fleetConfig(options.inputs, options.output, options, cwd, integerOption)
  const rest = settings(options, cwd)
  if (fleet) refuseHostSettings(fleet, rest)
  return {
    // The centre's one input is the stream, not a file.
    inputs: fleet?.role === 'centre' ? [] : options.inputs.map((given) => parseInput(given, cwd)),
    ...rest,
    ...(fleet && { fleet }),
  }
}

/** Everything but the inputs, checked (also on its own: the flags given with --config). */
export function settings(options: Omit<Options, 'inputs'>, cwd: string): Omit<Config, 'inputs'> {
  const once = options.once ?? false
  const output =
    options.output === undefined || options.output === '-'
      ? '-'
      : isFleetUrl(options.output)
        ? parseFleetUrl(options.output, '--output').display
        : resolve(cwd, options.output)
  const engine = oneOf('--engine', options.engine, ENGINES, 'async')
  const order = oneOf('--order', options.order, ORDERS, 'arrival')
  validateOrder(engine, order)
  const maxLineBytes = integerOption(
    '--max-line-bytes',
    options.maxLineBytes,
    defaults.maxLineBytes,
    MINIMUM.maxLineBytes,
  )
  return {
    output,
    once,
    from: oneOf('--from', options.from, ['start', 'end'] as const, once ? 'start' : 'end'),
    engine,
    order,
    maxLineBytes,
    pollIntervalMs: durationOption(
      '--poll-interval',
      options.pollInterval,
      defaults.pollIntervalMs,
      MINIMUM.pollInterval,
    ),
    readChunkBytes: integerOption(
      '--read-chunk',
      options.readChunk,
      defaults.readChunkBytes,
      MINIMUM.readChunk,
    ),
    highWaterBytes: Math.max(defaults.highWaterBytes, 4 * maxLineBytes),
    readConcurrency: defaults.readConcurrency,
    threads: integerOption('--threads', options.threads, availableParallelism(), MINIMUM.threads),
    logLevel: oneOf('--log-level', options.logLevel, LEVELS, defaults.logLevel),
    statePath: statePathFor(options, output, once, cwd),
    checkpointIntervalMs: durationOption(
      '--checkpoint-interval',
      options.checkpointInterval,
      defaults.checkpointIntervalMs,
      MINIMUM.checkpointInterval,
    ),
    shutdownTimeoutMs: durationOption(
      '--shutdown-timeout',
      options.shutdownTimeout,
      defaults.shutdownTimeoutMs,
      MINIMUM.shutdownTimeout,
    ),
    ...reserved(options, cwd),
  }
}

/**
 * The output and time-order options (docs/time-order.md): checked, absent when not given (the
 * engines then use their defaults: raw, auto, UTC, DEFAULT_WINDOW_MS).
 */
function reserved(options: Omit<Options, 'inputs'>, cwd: string): Partial<Config> {
  const out: {
    format?: Format
    labels?: Readonly<Record<string, string>>
    timestampFormat?: TimestampFormat
    timestampZone?: Zone
    reorderWindowMs?: number
    progress?: boolean
  } = {}
  if (options.format !== undefined) out.format = oneOf('--format', options.format, FORMATS, 'raw')
  if (options.labels !== undefined) {
    out.labels = Object.fromEntries(
      Object.entries(options.labels).map(([name, path]) => [name, resolve(cwd, path)]),
    )
  }
  if (options.timestampFormat !== undefined) {
    out.timestampFormat = parseTimestampFormat(options.timestampFormat, '--timestamp-format')
  }
  if (options.timestampZone !== undefined) {
    out.timestampZone = parseZone(options.timestampZone, '--timestamp-zone')
  }
  if (options.reorderWindow !== undefined) {
    out.reorderWindowMs = durationOption(
      '--reorder-window',
      options.reorderWindow,
      DEFAULT_WINDOW_MS,
      MINIMUM.reorderWindow,
    )
  }
  if (options.progress !== undefined) out.progress = options.progress
  return out
}

/**
 * --state PATH, --no-state, or the default: beside the output (or in $STATE_DIRECTORY) when
 * following into a file. stdout cannot be truncated on restart and --once is usually a one-off,
 * so those keep no state unless asked.
 */
function statePathFor(
  options: Omit<Options, 'inputs'>,
  output: string,
  once: boolean,
  cwd: string,
): string | null {
  const given = options.state
  if (given === false) return null
  if (typeof given === 'string') return resolve(cwd, given)
  if (once) return null
  if (isFleetUrl(options.output)) {
    // A host has no output file to keep its state beside (fleet/options.ts).
    const url = parseFleetUrl(options.output, '--output')
    const dir = options.stateDirectory && resolve(cwd, options.stateDirectory)
    return hostStatePath(url, options.hostId ?? hostname(), dir).path
  }
  // A config file's stateDirectory names the directory for every process reading the file
  // alike: the service (which also has $STATE_DIRECTORY) and `logmerge status --config`.
  const dir = options.stateDirectory
  return dir === undefined
    ? defaultStatePath(output)
    : defaultStatePath(output, { STATE_DIRECTORY: resolve(cwd, dir) })
}

/** Time order needs one place that sees every line before it is written. */
export function validateOrder(engine: EngineName, order: Order): void {
  if (order !== 'time') return
  if (LOCKED_WRITER_ENGINES.includes(engine)) {
    throw errors.usage(
      `\`--order time\` cannot run on the ${engine} engine: its reader threads write straight to the output under a lock, so no single place sees every line to sort them`,
      'use --engine async (or top-down), where one event loop owns the writer',
    )
  }
}

function oneOf<T extends string>(
  flag: string,
  value: string | undefined,
  allowed: readonly T[],
  fallback: T,
): T {
  const v = value ?? fallback
  if (!(allowed as readonly string[]).includes(v)) {
    throw errors.usage(`Expected \`${flag}\` to be one of ${allowed.join(', ')}, got \`${v}\``)
  }
  return v as T
}

/** Parses an integer option; accepts size suffixes k, M, G (powers of 1024) for byte counts. */
export function integerOption(
  flag: string,
  value: string | number | undefined,
  fallback: number,
  min: number,
): number {
  return numericOption(flag, value, fallback, min, parseSize, `an integer >= ${min}`)
}

/**
 * Parses a time option: milliseconds (`500`), or a number with a unit (`500ms`, `2s`, `1m`,
 * `1h`). Before, these went through parseSize, so `2m` meant two mebi-milliseconds (35 min).
 */
export function durationOption(
  flag: string,
  value: string | number | undefined,
  fallback: number,
  min: number,
): number {
  const expected = `a time of at least ${min} ms: milliseconds, or with a unit (500ms, 2s, 1m)`
  return numericOption(flag, value, fallback, min, parseDuration, expected)
}

/** A flag's integer (config files give numbers as they are), or a usage error saying what is expected. */
function numericOption(
  flag: string,
  value: string | number | undefined,
  fallback: number,
  min: number,
  parse: (text: string) => number,
  expected: string,
): number {
  if (value === undefined) return fallback
  const n = typeof value === 'number' ? value : parse(value)
  if (!Number.isInteger(n) || n < min) {
    throw errors.usage(`Expected \`${flag}\` to be ${expected}, got \`${value}\``)
  }
  return n
}

const MS_PER: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

/** "2s" -> 2000, "250" -> 250 (milliseconds); NaN when it is not a time. */
export function parseDuration(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(text)
  if (m === null) return Number.NaN
  return Math.round(Number(m[1]) * (MS_PER[m[2] ?? 'ms'] as number))
}

/** "64k" -> 65536; NaN when it is not a size. */
export function parseSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kKmMgG]i?[bB]?)?\s*$/.exec(text)
  if (m === null) return Number.NaN
  const unit = (m[2] ?? '').charAt(0).toLowerCase()
  const scale = unit === 'k' ? 1024 : unit === 'm' ? 1024 ** 2 : unit === 'g' ? 1024 ** 3 : 1
  return Number(m[1]) * scale
}
