// @ts-check
/**
 * startup: what a spawned logmerge and its reader threads cost before they do any work, in
 * wall time and CPU, for this checkout and others side by side (each round runs every build in
 * turn, so a change in the machine's load falls on every build alike). Written to compare the
 * bundle (bundle/, scripts/bundle.mjs) with tsc's one file per module (dist/): a build with a
 * bundle/cli.js is measured through bundle/, any other through dist/.
 *
 *   node bench/startup.mjs [--runs 20] [--engine async --engine threads] [--against DIR ...]
 *
 * Per round, in turn:
 *   - `node -e 0`: Node's own start and exit, the floor;
 *   - for each build (this checkout is A, each --against checkout B1, B2...: its own bin/ and
 *     build): `logmerge --once fixtures/*.log -o /dev/null` (README's example), spawn to exit;
 *   - for each build: importing its CLI (prestart, then cli, as bin/logmerge does) in a fresh
 *     process: the module loading alone (bench/startup-probe.mjs);
 *   - a thread that imports nothing, then for each build and reader-thread entry (the engines'
 *     worker, the --once --order time reader and partition threads): the CPU of starting one
 *     thread that loads that entry's modules (bench/startup-probe.mjs);
 *   - for each build and engine: `logmerge in/*.log -o out.log --log-level info` on 4 small
 *     files, from spawn to the "ready: following" line on stderr, and the CPU of the whole
 *     process (every thread, /proc/<pid>/stat) at that moment; then SIGTERM.
 * Spawn-to-exit runs under /usr/bin/time for their CPU (user + sys; it and /proc count in
 * 10 ms steps, hence many rounds). Prints one line a round and a Markdown table of medians
 * and quartiles; writes bench/out/results-startup.json.
 */

import { execFileSync, spawn } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import {
  cpuOf,
  fmt,
  formatMachine,
  machineInfo,
  markdownTable,
  OUT_DIR,
  ROOT,
  sleep,
} from './lib.mjs'

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '20' },
    engine: { type: 'string', multiple: true, default: ['async', 'threads'] },
    against: { type: 'string', multiple: true, default: [] },
  },
})
const runs = Number(values.runs)
const engines = values.engine ?? []
const builds = [ROOT, ...(values.against ?? []).map((d) => resolve(d))]
const fixtures = ['app', 'java', 'json', 'nginx', 'syslog'].map((n) =>
  join(ROOT, 'fixtures', `${n}.log`),
)
const PROBE = join(ROOT, 'bench', 'startup-probe.mjs')
const THREADS = ['worker', 'reader-thread', 'part-thread']

/** A build's files: bundle/ if it has one, else dist/. @param {string} build */
function layout(build) {
  const bundled = existsSync(join(build, 'bundle', 'cli.js'))
  const at = (/** @type {string} */ bundle, /** @type {string} */ dist) =>
    bundled ? join(build, 'bundle', bundle) : join(build, 'dist', dist)
  return {
    kind: bundled ? 'bundle' : 'dist',
    prestart: at('prestart.js', 'batch/prestart.js'),
    cli: at('cli.js', 'cli.js'),
    /** @type {Record<string, string>} */
    threads: {
      worker: at('worker.js', 'engines/worker.js'),
      'reader-thread': at('reader-thread.js', 'batch/reader-thread.js'),
      'part-thread': at('part-thread.js', 'batch/part-thread.js'),
    },
  }
}

const dir = join(OUT_DIR, 'startup')
mkdirSync(join(dir, 'in'), { recursive: true })
for (let i = 0; i < 4; i++) writeFileSync(join(dir, 'in', `f${i}.log`), `line ${i}\n`.repeat(100))

/**
 * Runs `args` under /usr/bin/time to its exit.
 * @param {string[]} args @returns {Promise<{ ms: number, cpu: number, exit: number | null }>}
 */
async function timed(args) {
  const timeFile = join(dir, 'time.txt')
  const t0 = performance.now()
  const p = spawn('/usr/bin/time', ['-f', '%U %S', '-o', timeFile, ...args], {
    cwd: dir,
    stdio: 'ignore',
  })
  const exit = await new Promise((res) => p.on('exit', (code) => res(code)))
  const ms = performance.now() - t0
  const [u, s] = readFileSync(timeFile, 'latin1').trim().split('\n').at(-1)?.split(' ') ?? []
  return { ms, cpu: Number(u) + Number(s), exit }
}

/** bench/startup-probe.mjs with `args`. @param {string[]} args */
function probe(args) {
  const r = JSON.parse(execFileSync(process.execPath, [PROBE, ...args], { encoding: 'utf8' }))
  return { ms: Number(r.ms), cpu: Number(r.cpuMs) / 1000, exit: 0 }
}

/**
 * Spawn to "ready: following" of `build` with `engine`, then SIGTERM.
 * @param {string} build @param {string} engine
 */
