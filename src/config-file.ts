/**
 * The config file (`--config FILE`, `logmerge check-config FILE`): JSON, read and checked against
 * a hand-written schema, and turned into one set of Options per job.
 *
 * - Every flag has a key, its long name in camelCase (`--max-line-bytes` -> `maxLineBytes`);
 *   `state: false` is `--no-state`; `inputs` are the positional arguments.
 * - `jobs` lists jobs, each its own inputs, output, state...; any job key at the top level is
 *   the default for every job. Without `jobs` the top level is the one job.
 * - `logLevel`, `shutdownTimeout` and the metrics keys belong to the whole daemon: top level
 *   only.
 * - Relative paths are relative to the file's directory, so a config means the same whatever
 *   directory the service starts in.
 *
 * Every problem is collected (not just the first) and names the key path (`jobs[1].output`)
 * and what is allowed there.
 */
import { readFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { ENGINES, FORMATS, MINIMUM, type Options, ORDERS, parseSize } from './config.js'
import { describeErrno, errors, isErrno } from './errors.js'
import { isFleetUrl } from './fleet/url.js'
import { LEVELS, type Level } from './log.js'
import { parseListen } from './metrics/listen.js'
import type { MetricsOptions } from './metrics/settings.js'
import { TIMESTAMP_FORMATS } from './time/timestamps.js'

type Kind =
  | { readonly type: 'boolean' }
  /** A non-empty string (a path relative to the file's directory when `path`). */
  | { readonly type: 'string'; readonly path: boolean }
  /** A non-empty list of non-empty strings (paths). */
  | { readonly type: 'inputs' }
  /** A path, or false (`--no-state`). */
  | { readonly type: 'state' }
  | { readonly type: 'oneOf'; readonly values: readonly string[] }
  /** A JSON integer (milliseconds or a count). */
  | { readonly type: 'integer'; readonly min: number; readonly unit: string }
  /** An integer number of bytes, or a string with a k/M/G suffix like the flag takes. */
  | { readonly type: 'size'; readonly min: number }
  /** An object: label name -> input path. */
  | { readonly type: 'labels' }
  /** A job's name: letters, digits, `.`, `_`, `-`. */
  | { readonly type: 'name' }
  /** ADDRESS:PORT for the metrics server (src/metrics/listen.ts). */
  | { readonly type: 'listen' }

interface KeySpec {
  readonly kind: Kind
  /**
   * job: in a job, or at the top level as every job's default. daemon: the top level only (one
   * daemon, one value). name: a job's own (in `jobs[]`, or the top level of a one-job file).
   */
  readonly scope: 'job' | 'daemon' | 'name'
}

const str = (path: boolean): Kind => ({ type: 'string', path })
const ms = (min: number): Kind => ({ type: 'integer', min, unit: 'milliseconds' })

/** Every key the file may hold, but `jobs`. Keep in step with the flags (cli.ts) and the docs. */
export const KEYS = {
  name: { kind: { type: 'name' }, scope: 'name' },
  inputs: { kind: { type: 'inputs' }, scope: 'job' },
  output: { kind: str(true), scope: 'job' },
  once: { kind: { type: 'boolean' }, scope: 'job' },
  from: { kind: { type: 'oneOf', values: ['start', 'end'] }, scope: 'job' },
  engine: { kind: { type: 'oneOf', values: ENGINES }, scope: 'job' },
  order: { kind: { type: 'oneOf', values: ORDERS }, scope: 'job' },
  format: { kind: { type: 'oneOf', values: FORMATS }, scope: 'job' },
  labels: { kind: { type: 'labels' }, scope: 'job' },
  timestampFormat: { kind: { type: 'oneOf', values: TIMESTAMP_FORMATS }, scope: 'job' },
  timestampZone: { kind: str(false), scope: 'job' },
  reorderWindow: { kind: ms(MINIMUM.reorderWindow), scope: 'job' },
  progress: { kind: { type: 'boolean' }, scope: 'job' },
  threads: { kind: { type: 'integer', min: MINIMUM.threads, unit: 'threads' }, scope: 'job' },
  maxLineBytes: { kind: { type: 'size', min: MINIMUM.maxLineBytes }, scope: 'job' },
  pollInterval: { kind: ms(MINIMUM.pollInterval), scope: 'job' },
  readChunk: { kind: { type: 'size', min: MINIMUM.readChunk }, scope: 'job' },
  state: { kind: { type: 'state' }, scope: 'job' },
  stateDirectory: { kind: str(true), scope: 'job' },
  checkpointInterval: { kind: ms(MINIMUM.checkpointInterval), scope: 'job' },
  // The fleet (a nats:// output or input: docs/fleet.md).
  hostId: { kind: str(false), scope: 'job' },
  natsCreds: { kind: str(true), scope: 'job' },
  natsReplicas: { kind: { type: 'integer', min: 1, unit: 'replicas' }, scope: 'job' },
  natsMaxBytes: { kind: { type: 'size', min: 1024 ** 2 }, scope: 'job' },
  natsTlsCa: { kind: str(true), scope: 'job' },
  natsTlsCert: { kind: str(true), scope: 'job' },
  natsTlsKey: { kind: str(true), scope: 'job' },
  natsSkipLost: { kind: { type: 'boolean' }, scope: 'job' },
  logLevel: { kind: { type: 'oneOf', values: LEVELS }, scope: 'daemon' },
  shutdownTimeout: { kind: ms(MINIMUM.shutdownTimeout), scope: 'daemon' },
  metricsListen: { kind: { type: 'listen' }, scope: 'daemon' },
  metricsFile: { kind: str(true), scope: 'daemon' },
  metricsMaxInputs: { kind: { type: 'integer', min: 0, unit: 'inputs' }, scope: 'daemon' },
} as const satisfies Record<string, KeySpec>

export type Key = keyof typeof KEYS

/** The options of one job, as the file gives them (top-level defaults filled in). */
export type JobOptions = Omit<Options, 'inputs'> & { inputs?: string[] }

export interface FileJob {
  readonly name: string
  /** Where the job is in the file, for messages: `jobs[1]`, or `` for a file without `jobs`. */
  readonly where: string
  readonly options: JobOptions
}

export interface ConfigFile {
  /** Absolute path of the file. */
  readonly path: string
  readonly logLevel: Level | undefined
  readonly shutdownTimeout: number | undefined
  /** metricsListen, metricsFile, metricsMaxInputs (the daemon's: one endpoint for every job). */
  readonly metrics: MetricsOptions
  readonly jobs: readonly FileJob[]
}

/** Reads, parses and checks `file`; throws one ECONFIG error listing every problem. */
export function loadConfigFile(file: string, cwd = process.cwd()): ConfigFile {
  const path = resolve(cwd, file)
  const value = parseJson(path, readText(path))
  const problems: string[] = []
  const config = checkFile(path, value, problems)
  if (problems.length > 0) throw errors.config(path, problems)
  return config
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8')
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'EACCES', 'EISDIR', 'ENOTDIR', 'EPERM')) {
      throw errors.usage(
        `cannot read config file ${path}: ${describeErrno(err)}`,
        'give the path of a JSON config file; docs/service.md shows one',
      )
    }
    throw err
  }
}

