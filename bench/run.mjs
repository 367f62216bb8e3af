// @ts-check
/**
 * Runs logmerge's benchmarks: all of them, or the ones named.
 *
 *   node bench/run.mjs                       # every benchmark, every engine
 *   node bench/run.mjs catchup --engine async
 *   node bench/run.mjs latency --quick       # small smoke sizes
 *   node bench/run.mjs throughput idle       # following: 8 busy writers; many idle files
 *
 * Prints the machine and a Markdown table per benchmark on stdout (progress on stderr) and
 * writes bench/out/results-<name>.json. Benchmarks run the build (bin/logmerge -> bundle/,
 * made with dist/ by `npm run build`).
 */

import { parseArgs } from 'node:util'
import { parseSize } from '../fixtures/generate.mjs'
import { catchup } from './catchup.mjs'
import { checkpoint } from './checkpoint.mjs'
import { fleet } from './fleet.mjs'
import { follow } from './follow.mjs'
import { idle } from './idle.mjs'
import { latency } from './latency.mjs'
import {
  checkBuild,
  distStamp,
  formatMachine,
  gitInfo,
  listEngines,
  machineInfo,
  writeResults,
} from './lib.mjs'
import { throughput } from './throughput.mjs'

/**
 * @typedef {object} BenchOptions
 * @property {string[]} engines
 * @property {boolean} quick
 * @property {number} runs
 * @property {boolean} [runsGiven]  --runs was given (fleet: its default differs)
 * @property {number | undefined} bytesEach
 * @property {number | undefined} seconds
 * @property {number | undefined} rate
 * @property {string[]} extraArgs   appended to every logmerge command line
 * @property {string | undefined} dir  checkpoint: where inputs, output and state go
 * @property {string | undefined} only       follow: sub-benchmarks, comma-separated
 * @property {string[] | undefined} logmerge follow: other checkouts to compare (A/B)
 * @property {string | undefined} peers      follow: peers, comma-separated, all or none
 * @property {number[] | undefined} files    follow: the burst's file counts
 * @property {boolean} keep                   follow: keep the case directories
 */

/** @type {Record<string, (o: BenchOptions) => Promise<{ markdown: string, json: object }>>} */
const BENCHMARKS = {
  catchup: (o) => catchup(o),
  checkpoint: (o) => checkpoint(o),
  latency: (o) => latency(o),
  throughput: (o) => throughput(o),
  idle: (o) => idle(o),
  fleet: (o) => fleet(o),
  follow: (o) => follow(o),
}

const USAGE = `usage: node bench/run.mjs [name...] [options]

Benchmarks: ${Object.keys(BENCHMARKS).join(', ')} (default: all)

  --engine E     benchmark this engine (repeatable; default: every --engine choice
                 that \`bin/logmerge --help\` lists; follow: none for the peers alone)
  --quick        small smoke sizes (catchup: 4 x 8 MiB; latency: 2 s; throughput: 2 s;
                 idle: 100 and 1,000 files, 5 s window)
  --runs N       catchup, checkpoint: runs of each variant, best one kept (default 3);
                 fleet: rounds of throughput runs (default 1; 3 with --logmerge)
  --size SIZE    catchup, checkpoint, follow's catchup: bytes per input file (default 128M;
                 8M with --quick);
                 fleet: bytes per host file (4 files; default 25M, i.e. 1,000,000 lines)
  --seconds S    latency, throughput: how long to append (default 10; 2 with --quick)
  --rate N       latency: lines appended per second (default 100)
  --dir PATH     checkpoint: put inputs, output and state in PATH (default: a tmpfs
                 directory under /dev/shm, removed afterwards); follow: the case
                 directories go under PATH/follow/ (default bench/out/follow/)
  --arg A        pass A to every logmerge command (repeatable), e.g. --arg=--read-chunk=4M
  --only LIST    follow: these sub-benchmarks (burst,idle,cpu,rotation,latency,catchup);
                 fleet: "throughput" skips the latency runs
  --logmerge DIR follow, fleet: also measure DIR/bin/logmerge (repeatable): this checkout is
                 build A, each DIR B, C... (A/B in one run)
  --peers LIST   follow: tail,rsyslog,npm-tail,logdna (default all installed; none)
  --files LIST   follow: the burst's file counts (default 1000,10000; 100 with --quick)
  --keep         follow: keep the case directories under bench/out/follow/
  -h, --help     show this help

throughput: 8 writer processes append to 8 followed files as fast as they can for 10 s.
idle: 1,000 unchanging files per engine (and 10,000 for async), sampled for 20 s.
checkpoint: catch-up over 4 x 128 MiB with and without a state file (issue 4's < 5 % target).
fleet: 2 hosts -> NATS JetStream (replicas 1 and 3) -> centre, 1,000,000 lines of 100 bytes
(200,000 with --quick), beside a local logmerge; latency at --rate lines/s (needs nats-server).
follow: issue 15's follow path at scale beside GNU tail -F, rsyslog imfile, npm tail and
@logdna/tail-file (burst, idle, cpu, rotation, latency, catchup; see bench/follow.mjs;
install the npm peers once with \`npm ci --prefix bench\`).

Results: Markdown on stdout, JSON in bench/out/results-<name>.json. Build first (npm run build).
`

