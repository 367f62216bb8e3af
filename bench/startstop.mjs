// @ts-check
/**
 * startstop: what starting and stopping a daemon on many idle files costs, in CPU as well as
 * time. On a shared machine the wall-clock figures follow the load; the CPU-seconds do much
 * less, so this is the benchmark for changes to start-up and stop work (A/B in one run).
 *
 *   node bench/startstop.mjs [--files 10000] [--rounds 3] [--engine E ...] [--against DIR ...]
 *
 * N files of one line each (made once under bench/out/startstop-<N>/in/); per round, for each
 * build (this checkout, then each --against checkout, its own built dist/) and engine, in turn:
 *   1. spawn `logmerge 'in/*.log' -o out.log --state st.json --log-level info` (no state file
 *      left from before: every file is new), run under /usr/bin/time for the CPU of the whole
 *      process at its exit;
 *   2. "following": the time from spawn to the "ready: following" line on stderr, and the CPU
 *      (utime + stime of every thread, /proc/<pid>/stat) at that moment;
 *   3. idle for 3 s, then SIGTERM: the time until exit, and the CPU from the signal to the exit
 *      (the whole run's CPU from /usr/bin/time less the CPU read just before the signal).
 * Prints one line a run and a Markdown table of medians; writes bench/out/results-startstop.json.
 */

import { spawn } from 'node:child_process'
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
    files: { type: 'string', default: '10000' },
    rounds: { type: 'string', default: '3' },
    engine: {
      type: 'string',
      multiple: true,
      default: ['async', 'threads', 'top-down', 'bottom-up'],
    },
    against: { type: 'string', multiple: true, default: [] },
  },
})
const files = Number(values.files)
const rounds = Number(values.rounds)
const builds = [ROOT, ...(values.against ?? []).map((d) => resolve(d))]

const dir = join(OUT_DIR, `startstop-${files}`)
if (!existsSync(join(dir, 'in', `f${files - 1}.log`))) {
  mkdirSync(join(dir, 'in'), { recursive: true })
  for (let i = 0; i < files; i++)
    writeFileSync(join(dir, 'in', `f${i}.log`), `init file=${i} ${'x'.repeat(40)}\n`)
}

/**
 * One start, 3 s of idling and a stop of `build` with `engine`.
 * @param {string} build @param {string} engine
 */
async function once(build, engine) {
  rmSync(join(dir, 'out.log'), { force: true })
  rmSync(join(dir, 'st.json'), { force: true })
  const timeFile = join(dir, 'time.txt')
  const args = ['-f', '%U %S', '-o', timeFile, join(build, 'bin', 'logmerge'), 'in/*.log']
  args.push('-o', 'out.log', '--state', 'st.json', '--log-level', 'info', '--engine', engine)
  const t0 = performance.now()
  const p = spawn('/usr/bin/time', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] })
  let err = ''
  p.stderr.on('data', (d) => {
    err += d
  })
  /** @type {Promise<number | null>} */
  const exited = new Promise((res) => p.on('exit', (code) => res(code)))
  // The child of /usr/bin/time is logmerge (node); its pid is time's only child.
  /** @type {number | null} */
  let pid = null
  while (pid === null && performance.now() - t0 < 5000) {
    try {
      pid = Number(readFileSync(`/proc/${p.pid}/task/${p.pid}/children`, 'latin1').trim()) || null
    } catch {}
    if (pid === null) await sleep(5)
  }
  while (!/ready: following/.test(err) && performance.now() - t0 < 120_000) await sleep(10)
  const followingMs = performance.now() - t0
  const cpuFollowing = pid === null ? null : cpuOf(pid)
  await sleep(3000)
  const cpuBeforeStop = pid === null ? null : cpuOf(pid)
  const ts = performance.now()
  if (pid !== null) process.kill(pid, 'SIGTERM')
  const code = await exited
  const stopMs = performance.now() - ts
  const [u, s] = readFileSync(timeFile, 'latin1').trim().split('\n').at(-1)?.split(' ') ?? []
  const cpuTotal = Number(u) + Number(s)
  return {
    build,
    engine,
    followingMs,
    cpuFollowing,
    stopMs,
    cpuStop: cpuBeforeStop === null ? null : cpuTotal - cpuBeforeStop,
    cpuTotal,
    exit: code,
  }
}

const median = (/** @type {(number | null)[]} */ xs) => {
  const v = /** @type {number[]} */ (xs.filter((x) => x !== null && Number.isFinite(x))).sort(
    (a, b) => a - b,
  )
  const mid = (v.length - 1) / 2
  return v.length === 0 ? null : ((v[Math.floor(mid)] ?? 0) + (v[Math.ceil(mid)] ?? 0)) / 2
}

const runs = []
const load0 = readFileSync('/proc/loadavg', 'latin1').split(' ').slice(0, 3).join(' ')
for (let r = 0; r < rounds; r++)
  for (const engine of values.engine ?? [])
    for (const build of builds) {
      const x = await once(build, engine)
      runs.push(x)
      console.error(
        `${build} ${engine}: following ${fmt(x.followingMs / 1000, 2)} s, CPU ${fmt(x.cpuFollowing, 2)} s; stop ${fmt(x.stopMs / 1000, 2)} s, CPU ${fmt(x.cpuStop, 2)} s; exit ${x.exit}`,
      )
    }
const load1 = readFileSync('/proc/loadavg', 'latin1').split(' ').slice(0, 3).join(' ')
const rows = []
for (const engine of values.engine ?? [])
  for (const build of builds) {
    const xs = runs.filter((x) => x.build === build && x.engine === engine)
    rows.push([
      `${engine} ${build === ROOT ? 'A (this checkout)' : `B ${build}`}`,
      fmt(median(xs.map((x) => x.followingMs / 1000)), 2),
      fmt(median(xs.map((x) => x.cpuFollowing)), 2),
      fmt(median(xs.map((x) => x.stopMs / 1000)), 2),
      fmt(median(xs.map((x) => x.cpuStop)), 2),
      xs.map((x) => x.exit).join(','),
    ])
  }
console.log(formatMachine(machineInfo()))
console.log(
  `\n${files} idle files, ${rounds} rounds, medians; load average ${load0} at the start, ${load1} at the end\n`,
)
console.log(
  markdownTable(
    [
      'engine, build',
      'following after s',
      'CPU-s to following',
      'SIGTERM to exit s',
      'CPU-s of the stop',
      'exit codes',
    ],
    rows,
  ),
)
mkdirSync(OUT_DIR, { recursive: true })
writeFileSync(
  join(OUT_DIR, 'results-startstop.json'),
  `${JSON.stringify({ files, rounds, load0, load1, runs }, null, 2)}\n`,
)