/** JSON.parse, with "line 3, column 7" instead of a character position. */
function parseJson(path: string, text: string): unknown {
  const body = text.replace(/^\uFEFF/, '') // a byte-order mark some editors add
  try {
    return JSON.parse(body) as unknown
  } catch (err) {
    const message = (err as Error).message
    const at = /at position (\d+)/.exec(message)
    const what = message.replace(/,? ?(in JSON )?at position \d+.*$/, '').replace(/ in JSON$/, '')
    const where = at ? ` at ${lineColumn(body, Number(at[1]))}` : ''
    throw errors.config(path, [`not valid JSON${where}: ${what}`])
  }
}

function lineColumn(text: string, position: number): string {
  const before = text.slice(0, position)
  const line = before.split('\n').length
  const column = position - before.lastIndexOf('\n')
  return `line ${line}, column ${column}`
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v)

function checkFile(path: string, value: unknown, problems: string[]): ConfigFile {
  const dir = dirname(path)
  if (!isObject(value)) {
    problems.push(`expected a JSON object ({ "inputs": [...], "output": ... }), got ${show(value)}`)
    return { path, logLevel: undefined, shutdownTimeout: undefined, metrics: {}, jobs: [] }
  }
  const hasJobs = 'jobs' in value
  const top = checkObject(value, '', hasJobs ? 'top' : 'single', dir, problems)
  const defaults = top.job
  let jobs: FileJob[]
  if (!hasJobs) {
    jobs = [{ name: top.name ?? 'main', where: '', options: defaults }]
  } else if (!Array.isArray(value.jobs) || value.jobs.length === 0) {
    problems.push(`jobs: expected a non-empty list of job objects, got ${show(value.jobs)}`)
    jobs = []
  } else {
    jobs = value.jobs.map((entry, i) => checkJob(entry, i, defaults, dir, problems))
    checkNames(jobs, problems)
  }
  return {
    path,
    logLevel: top.daemon.logLevel as Level | undefined,
    shutdownTimeout: top.daemon.shutdownTimeout as number | undefined,
    metrics: {
      ...(top.daemon.metricsListen !== undefined && {
        metricsListen: top.daemon.metricsListen as string,
      }),
      ...(top.daemon.metricsFile !== undefined && {
        metricsFile: top.daemon.metricsFile as string,
      }),
      ...(top.daemon.metricsMaxInputs !== undefined && {
        metricsMaxInputs: top.daemon.metricsMaxInputs as number,
      }),
    },
    jobs,
  }
}

