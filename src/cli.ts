/**
 * The command line: flags -> Options -> Config, then the daemon. Nothing else lives here.
 */
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { Command, CommanderError, Option } from 'commander'
import { defaults, ENGINES, type Options, ORDERS, resolveConfig } from './config.js'
import { runDaemon } from './daemon.js'
import { ExitCode, errors, LogmergeError } from './errors.js'
import { createLogger, LEVELS } from './log.js'
import { defaultStatePath } from './state/checkpoint.js'
import { formatStatus, readStatus } from './status.js'

const EXAMPLES = `
Examples:
  logmerge '/var/log/app/*.log' -o /var/log/merged.log   follow, write new lines as they come
  logmerge --once --from start a.log b.log > all.log     merge what is there now, then exit
  logmerge 'logs/**/*.log' /var/log/syslog -o -           globs pick up files created later
  logmerge /var/log/nginx/                               a directory: every file in it (not .gz)

Follows files by name like tail -F: rotation (rename + create, copytruncate), truncation,
deletion and files that do not exist yet. Only whole lines are written; a partial last line
waits for its newline. Quote globs so the shell does not expand them.

Commands:
  logmerge status -o OUT | --state PATH [--json]   where a run stands (see status --help)
  logmerge selftest [--duration 60s] [--engine E]   prove the promise on this machine

Exit codes:
  0  done (--once) or stopped by SIGTERM/SIGINT after draining
  1  internal error (a bug: please report it)
  2  usage error: unknown flag, bad value, output that is also an input, missing output dir
  3  --once: some inputs could not be read (the others were merged)
  4  the output could not be opened or written
  5  a reader thread failed (threads, top-down, bottom-up engines; the others were drained)
  6  SIGTERM/SIGINT: draining took longer than --shutdown-timeout (the state keeps the rest)
`

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string
  }
  return pkg.version
}

export function buildProgram(): Command {
  return new Command('logmerge')
    .description('Follow many log files and merge their complete lines into one output.')
    .version(version(), '-V, --version')
    .argument('<inputs...>', 'files, directories or quoted globs to follow')
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
      new Option('--order <order>', 'arrival: as lines come; time: by their timestamps (not yet)')
        .choices(ORDERS)
        .default('arrival'),
    )
    .option('--threads <n>', 'reader threads for the thread engines (default: CPU count)')
    .option(
      '--max-line-bytes <n>',
      'split lines longer than this (newline included; k/M suffix)',
      String(defaults.maxLineBytes),
    )
    .option(
      '--poll-interval <ms>',
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
      '--checkpoint-interval <ms>',
      'how often the state is saved',
      String(defaults.checkpointIntervalMs),
    )
    .option(
      '--shutdown-timeout <ms>',
      'after SIGTERM/SIGINT, give up draining after this long (exit 6)',
      String(defaults.shutdownTimeoutMs),
    )
    .addOption(
      new Option('--log-level <level>', 'diagnostics on stderr')
        .choices(LEVELS)
        .default(defaults.logLevel),
    )
    .addHelpText('after', EXAMPLES)
    .showHelpAfterError('(run `logmerge --help` for usage)')
    .exitOverride()
    .configureOutput({
      // One line: commander's "error: ..." becomes "logmerge: error: ...".
      outputError: (text, write) => write(`logmerge: ${text}`),
    })
}

/** `logmerge status`: where a logmerge stands, from its state file (read-only). */
export function buildStatusProgram(): Command {
  return new Command('logmerge status')
    .description('Show where logmerge stands: its last checkpoint, the output and every source.')
    .option('--state <path>', 'the state file')
    .option('-o, --output <path>', 'the output of the run (to find its default state file)')
    .option('--json', 'one JSON object instead of a table')
    .addHelpText('after', '\nExample:\n  logmerge status -o /var/log/merged.log\n')
    .exitOverride()
    .configureOutput({ outputError: (text, write) => write(`logmerge: ${text}`) })
}

function runStatus(program: Command): void {
  const opts = program.opts<{ state?: string; output?: string; json?: boolean }>()
  const path = opts.state
    ? resolve(opts.state)
    : opts.output
      ? defaultStatePath(resolve(opts.output))
      : null
  if (!path) throw errors.usage('status needs --state PATH or --output PATH')
  const status = readStatus(path)
  process.stdout.write(opts.json ? `${JSON.stringify(status, null, 2)}\n` : formatStatus(status))
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

export async function main(argv: string[]): Promise<void> {
  if (argv[2] === 'selftest') {
    const { runSelftest } = await import('./selftest/index.js')
    process.exitCode = await runSelftest(argv.slice(3))
    return
  }
  if (argv[2] === 'status') {
    const status = buildStatusProgram()
    if (!parse(status, [argv[0] as string, argv[1] as string, ...argv.slice(3)])) return
    try {
      runStatus(status)
    } catch (err) {
      process.exitCode = report(err)
    }
    return
  }
  const program = buildProgram()
  if (!parse(program, argv)) return
  const opts = program.opts<Omit<Options, 'inputs'>>()
  try {
    const config = resolveConfig({ ...opts, inputs: program.args })
    const log = createLogger(config.logLevel)
    process.exitCode = await runDaemon(config, log)
  } catch (err) {
    process.exitCode = report(err)
  }
}

/** Prints a fatal error as one line (plus a hint) and returns the exit code for it. */
function report(err: unknown): ExitCode {
  if (err instanceof LogmergeError && err.code === 'EOUTPUT_CLOSED') return err.exitCode // like cat
  if (err instanceof LogmergeError) {
    const hint = err.hint ? ` (${err.hint})` : ''
    process.stderr.write(`logmerge: error: ${err.message}${hint}\n`)
    return err.exitCode
  }
  process.stderr.write(`logmerge: internal error: ${(err as Error)?.stack ?? String(err)}\n`)
  return ExitCode.internal
}
