// @ts-check
/**
 * startup: what a spawned logmerge costs before it does any work, in wall time and CPU, for
 * this checkout and others side by side (the runs alternate, so a change in the machine's load
 * falls on every build alike). Node's own start is measured too, as the floor.
 *
 *   node bench/startup.mjs [--runs 12] [--engine async --engine threads] [--against DIR ...]
 *
 * Per round, in turn:
 *   - `node -e 0`: Node's own start and exit;
 *   - for each build (this checkout, then each --against checkout, each with its own bin/ and
 *     dist/): `logmerge --once fixtures/*.log -o /dev/null` (README's example), start to
 *     exit;
 *   - for each build and engine: `logmerge in/*.log -o out.log --log-level info` on 4 small
 *     files, from spawn to the "ready: following" line on stderr, and the CPU of the whole
 *     process (every thread, /proc/<pid>/stat) at that moment; then SIGTERM.
 * The first two run under /usr/bin/time for their CPU (user + sys, 10 ms resolution: hence the
 * means over many runs). Prints one line a run and a Markdown table of medians and means;
 * writes bench/out/results-startup.json.
 */

import { spawn } from 'node:child_process'
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { fmt, formatMachine, machineInfo, markdownTable, OUT_DIR, ROOT, sleep } from './lib.mjs'

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '12' },
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

const dir = join(OUT_DIR, 'startup')
mkdirSync(join(dir, 'in'), { recursive: true })
for (let i = 0; i < 4; i++) writeFileSync(join(dir, 'in', `f${i}.log`), `line ${i}\n`.repeat(100))

/**
 * Runs `args` under /usr/bin/time to its exit.
 * @param {string[]} args @returns {Promise<{ wallMs: number, cpu: number, exit: number | null }>}
 */
async function timed(args) {
  const timeFile = join(dir, 'time.txt')
  const t0 = performance.now()
  const p = spawn('/usr/bin/time', ['-f', '%U %S', '-o', timeFile, ...args], {
    cwd: dir,
    stdio: 'ignore',
  })
  const exit = await new Promise((res) => p.on('exit', (code) => res(code)))
  const wallMs = performance.now() - t0
  const [u, s] = readFileSync(timeFile, 'latin1').trim().split('\n').at(-1)?.split(' ') ?? []
  return { wallMs, cpu: Number(u) + Number(s), exit }
}

/** CPU-seconds of every thread of `pid` so far, or null once it is gone. @param {number} pid */
function cpuOf(pid) {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'latin1').split(') ')[1]?.split(' ') ?? []
    return (Number(f[11]) + Number(f[12])) / 100
  } catch {
    return null
  }
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
  const readyMs = performance.now() - t0
  const cpu = p.pid === undefined ? null : cpuOf(p.pid)
  p.kill('SIGTERM')
  const exit = await exited
  clearTimeout(deadline)
  return { readyMs, cpu, exit, ok: err.includes('ready: following') }
}

/** @typedef {{ what: string, ms: number, cpu: number | null, exit: number | null }} Run */
/** @type {Run[]} */
const all = []
const load0 = readFileSync('/proc/loadavg', 'latin1').split(' ').slice(0, 3).join(' ')
const name = (/** @type {string} */ b) => (b === ROOT ? 'A' : `B${builds.indexOf(b)}`)
for (let r = 0; r < runs; r++) {
  const n = await timed([process.execPath, '-e', '0'])
  all.push({ what: 'node -e 0', ms: n.wallMs, cpu: n.cpu, exit: n.exit })
  for (const build of builds) {
    const x = await timed([
      process.execPath,
      join(build, 'bin', 'logmerge'),
      '--once',
      ...fixtures,
      '-o',
      '/dev/null',
    ])
    all.push({ what: `--once fixtures ${name(build)}`, ms: x.wallMs, cpu: x.cpu, exit: x.exit })
  }
  for (const engine of engines)
    for (const build of builds) {
      const x = await toReady(build, engine)
      const what = `ready ${engine} ${name(build)}`
      all.push({ what, ms: x.readyMs, cpu: x.cpu, exit: x.ok ? x.exit : -1 })
    }
  const last = all.slice(-(1 + builds.length * (1 + engines.length)))
  console.error(`round ${r + 1}: ${last.map((x) => `${x.what} ${fmt(x.ms, 0)} ms`).join('; ')}`)
  await sleep(100)
}
const load1 = readFileSync('/proc/loadavg', 'latin1').split(' ').slice(0, 3).join(' ')

const median = (/** @type {number[]} */ xs) => {
  const v = [...xs].sort((a, b) => a - b)
  const mid = (v.length - 1) / 2
  return v.length === 0 ? Number.NaN : ((v[Math.floor(mid)] ?? 0) + (v[Math.ceil(mid)] ?? 0)) / 2
}
const mean = (/** @type {number[]} */ xs) => xs.reduce((a, b) => a + b, 0) / xs.length
const rows = []
for (const what of [...new Set(all.map((x) => x.what))]) {
  const xs = all.filter((x) => x.what === what)
  const cpus = /** @type {number[]} */ (xs.map((x) => x.cpu).filter((c) => c !== null))
  rows.push([
    what,
    fmt(median(xs.map((x) => x.ms)), 0),
    fmt(mean(xs.map((x) => x.ms)), 0),
    fmt(median(cpus) * 1000, 0),
    fmt(mean(cpus) * 1000, 0),
    [...new Set(xs.map((x) => x.exit))].join(','),
  ])
}
console.log(formatMachine(machineInfo()))
console.log(
  `\n${runs} rounds; ${builds.map((b) => `${name(b)} = ${b}`).join(', ')}; load average ${load0} at the start, ${load1} at the end\n`,
)
console.log(
  markdownTable(
    ['what', 'wall ms median', 'wall ms mean', 'CPU ms median', 'CPU ms mean', 'exit codes'],
    rows,
  ),
)
writeFileSync(
  join(OUT_DIR, 'results-startup.json'),
  `${JSON.stringify({ runs, builds, load0, load1, all }, null, 2)}\n`,
)