function checkJob(
  entry: unknown,
  index: number,
  defaults: JobOptions,
  dir: string,
  problems: string[],
): FileJob {
  const where = `jobs[${index}]`
  if (!isObject(entry)) {
    problems.push(`${where}: expected a job object ({ "inputs": [...], ... }), got ${show(entry)}`)
    return { name: `job${index}`, where, options: defaults }
  }
  const own = checkObject(entry, where, 'job', dir, problems)
  const options = { ...defaults, ...own.job }
  if (options.inputs === undefined && !('inputs' in entry)) {
    problems.push(
      `${where}.inputs: missing: each job needs "inputs", a list of files, directories or globs (in the job, or at the top level for every job)`,
    )
  }
  return { name: own.name ?? `job${index}`, where, options }
}

function checkNames(jobs: readonly FileJob[], problems: string[]): void {
  const seen = new Map<string, string>()
  for (const job of jobs) {
    const other = seen.get(job.name)
    if (other !== undefined) {
      problems.push(
        `${job.where}.name: "${job.name}" is already the name of ${other}: job names must differ`,
      )
    }
    seen.set(job.name, job.where)
  }
}

/** Where an object sits: the top of a file with `jobs`, a file without, or a job in `jobs`. */
type Place = 'top' | 'single' | 'job'

interface Checked {
  readonly job: JobOptions
  readonly daemon: Record<string, unknown>
  readonly name: string | undefined
}

function checkObject(
  object: Record<string, unknown>,
  where: string,
  place: Place,
  dir: string,
  problems: string[],
): Checked {
  const job: Record<string, unknown> = {}
  const daemon: Record<string, unknown> = {}
  let name: string | undefined
  for (const [key, raw] of Object.entries(object)) {
    const at = where ? `${where}.${key}` : key
    if (key === 'jobs' && place === 'top') continue // checked by the caller
    const spec = (KEYS as Record<string, KeySpec>)[key]
    if (spec === undefined) {
      problems.push(unknownKey(at, key, place))
      continue
    }
    const misplaced = placement(spec, place)
    if (misplaced) {
      problems.push(`${at}: ${misplaced}`)
      continue
    }
    const value = checkValue(spec.kind, raw, at, dir, problems)
    if (value === undefined) continue
    if (spec.scope === 'daemon') daemon[key] = value
    else if (spec.scope === 'name') name = value as string
    else job[key] = value
  }
  return { job: job as JobOptions, daemon, name }
}

function placement(spec: KeySpec, place: Place): string | null {
  if (spec.scope === 'daemon' && place === 'job') {
    return 'allowed only at the top level of the file: it applies to the whole daemon, every job'
  }
  if (spec.scope === 'name' && place === 'top') {
    return 'allowed only inside a job in `jobs` (each job has its own name)'
  }
  return null
}

function unknownKey(at: string, key: string, place: Place): string {
  const allowed = Object.entries(KEYS as Record<string, KeySpec>)
    .filter(([, spec]) => placement(spec, place) === null)
    .map(([k]) => k)
  if (place !== 'job') allowed.push('jobs')
  const near = closest(key, allowed)
  const hint = near ? `did you mean "${near}"?` : `allowed here: ${allowed.join(', ')}`
  return `${at}: unknown key (${hint})`
}

/**
 * The allowed key nearest to a misspelt one: the same letters ignoring case, `-` and `_`
 * (`max-line-bytes`), or at most two edits away (and fewer than half its letters).
 */
