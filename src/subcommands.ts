/**
 * logmerge's two commands besides the daemon: `logmerge status` (where a run stands, from its
 * state file, or a fleet centre's, which asks the stream) and `logmerge check-config` (a config
 * file checked as the daemon would, one line per job). Their command lines and what they
 * print; cli.ts sends them here. Both only read.
 */
import { hostname } from 'node:os'
import { resolve } from 'node:path'
import { Command } from 'commander'
import { loadConfigFile } from './config-file.js'
import { errors, LogmergeError } from './errors.js'
import { isCentreState } from './fleet/centre-state.js'
import { type FleetConfig, hostStatePath } from './fleet/options.js'
import { isFleetUrl, parseFleetUrl } from './fleet/url.js'
import { type Job, resolveRun } from './jobs.js'
import { createLogger, prefixLines } from './log.js'
import { formatListen } from './metrics/listen.js'
import { defaultStatePath } from './state/checkpoint.js'
import { formatStatus, readStatus } from './status.js'

/**
 * commander's "error: ..." and its hint become "logmerge: error: ..." (or "<3>error: ..." for
 * journald), each line.
 */
export const errorOutput = { writeErr: (text: string) => process.stderr.write(prefixLines(text)) }

/** `logmerge check-config FILE`: the daemon's own checks, without starting anything. */
export function buildCheckConfigProgram(): Command {
  return new Command('logmerge check-config')
    .description(
      'Check a config file as `logmerge --config FILE` would: exit 0 and one line per job, or exit 2 and every problem.',
    )
    .argument('<file>', 'the JSON config file')
    .addHelpText('after', '\nExample:\n  logmerge check-config /etc/logmerge/config.json\n')
    .exitOverride()
    .configureOutput(errorOutput)
}

/** `logmerge status`: where a logmerge stands, from its state file (read-only). */
export function buildStatusProgram(): Command {
  return new Command('logmerge status')
    .description('Show where logmerge stands: its last checkpoint, the output and every source.')
    .option('--state <path>', 'the state file')
    .option('-o, --output <path>', 'the output of the run (to find its default state file)')
    .option('-c, --config <file>', "every job of this config file (from the file's state paths)")
    .option('--job <name>', 'with --config: only this job')
    .option(
      '--host-id <id>',
      'with -o nats://...: the host whose state to show (default: host name)',
    )
    .option('--json', 'JSON instead of a table (with --config: a list, one entry a job)')
    .addHelpText(
      'after',
      '\nExamples:\n  logmerge status -o /var/log/merged.log\n  sudo logmerge status --config /etc/logmerge/config.json --job web\n  logmerge status -o nats://n1:4222/LOGS --host-id web-1     a fleet host\n  logmerge status -o /var/log/fleet.log                      a fleet centre (asks the stream)\n',
    )
    .exitOverride()
    .configureOutput(errorOutput)
}

interface StatusOptions {
  hostId?: string
  state?: string
  output?: string
  config?: string
  job?: string
  json?: boolean
}

/** Runs `logmerge status` as parsed by `program` (buildStatusProgram). */
export async function runStatus(program: Command): Promise<void> {
  const opts = program.opts<StatusOptions>()
  if (opts.config !== undefined) {
    await runStatusOfConfig(opts.config, opts)
    return
  }
  const path = opts.state
    ? resolve(opts.state)
    : opts.output
      ? isFleetUrl(opts.output)
        ? hostStatePath(
            parseFleetUrl(opts.output, '--output'),
            opts.hostId ?? hostname(),
            undefined,
          ).path
        : defaultStatePath(resolve(opts.output))
      : null
  if (!path) throw errors.usage('status needs --state PATH or --output PATH')
  const status = await statusOf(path, null)
  process.stdout.write(opts.json ? `${JSON.stringify(status.value, null, 2)}\n` : status.text)
}

/** The status of the state at `path`: a run's, or a fleet centre's (which asks the stream). */
async function statusOf(
  path: string,
  fleet: FleetConfig | null,
): Promise<{ value: unknown; text: string }> {
  if (isCentreState(path)) {
    const { centreStatus, formatCentreStatus } = await import('./fleet/status.js')
    const value = await centreStatus(path, fleet)
    return { value, text: formatCentreStatus(value) }
  }
  const value = readStatus(path)
  return { value, text: formatStatus(value) }
}

/**
 * `status --config FILE`: every job's (or --job's) status, from the state paths the file gives
 * (`state`, `stateDirectory`; else $STATE_DIRECTORY or beside the output, as when it runs). A
 * job whose state cannot be read is reported and the others shown; exit 2 then.
 */
async function runStatusOfConfig(file: string, opts: StatusOptions): Promise<void> {
  const run = resolveRun(loadConfigFile(file), { inputs: [] }, new Set())
  const jobs = run.jobs.filter((job) => opts.job === undefined || job.name === opts.job)
  if (jobs.length === 0) {
    const names = run.jobs.map((j) => j.name).join(', ')
    throw errors.usage(`${file} has no job named ${opts.job}`, `its jobs: ${names}`)
  }
  const log = createLogger('error')
  const shown: { job: string; status: unknown; text: string }[] = []
  for (const job of jobs) {
    const path = job.config.statePath
    try {
      if (path === null)
        throw errors.usage(`job ${job.name} keeps no state (state: false, or once)`)
      const { value, text } = await statusOf(path, job.config.fleet ?? null)
      shown.push({ job: job.name, status: value, text })
    } catch (err) {
      if (!(err instanceof LogmergeError)) throw err
      log.error(`job ${job.name}: ${err.message}${err.hint ? ` (${err.hint})` : ''}`)
      process.exitCode = err.exitCode
    }
  }
  if (opts.json) {
    const list = shown.map(({ job, status }) => ({ job, status }))
    process.stdout.write(`${JSON.stringify(list, null, 2)}\n`)
    return
  }
  const tables = shown.map(({ job, text }) => `job ${job}\n${text}`)
  process.stdout.write(tables.join('\n'))
}

/** Runs `logmerge check-config FILE`: one line per job, the metrics, then ok. */
export function checkConfig(file: string): void {
  const loaded = loadConfigFile(file)
  const run = resolveRun(loaded, { inputs: [] }, new Set())
  for (const job of run.jobs) process.stdout.write(`${summary(job)}\n`)
  if (run.metrics) {
    const { listen, file, maxInputs } = run.metrics
    const where = [
      ...(listen ? [`http://${formatListen(listen)}/metrics`] : []),
      ...(file ? [`file ${file}`] : []),
    ]
    process.stdout.write(`metrics: ${where.join(', ')} (at most ${maxInputs} inputs a job)\n`)
  }
  const n = run.jobs.length
  process.stdout.write(`${loaded.path}: ok, ${n} job${n === 1 ? '' : 's'}\n`)
}

/** One line: what a job reads, where it writes, and how. */
function summary({ name, config: c }: Job): string {
  const inputs =
    c.fleet?.role === 'centre' ? c.fleet.url.display : c.inputs.map((i) => i.given).join(' ')
  const output =
    c.output === '-'
      ? 'stdout'
      : c.fleet?.role === 'host'
        ? `${c.output} as host ${c.fleet.hostId}`
        : c.output
  const state = c.statePath ?? 'none'
  const mode = c.once ? 'once' : `follow from ${c.from}`
  return `job ${name}: ${inputs} -> ${output} (${mode}, engine ${c.engine}, order ${c.order}, format ${c.format ?? 'raw'}, state ${state})`
}