/** @param {string | undefined} text @param {string} flag @returns {number | undefined} */
function positive(text, flag) {
  if (text === undefined) return undefined
  const n = Number(text)
  if (!Number.isFinite(n) || n <= 0) throw new RangeError(`${flag} must be a positive number`)
  return n
}

/** @param {string[]} argv */
async function main(argv) {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      engine: { type: 'string', multiple: true },
      quick: { type: 'boolean', default: false },
      runs: { type: 'string' },
      size: { type: 'string' },
      seconds: { type: 'string' },
      rate: { type: 'string' },
      arg: { type: 'string', multiple: true },
      dir: { type: 'string' },
      only: { type: 'string' },
      logmerge: { type: 'string', multiple: true },
      peers: { type: 'string' },
      files: { type: 'string' },
      keep: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
    },
  })
  if (values.help) {
    process.stdout.write(USAGE)
    return
  }
  const names = positionals.length > 0 ? positionals : Object.keys(BENCHMARKS)
  for (const n of names) {
    if (!Object.hasOwn(BENCHMARKS, n)) {
      throw new RangeError(
        `unknown benchmark ${JSON.stringify(n)}; expected one of ${Object.keys(BENCHMARKS).join(', ')}`,
      )
    }
  }
  checkBuild()
  const available = listEngines()
  // `--engine none`: no logmerge rows (follow: the peers alone).
  const engines = (values.engine ?? available).filter((e) => e !== 'none')
  for (const e of engines) {
    if (!available.includes(e)) {
      throw new RangeError(
        `unknown engine ${JSON.stringify(e)}; logmerge offers ${available.join(', ')}`,
      )
    }
  }
  /** @type {BenchOptions} */
  const opts = {
    engines,
    quick: values.quick ?? false,
    runs: Math.round(positive(values.runs, '--runs') ?? 3),
    runsGiven: values.runs !== undefined,
    bytesEach: values.size === undefined ? undefined : parseSize(values.size),
    seconds: positive(values.seconds, '--seconds'),
    rate: positive(values.rate, '--rate'),
    extraArgs: values.arg ?? [],
    dir: values.dir,
    only: values.only,
    logmerge: values.logmerge,
    peers: values.peers,
    files: values.files
      ?.split(',')
      .map((f) => Math.round(/** @type {number} */ (positive(f, '--files')))),
    keep: values.keep ?? false,
  }

  const machine = machineInfo()
  const git = gitInfo()
  const dirty = git.dirty.length > 0 ? ` (uncommitted changes in ${git.dirty.join(', ')})` : ''
  process.stdout.write(
    `## logmerge benchmarks${opts.quick ? ' (--quick)' : ''}\n\n${formatMachine(machine)}\n- logmerge: commit ${git.commit}${dirty}; build (dist/, bundle/) ${distStamp()}; engines: ${engines.join(', ')}\n`,
  )
  for (const name of names) {
    const bench = /** @type {(o: BenchOptions) => Promise<{ markdown: string, json: object }>} */ (
      BENCHMARKS[name]
    )
    const built = distStamp()
    const { markdown, json } = await bench(opts)
    // Others may rebuild dist/ and bundle/ while we run (npm test builds first): then the
    // figures mix builds.
    const rebuilt = distStamp() !== built
    const warning = rebuilt
      ? '\n\n**Warning: the build (dist/, bundle/) changed while this benchmark ran (someone rebuilt it); its figures may mix two builds. Run it again.**'
      : ''
    if (rebuilt) process.stderr.write(`bench: ${name}: the build changed during the run\n`)
    const path = await writeResults(name, {
      machine,
      git,
      options: opts,
      dist: built,
      distRebuiltDuringRun: rebuilt,
      ...json,
    })
    process.stdout.write(`\n${markdown}${warning}\n\n(JSON: ${path})\n`)
  }
}

main(process.argv.slice(2)).catch((err) => {
  process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exitCode = 1
})