export function closest(key: string, allowed: readonly string[]): string | null {
  const norm = (s: string) => s.toLowerCase().replace(/[-_]/g, '')
  let best: string | null = null
  let bestDistance = Number.POSITIVE_INFINITY
  for (const candidate of allowed) {
    if (norm(candidate) === norm(key)) return candidate
    const d = editDistance(norm(key), norm(candidate))
    if (d < bestDistance) {
      best = candidate
      bestDistance = d
    }
  }
  return bestDistance <= Math.min(2, Math.floor(key.length / 2)) ? best : null
}

/** Levenshtein distance, one row at a time. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const row = [i]
    for (let j = 1; j <= b.length; j++) {
      const substitute = (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1)
      row.push(Math.min((previous[j] as number) + 1, (row[j - 1] as number) + 1, substitute))
    }
    previous = row
  }
  return previous[b.length] as number
}

/** The value checked against its kind (paths resolved), or undefined after noting a problem. */
function checkValue(
  kind: Kind,
  value: unknown,
  at: string,
  dir: string,
  problems: string[],
): unknown {
  const fail = (expected: string) => {
    problems.push(`${at}: expected ${expected}, got ${show(value)}`)
    return undefined
  }
  switch (kind.type) {
    case 'boolean':
      return typeof value === 'boolean' ? value : fail('true or false')
    case 'string':
      if (typeof value !== 'string' || value === '') return fail('a non-empty string')
      return kind.path && value !== '-' && !isFleetUrl(value) ? resolve(dir, value) : value
    case 'name':
      if (typeof value === 'string' && /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(value)) return value
      return fail(
        'a name of letters, digits, ".", "_" and "-" (at most 64, not starting with . _ -)',
      )
    case 'inputs':
      if (!Array.isArray(value) || value.length === 0) {
        return fail('a non-empty list of files, directories or globs, like ["/var/log/app/*.log"]')
      }
      return checkInputs(value, at, dir, problems)
    case 'state':
      if (value === false) return false
      if (typeof value === 'string' && value !== '') return resolve(dir, value)
      return fail('a state file path, or false to keep no state')
    case 'oneOf':
      if (typeof value === 'string' && kind.values.includes(value)) return value
      return fail(`one of ${kind.values.map((v) => `"${v}"`).join(', ')}`)
    case 'integer':
      if (typeof value === 'number' && Number.isInteger(value) && value >= kind.min) return value
      return fail(`an integer >= ${kind.min} (${kind.unit})`)
    case 'size': {
      const n =
        typeof value === 'number' ? value : typeof value === 'string' ? parseSize(value) : NaN
      if (Number.isInteger(n) && n >= kind.min) return n
      return fail(`an integer number of bytes >= ${kind.min}, or a string like "64k" or "1M"`)
    }
    case 'labels':
      return checkLabels(value, at, dir, problems)
    case 'listen': {
      if (typeof value !== 'string') return fail('a string ADDRESS:PORT, like "127.0.0.1:9775"')
      const parsed = parseListen(value)
      if ('problem' in parsed) {
        problems.push(`${at}: ${parsed.problem}, got ${show(value)}`)
        return undefined
      }
      return value
    }
  }
}

function checkInputs(list: unknown[], at: string, dir: string, problems: string[]): unknown {
  let ok = true
  const inputs = list.map((item, i) => {
    if (typeof item === 'string' && item !== '') return isFleetUrl(item) ? item : resolve(dir, item)
    problems.push(`${at}[${i}]: expected a file, directory or glob (a string), got ${show(item)}`)
    ok = false
    return ''
  })
  return ok ? inputs : undefined
}

function checkLabels(value: unknown, at: string, dir: string, problems: string[]): unknown {
  if (!isObject(value)) {
    problems.push(
      `${at}: expected an object of label name -> input path, like { "web": "/var/log/nginx/access.log" }, got ${show(value)}`,
    )
    return undefined
  }
  const labels: Record<string, string> = {}
  let ok = true
  for (const [name, path] of Object.entries(value)) {
    if (typeof path === 'string' && path !== '' && name !== '') {
      labels[name] = resolve(dir, path)
    } else {
      problems.push(`${at}.${name}: expected an input path (a non-empty string), got ${show(path)}`)
      ok = false
    }
  }
  return ok ? labels : undefined
}

/** A short rendering of a JSON value for messages. */
function show(value: unknown): string {
  if (value === undefined) return 'nothing'
  const text = JSON.stringify(value)
  return text.length > 60 ? `${text.slice(0, 57)}...` : text
}
