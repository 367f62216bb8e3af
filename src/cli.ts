/**
 * The command line: flags -> Options -> Config, then the daemon. `logmerge status` and
 * `logmerge check-config` are parsed and run in subcommands.ts; `logmerge selftest` in
 * selftest/.
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander'
import { releasePrestarted } from './batch/prestart.js'
import { defaults, ENGINES, FORMATS, type Options, ORDERS } from './config.js'
import { type ConfigFile, loadConfigFile } from './config-file.js'
import { runJobs } from './daemon.js'
import { ExitCode, LogmergeError } from './errors.js'
import { parseLabel } from './format/labels.js'
import { type Job, type Run, resolveRun } from './jobs.js'
import { createLogger, detectStyle, formatLine, LEVELS } from './log.js'
import { DEFAULT_MAX_INPUTS } from './metrics/settings.js'
import { DEFAULT_WINDOW_MS } from './order/time-order.js'
import { packageVersion } from './package-files.js'
import { sourceStack } from './stack-sources.js'
import {
  buildCheckConfigProgram,
  buildStatusProgram,
  checkConfig,
  errorOutput,
  runStatus,
} from './subcommands.js'
import { TIMESTAMP_FORMATS } from './time/timestamps.js'

const EXAMPLES = `
Examples:
  logmerge '/var/log/app/*.log' -o /var/log/merged.log   follow, write new lines as they come
  logmerge --once --from start a.log b.log > all.log     merge what is there now, then exit
  logmerge 'logs/**/*.log' /var/log/syslog -o -           globs pick up files created later
  logmerge /var/log/nginx/                               a directory: every file in it (not .gz)
  logmerge --config /etc/logmerge/config.json            the jobs of a config file (a service)
  logmerge --once --order time a.log b.log > all.log     merge files at rest by timestamp
  logmerge --order time --format prefix \
    --label web=/var/log/nginx/access.log /var/log/nginx/access.log app.log
                                                         follow, in time order, "web: ..." lines
  logmerge --once --order time --format json *.log       one JSON object per record
  logmerge '/var/log/app/*.log' -o nats://n1:4222,n2:4222/LOGS --host-id web-1
                                                         a host: publish lines to a stream
  logmerge nats://n1:4222/LOGS -o /var/log/fleet.log --order time --format prefix
                                                         the centre: every host into one file

Time order (docs/time-order.md): each file's timestamp format is detected (iso, rfc5424,
rfc3164, clf, json, epoch; or --timestamp-format). With --once it is a stable merge (as
sort -m -s on the time); while following, a line waits until every file has moved past its
time, or at most --reorder-window ms; a line later than that is still written, counted late
(logmerge status). Lines without a timestamp stay with the line before them.

Follows files by name like tail -F: rotation (rename + create, copytruncate), truncation,
deletion and files that do not exist yet. Only whole lines are written; a partial last line
waits for its newline. Quote globs so the shell does not expand them.

Config file (--config FILE, JSON; see docs/service.md): every flag has a key, its long name in
camelCase (--max-line-bytes -> maxLineBytes; state: false is --no-state; inputs: [...]). A
"jobs" list runs several jobs in one daemon; top-level keys are every job's defaults. Flags
override the file when it has one job; with several, only --log-level, --shutdown-timeout and
the --metrics-* flags.

Metrics (docs/service.md, "Monitoring"): --metrics-listen 127.0.0.1:9775 serves /metrics in the
Prometheus text format; --metrics-file PATH writes the same for node_exporter's textfile
collector. Lines, bytes, lag, rotations, output errors and pauses, checkpoints, per job and
per input, and the process's own (event-loop lag included).

Commands:
  logmerge check-config FILE                       check a config file: exit 0, or 2 and why
  logmerge status -o OUT | --state PATH [--json]   where a run stands (see status --help)
  logmerge selftest [--duration 60s] [--engine E]   prove the promise on this machine

Exit codes:
  0  done (--once) or stopped by SIGTERM/SIGINT after draining
  1  internal error (a bug: please report it)
  2  usage or config error: unknown flag or key, bad value, output that is also an input,
     missing output dir, two jobs writing one output (not restarted by the shipped unit)
  3  --once: some inputs could not be read (the others were merged)
  4  the output could not be opened or written
  5  a reader thread failed (threads, top-down, bottom-up engines, or the read-ahead thread of --once --order time; the others were drained)
  6  SIGTERM/SIGINT: draining took longer than --shutdown-timeout (the state keeps the rest)
  7  nats://: no server of the URL could be reached at start-up (or it has no JetStream)
  8  nats://: the server refused the credentials (or the stream's subjects), or TLS failed
  9  nats:// input: the stream no longer holds messages not yet merged (--nats-skip-lost)
With several jobs, the most severe job's code, in this order: 1, 4, 9, 5, 8, 7, 2, 6, 3, 0.