async function toReady(build, engine) {
  rmSync(join(dir, 'out.log'), { force: true })
  rmSync(join(dir, 'st.json'), { force: true })
  const args = [join(build, 'bin', 'logmerge'), 'in/*.log', '-o', 'out.log', '--state', 'st.json']
  args.push('--log-level', 'info', '--engine', engine)
  const t0 = performance.now()
  const p = spawn(process.execPath, args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] })
  let err = ''
  /** @type {() => void} */
  let wake = () => {}
  p.stderr.setEncoding('latin1').on('data', (d) => {
    err += d
    wake()
  })
  /** @type {Promise<number | null>} */
  const exited = new Promise((res) => p.on('exit', (code) => res(code)))
  const deadline = setTimeout(() => p.kill('SIGKILL'), 30_000)
  while (!err.includes('ready: following') && p.exitCode === null && p.signalCode === null)
    await new Promise((res) => {
      wake = () => res(undefined)
      p.once('exit', () => res(undefined))
    })
  const ms = performance.now() - t0
  const cpu = p.pid === undefined ? null : cpuOf(p.pid)
  p.kill('SIGTERM')
  const exit = await exited
  clearTimeout(deadline)
  return { ms, cpu, exit: err.includes('ready: following') ? exit : -1 }
}

/** @typedef {{ what: string, ms: number, cpu: number | null, exit: number | null }} Run */
/** @type {Run[]} */
const all = []
const load0 = readFileSync('/proc/loadavg', 'latin1').split(' ').slice(0, 3).join(' ')
const name = (/** @type {string} */ b) =>
  `${b === ROOT ? 'A' : `B${builds.indexOf(b)}`} (${layout(b).kind})`
for (let r = 0; r < runs; r++) {
  const round = all.length
  /** @param {string} what @param {{ ms: number, cpu: number | null, exit: number | null }} x */
  const add = (what, x) => all.push({ what, ...x })
  add('node -e 0', await timed([process.execPath, '-e', '0']))
  for (const b of builds) {
    const args = [process.execPath, join(b, 'bin', 'logmerge'), '--once', ...fixtures]
    add(`--once fixtures, spawn to exit: ${name(b)}`, await timed([...args, '-o', '/dev/null']))
  }
  for (const b of builds)
    add(`import the CLI: ${name(b)}`, probe(['cli', layout(b).prestart, layout(b).cli]))
  add('a thread that imports nothing', probe(['thread', '-']))
  for (const t of THREADS)
    for (const b of builds)
      add(
        `a thread loading ${t}'s modules: ${name(b)}`,
        probe(['thread', layout(b).threads[t] ?? '']),
      )
  for (const engine of engines)
    for (const b of builds) add(`spawn to ready, ${engine}: ${name(b)}`, await toReady(b, engine))
  const mine = all.slice(round)
  console.error(
    `round ${r + 1}: ${mine.map((x) => `${fmt((x.cpu ?? Number.NaN) * 1000, 0)}`).join(' ')} (CPU ms)`,
  )
  await sleep(100)
}
const load1 = readFileSync('/proc/loadavg', 'latin1').split(' ').slice(0, 3).join(' ')

/** Nearest-rank quantile of an ascending array. @param {number[]} v @param {number} q */
const quantile = (v, q) => v[Math.min(v.length - 1, Math.max(0, Math.ceil(q * v.length) - 1))]
const rows = []
for (const what of [...new Set(all.map((x) => x.what))]) {
  const xs = all.filter((x) => x.what === what)
  const ms = xs.map((x) => x.ms).sort((a, b) => a - b)
  const cpu = /** @type {number[]} */ (xs.map((x) => x.cpu).filter((c) => c !== null))
    .map((c) => c * 1000)
    .sort((a, b) => a - b)
  rows.push([
    what,
    fmt(quantile(ms, 0.5), 0),
    `${fmt(quantile(ms, 0.25), 0)}-${fmt(quantile(ms, 0.75), 0)}`,
    fmt(quantile(cpu, 0.5), 0),
    `${fmt(quantile(cpu, 0.25), 0)}-${fmt(quantile(cpu, 0.75), 0)}`,
    [...new Set(xs.map((x) => x.exit))].join(','),
  ])
}
console.log(formatMachine(machineInfo()))
console.log(
  `\n${runs} rounds; ${builds.map((b) => `${name(b)} = ${b}`).join(', ')}; load average ${load0} at the start, ${load1} at the end\n`,
)
console.log(
  markdownTable(
    [
      'what',
      'wall ms, median',
      'wall ms, quartiles',
      'CPU ms, median',
      'CPU ms, quartiles',
      'exit',
    ],
    rows,
  ),
)
writeFileSync(
  join(OUT_DIR, 'results-startup.json'),
  `${JSON.stringify({ runs, builds, load0, load1, all }, null, 2)}\n`,
)
