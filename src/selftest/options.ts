/**
 * `logmerge selftest` flags -> SelftestOptions, validated once with messages that name the flag.
 */
import { Command, Option } from 'commander'
import { ENGINES, type EngineName } from '../config.js'
import { errors } from '../errors.js'
import { ROTATIONS, type Rotation } from './writer.js'

export const FAULTS = ['chmod', 'output', 'late-writes'] as const
export type Fault = (typeof FAULTS)[number]

export interface SelftestOptions {
  readonly durationMs: number
  readonly engine: EngineName
  /** Where to run (created; must be empty), or null for a new temp directory. */
  readonly dir: string | null
  /** 0: never kill. */
  readonly killEveryMs: number
  readonly rotations: readonly Rotation[]
  readonly rotateEveryMs: number
  readonly writers: number
  /** Lines per second, per writer. */
  readonly rate: number
  readonly faults: ReadonlySet<Fault>
  readonly seed: number
  readonly json: boolean
  readonly keep: boolean
  /** Extra flags for logmerge (after `--`). */
  readonly logmergeArgs: readonly string[]
}

export const EXIT_CODES = `
Exit codes:
  0  the guarantee held: no line lost (but copytruncate's own race), duplicated, out of order
  1  it did not: lines lost, duplicated, out of order or corrupt, or logmerge exited by itself
     or not with 0 at SIGTERM (the report says which; the directory is kept)
  2  usage error (a bad flag)
  3  the selftest could not run (the directory, or logmerge would not start)
`

export function buildSelftestProgram(): Command {
  return new Command('logmerge selftest')
    .description(
      'Check logmerge on this machine: writers of numbered lines, rotations, permission flips, ' +
        'output failures and SIGKILLs of a real logmerge; then count lost, duplicated and ' +
        'out-of-order lines (see docs/selftest.md).',
    )
    .option('--duration <time>', 'how long writers write and faults happen (ms, s, m)', '60s')
    .addOption(
      new Option('--engine <name>', 'the logmerge engine to test')
        .choices(ENGINES)
        .default('async'),
    )
    .option('--dir <path>', 'work here (created, must be empty; kept) instead of a temp dir')
    .option('--kill-every <time>', 'SIGKILL and restart logmerge about this often (0: never)', '2s')
    .option(
      '--rotate <modes>',
      `rotations to do, comma-separated: ${ROTATIONS.join(', ')} (or none)`,
      ROTATIONS.join(','),
    )
    .option('--rotate-every <time>', 'rotate each writer about this often', '1s')
    .option('--writers <n>', 'writers (each rotated one way, the modes taken in turn)', '3')
    .option('--rate <n>', 'lines per second per writer', '200')
    .option(
      '--faults <list>',
      `other faults, comma-separated: ${FAULTS.join(', ')} (or none)`,
      FAULTS.join(','),
    )
    .option('--seed <n>', 'seed of the schedule (printed in the report, to repeat a run)')
    .option('--json', 'print the report as one JSON object')
    .option('--keep', 'keep the directory even when the run passes')
    .addHelpText(
      'after',
      `\nExtra flags after -- go to logmerge, e.g. \`logmerge selftest -- --poll-interval 200\`.\n${EXIT_CODES}`,
    )
    .showHelpAfterError('(run `logmerge selftest --help` for usage)')
    .exitOverride()
    .configureOutput({ outputError: (text, write) => write(`logmerge: ${text}`) })
}

interface RawOptions {
  duration: string
  engine: EngineName
  dir?: string
  killEvery: string
  rotate: string
  rotateEvery: string
  writers: string
  rate: string
  faults: string
  seed?: string
  json?: boolean
  keep?: boolean
}

/** Parses argv (the words after `selftest`); throws CommanderError or LogmergeError. */
export function parseSelftestArgs(argv: readonly string[]): SelftestOptions {
  const dashes = argv.indexOf('--')
  const own = dashes < 0 ? argv : argv.slice(0, dashes)
  const program = buildSelftestProgram()
  program.parse([...own], { from: 'user' })
  const o = program.opts<RawOptions>()
  const seed =
    o.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : integer('--seed', o.seed, 0)
  return {
    durationMs: duration('--duration', o.duration, 1),
    engine: o.engine,
    dir: o.dir ?? null,
    killEveryMs: duration('--kill-every', o.killEvery, 0),
    rotations: list('--rotate', o.rotate, ROTATIONS),
    rotateEveryMs: duration('--rotate-every', o.rotateEvery, 50),
    writers: integer('--writers', o.writers, 1),
    rate: integer('--rate', o.rate, 1),
    faults: new Set(list('--faults', o.faults, FAULTS)),
    seed,
    json: o.json === true,
    keep: o.keep === true,
    logmergeArgs: dashes < 0 ? [] : argv.slice(dashes + 1),
  }
}

const usage = (message: string) => errors.usage(message, 'see `logmerge selftest --help`')

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

/** "60s", "2m", "500ms", "1.5s"; a bare number is seconds. */
export function duration(flag: string, text: string, minMs: number): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(text)
  const ms = m ? Math.round(Number(m[1]) * (UNITS[m[2] ?? 's'] as number)) : Number.NaN
  if (!Number.isFinite(ms) || ms < minMs) {
    throw usage(
      `Expected \`${flag}\` to be a time like 60s, 2m or 500ms${minMs > 0 ? ` (at least ${minMs} ms)` : ''}, got \`${text}\``,
    )
  }
  return ms
}

function integer(flag: string, text: string, min: number): number {
  const n = Number(text)
  if (!/^\s*\d+\s*$/.test(text) || !Number.isSafeInteger(n) || n < min) {
    throw usage(`Expected \`${flag}\` to be an integer >= ${min}, got \`${text}\``)
  }
  return n
}

/** A comma-separated subset of `allowed`; "none" or "" is the empty list. */
function list<T extends string>(flag: string, text: string, allowed: readonly T[]): T[] {
  const words = text
    .split(',')
    .map((w) => w.trim())
    .filter((w) => w.length > 0 && w !== 'none')
  const bad = words.find((w) => !(allowed as readonly string[]).includes(w))
  if (bad !== undefined) {
    throw usage(
      `Expected \`${flag}\` to be a comma-separated list of ${allowed.join(', ')} (or none), got \`${bad}\``,
    )
  }
  return [...new Set(words)] as T[]
}