Fleet (docs/fleet.md): -o nats://[user:pass@]host:4222[,host...]/STREAM publishes whole lines
to a JetStream stream (tls:// for TLS); nats://.../STREAM as the input merges every host's
lines into the output, exactly once. A stream that does not exist is created.
`

/**
 * The command line as commander knows it. One long chain on purpose (about 120 lines): the
 * options in the order --help lists them, one or two lines each; cut into pieces, --help's
 * order would be spread over several functions.
 */
export function buildProgram(): Command {
  return new Command('logmerge')
    .description('Follow many log files and merge their complete lines into one output.')
    .version(packageVersion(), '-V, --version')
    .argument('[inputs...]', 'files, directories or quoted globs to follow')
    .option('-c, --config <file>', 'run the job(s) of this JSON config file (see below)')
    .option('-o, --output <path>', "output file, appended to ('-' for stdout)", '-')
    .option('--once', 'read what is there now and exit, instead of following')
    .addOption(
      new Option(
        '--from <where>',
        'where a file seen for the first time starts (default: end; start with --once)',
      ).choices(['start', 'end']),
    )
    .addOption(
      new Option('--engine <name>', 'how readers and writer are arranged (see docs/migration.md)')
        .choices(ENGINES)
        .default('async'),
    )
    .addOption(
      new Option(
        '--order <order>',
        'arrival: as lines come; time: by their timestamps (async and top-down engines)',
      )
        .choices(ORDERS)
        .default('arrival'),
    )
    .addOption(
      new Option('--format <format>', 'raw: lines as read; prefix: "label: line"; json: objects')
        .choices(FORMATS)
        .default('raw'),
    )
    .option(
      '--label <name=path>',
      'label for an input in prefix/json output (repeatable; default: its file name)',
      collectLabel,
    )
    .addOption(
      new Option(
        '--timestamp-format <name>',
        'how to read the time of a line for --order time (default: detected per file)',
      ).choices(TIMESTAMP_FORMATS),
    )
    .option(
      '--timestamp-zone <zone>',
      'zone of times written without one: utc, local or +hh:mm (default: utc)',
    )
    .option(
      '--reorder-window <time>',
      '--order time while following: hold a line at most this long to put it in order',
      String(DEFAULT_WINDOW_MS),
    )
    .option('--progress', 'with --once, show a progress bar on stderr (default: if a terminal)')
    .option('--no-progress', 'never show the progress bar')
    .option('--threads <n>', 'reader threads for the thread engines (default: CPU count)')
    .option(
      '--max-line-bytes <n>',
      'split lines longer than this (newline included; k/M suffix)',
      String(defaults.maxLineBytes),
    )
    .option(
      '--poll-interval <time>',
      'look at files this often even without a change event',
      String(defaults.pollIntervalMs),
    )
    .option(
      '--read-chunk <n>',
      'largest single read from an input (k/M suffix)',
      String(defaults.readChunkBytes),
    )
    .option(
      '--state <path>',
      'state file for exactly-once restarts (default: beside the output, or in $STATE_DIRECTORY)',
    )
    .option('--no-state', 'keep no state: a restart starts per --from (at-least-once at best)')
    .option(
      '--checkpoint-interval <time>',
      'how often the state is saved (ms, or with a unit: 500ms, 2s, 1m)',
      String(defaults.checkpointIntervalMs),
    )
    .option(
      '--shutdown-timeout <time>',
      'after SIGTERM/SIGINT, give up draining after this long (exit 6)',
      String(defaults.shutdownTimeoutMs),
    )
    .option('--host-id <id>', 'with a nats:// output: publish as this host (default: host name)')
    .option('--nats-creds <file>', 'NATS credentials file (JWT and seed) for nats:// URLs')
    .option('--nats-tls-ca <file>', 'CA certificate to check the NATS servers with (TLS)')
    .option('--nats-tls-cert <file>', 'client certificate for NATS (with --nats-tls-key)')
    .option('--nats-tls-key <file>', "the client certificate's key")
    .option('--nats-replicas <n>', 'replicas of a stream logmerge creates (default: 1)')
    .option('--nats-max-bytes <n>', 'limit of a stream logmerge creates (k/M/G; default: 1G)')
    .option(
      '--nats-skip-lost',
      'nats:// input: go on past messages the stream no longer holds (else exit 9)',
    )
    .option(
      '--metrics-listen <addr:port>',
      'serve Prometheus metrics at http://ADDR:PORT/metrics (e.g. 127.0.0.1:9775)',
    )
    .option(
      '--metrics-file <path>',
      'write the metrics to this file (node_exporter textfile; each checkpoint interval when busy)',
    )
    .option(
      '--metrics-max-inputs <n>',
      `inputs per job with series of their own; the rest summed as input="other" (default: ${DEFAULT_MAX_INPUTS})`,
    )
    .addOption(
      new Option(
        '--log-level <level>',
        'diagnostics on stderr (with journald priorities under systemd)',
      )
        .choices(LEVELS)
        .default(defaults.logLevel),
    )
    .addHelpText('after', EXAMPLES)
    .showHelpAfterError('(run `logmerge --help` for usage)')
    .exitOverride()
    .configureOutput(errorOutput)
}

/** Parses `argv` with `program`; false when commander already answered (help, version, error). */
function parse(program: Command, argv: string[]): boolean {
  try {
    program.parse(argv)
    return true
  } catch (err) {
    if (err instanceof CommanderError) {
      const ok = err.code === 'commander.helpDisplayed' || err.code === 'commander.version'
      process.exitCode = ok ? ExitCode.ok : ExitCode.usage
      return false
    }
    throw err
  }
}

/**
 * A reader of our stdout that stops early (`logmerge --help | head -1`) closes the pipe: the
 * rest of a help or status text is not wanted, and Node's unhandled 'error' event (EPIPE)
 * printed a stack trace and exit 1 (5 runs in 10). The writer of `-o -` listens itself and
 * stops the run with EOUTPUT_CLOSED (errors.ts); other errors stay unhandled.
 */
function ignoreClosedPipe(err: NodeJS.ErrnoException): void {
  if (err.code !== 'EPIPE') throw err
}

export async function main(argv: string[]): Promise<void> {
  process.stdout.on('error', ignoreClosedPipe)
  const [node, script, command] = argv as [string, string, string | undefined]
  if (command === 'selftest') {
    const { runSelftest } = await import('./selftest/index.js')
    process.exitCode = await runSelftest(argv.slice(3))
    return
  }
  if (command === 'status' || command === 'check-config') {
    const sub = command === 'status' ? buildStatusProgram() : buildCheckConfigProgram()
    if (!parse(sub, [node, script, ...argv.slice(3)])) return
    try {
      if (command === 'status') await runStatus(sub)
      else checkConfig(sub.args[0] as string)
    } catch (err) {
      process.exitCode = report(err)
    }
    return
  }
  const program = buildProgram()
  try {
    if (!parse(program, argv)) return
    try {
      const run = runFrom(program)
      process.exitCode = await runJobs(run, await daemonIO(run))
    } catch (err) {
      process.exitCode = report(err)
    }
  } finally {
    // A reader thread bin/logmerge started for a merge that did not take it ends by itself.
    await releasePrestarted()
  }
}

/** --label NAME=PATH, repeatable: collected into name -> path (checked as it comes). */
function collectLabel(text: string, previous: Record<string, string> | undefined) {
  try {
    const { name, path } = parseLabel(text, '--label')
    return { ...previous, [name]: path }
  } catch (err) {
    // commander words it (`option '--label <name=path>' argument ... is invalid`), exit 2.
    throw new InvalidArgumentError((err as Error).message)
  }
}

/** The jobs of this run: the command line alone, or --config FILE with the flags laid over it. */
function runFrom(program: Command): Run {
  const opts = program.opts<
    Omit<Options, 'inputs'> & { config?: string; label?: Record<string, string> }
  >()
  const { config: file, label, ...rest } = opts
  const cli: Options = { ...rest, inputs: program.args }
  if (label !== undefined) cli.labels = label
  const given = new Set<keyof Options>()
  for (const option of program.options) {
    const attribute = option.attributeName()
    const key = (attribute === 'label' ? 'labels' : attribute) as keyof Options | 'config'
    if (key !== 'config' && program.getOptionValueSource(attribute) === 'cli') given.add(key)
  }
  if (program.args.length > 0) given.add('inputs')
  const loaded: ConfigFile | null = file === undefined ? null : loadConfigFile(file)
  return resolveRun(loaded, cli, given)
}

/**
 * Loggers on stderr: the jobs' prefixed with their names when there are several. systemd's
 * notifier (and the child_process module it spawns with) is loaded only under Type=notify.
 */
async function daemonIO(run: Run) {
  const log = createLogger(run.logLevel)
  const several = run.jobs.length > 1
  return {
    log,
    logFor: (job: Job) =>
      several ? createLogger(run.logLevel, undefined, { job: job.name }) : log,
    notifier: process.env.NOTIFY_SOCKET
      ? (await import('./sd-notify.js')).systemdNotifier(log)
      : null,
  }
}

/** Prints a fatal error (one line each, plus a hint) and returns the exit code for it. */
function report(err: unknown): ExitCode {
  const style = detectStyle()
  if (err instanceof LogmergeError && err.code === 'EOUTPUT_CLOSED') return err.exitCode // like cat
  if (err instanceof LogmergeError) {
    const hint = err.hint ? ` (${err.hint})` : ''
    const lines = err.code === 'ECONFIG' ? err.problems : [`${err.message}${hint}`]
    for (const line of lines) process.stderr.write(formatLine(style, 'error', line))
    return err.exitCode
  }
  const stack = sourceStack((err as Error)?.stack ?? String(err))
  process.stderr.write(
    formatLine(style, 'error', `internal error (a bug: please report it): ${stack}`),
  )
  return ExitCode.internal
}
