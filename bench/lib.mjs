// @ts-check
/**
 * Shared helpers for the benchmarks: paths, the machine description, the engine list (parsed
 * from `logmerge --help`), running a process while measuring its wall time and peak RSS,
 * percentiles, Markdown tables and the JSON results file.
 */

import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { accessSync, constants, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { availableParallelism, loadavg, release, totalmem } from 'node:os'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

export const ROOT = dirname(dirname(fileURLToPath(import.meta.url)))
export const BIN = join(ROOT, 'bin', 'logmerge')
/** Generated data and results (git-ignored). */
export const OUT_DIR = join(ROOT, 'bench', 'out')
export const MiB = 1024 * 1024

/**
 * @typedef {object} Machine
 * @property {number} nproc
 * @property {string} cpu
 * @property {number} memTotalMiB
 * @property {string} node
 * @property {string} kernel
 * @property {string} date          ISO-8601, UTC
 * @property {string} filesystem    where bench/out lives (type and device), if findmnt knows
 * @property {number[]} loadavg     1, 5 and 15 minute load averages when the run started
 */

/** @returns {Machine} */
export function machineInfo() {
  let cpu = 'unknown'
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))
    if (m?.[1]) cpu = m[1].trim()
  } catch {}
  let nproc = availableParallelism()
  try {
    nproc = Number(execFileSync('nproc', { encoding: 'utf8' }).trim()) || nproc
  } catch {}
  let filesystem = 'unknown'
  try {
    mkdirSync(OUT_DIR, { recursive: true })
    filesystem = execFileSync('findmnt', ['-n', '-o', 'FSTYPE,SOURCE,TARGET', '-T', OUT_DIR], {
      encoding: 'utf8',
    })
      .trim()
      .replace(/\s+/g, ' ')
  } catch {}
  return {
    nproc,
    cpu,
    memTotalMiB: Math.round(totalmem() / MiB),
    node: process.version,
    kernel: release(),
    date: new Date().toISOString(),
    filesystem,
    loadavg: loadavg().map((x) => Math.round(x * 100) / 100),
  }
}

/** @param {Machine} m @returns {string} Markdown */
export function formatMachine(m) {
  return [
    `- CPU: ${m.cpu}, nproc ${m.nproc}`,
    `- memory: ${(m.memTotalMiB / 1024).toFixed(1)} GiB`,
    `- node ${m.node}, kernel ${m.kernel}`,
    `- bench/out on: ${m.filesystem}`,
    `- date: ${m.date}; load average at start ${m.loadavg.join(', ')}`,
  ].join('\n')
}

/**
 * @param {string} [root]  a checkout of logmerge (default: this one)
 * @returns {{ commit: string, dirty: string[] }} HEAD and the uncommitted files under src/
 */
export function gitInfo(root = ROOT) {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
      cwd: root,
      encoding: 'utf8',
    }).trim()
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src'], {
      cwd: root,
      encoding: 'utf8',
    })
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => l.slice(3))
    return { commit, dirty }
  } catch {
    return { commit: 'unknown', dirty: [] }
  }
}

/**
 * The `--engine` choices in `logmerge --help` (commander prints `(choices: "a", "b", ...)`,
 * possibly wrapped over several lines).
 * @param {string} help
 * @returns {string[]}
 */
export function parseEngineChoices(help) {
  const lines = help.split('\n')
  const at = lines.findIndex((l) => /^\s*--engine\b/.test(l))
  if (at < 0) return []
  // The option's description runs until the next line that starts another option.
  let text = lines[at] ?? ''
  for (let i = at + 1; i < lines.length; i++) {
    const l = lines[i] ?? ''
    if (/^\s*-/.test(l) || l.trim() === '') break
    text += ` ${l.trim()}`
  }
  const m = /choices:\s*((?:"[^"]*"\s*,?\s*)+)/.exec(text)
  if (!m?.[1]) return []
  return [...m[1].matchAll(/"([^"]*)"/g)].map((x) => x[1] ?? '').filter((x) => x !== '')
}

/**
 * @param {string} [bin]  a bin/logmerge (default: this checkout's)
 * @returns {string[]} every engine `bin/logmerge --help` offers
 */
export function listEngines(bin = BIN) {
  const r = spawnSync(process.execPath, [bin, '--help'], { encoding: 'utf8' })
  const engines = parseEngineChoices(`${r.stdout}`)
  if (engines.length === 0) {
    throw new Error(
      `could not find the --engine choices in \`logmerge --help\` (exit ${r.status}): ${r.stderr}`,
    )
  }
  return engines
}

/**
 * Warns when the build looks older than src/ (the benchmarks run bin/logmerge, which runs
 * bundle/cli.js, written after tsc's dist/ by `npm run build`).
 */
export function checkBuild() {
  const cli = join(ROOT, 'bundle', 'cli.js')
  let built
  try {
    built = statSync(cli).mtimeMs
  } catch {
    throw new Error('bundle/cli.js is missing: run `npm run build` first')
  }
  /** @param {string} dir @returns {string[]} */
  const newer = (dir) =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
      const p = join(dir, e.name)
      if (e.isDirectory()) return newer(p)
      return e.name.endsWith('.ts') && statSync(p).mtimeMs > built ? [relative(ROOT, p)] : []
    })
  const stale = newer(join(ROOT, 'src'))
  if (stale.length > 0) {
    process.stderr.write(
      `bench: warning: ${stale.join(', ')} changed after the last build; run \`npm run build\`\n`,
    )
  }
  return stale
}

/**
 * @param {string} [root]  a checkout of logmerge (default: this one)
 * @returns {string} a hash of the compiled files under dist/ and bundle/ (what the benchmarks
 *   run: bin/logmerge runs bundle/, the in-process benchmarks import dist/)
 */
export function distStamp(root = ROOT) {
  const hash = createHash('sha1')
  /** @param {string} dir */
  const walk = (dir) => {
    const entries = readdirSync(dir, { withFileTypes: true }).sort((a, b) =>
      a.name < b.name ? -1 : 1,
    )
    for (const e of entries) {
      const p = join(dir, e.name)
      if (e.isDirectory()) walk(p)
      else if (e.name.endsWith('.js')) hash.update(relative(root, p)).update(readFileSync(p))
    }
  }
  for (const dir of ['dist', 'bundle']) {
    try {
      walk(join(root, dir))
    } catch {}
  }
  return hash.digest('hex').slice(0, 12)
}

/** @returns {boolean} true when GNU time can report the peak RSS of a child */
function haveGnuTime() {
  try {
    accessSync('/usr/bin/time', constants.X_OK)
    return spawnSync('/usr/bin/time', ['-f', '%M', 'true'], { encoding: 'utf8' }).status === 0
  } catch {
    return false
  }
}

/** @type {boolean | undefined} */
let gnuTime
/** @returns {'gnu-time' | 'proc-sampling'} how peak RSS is measured on this machine */
export function rssMethod() {
  gnuTime ??= haveGnuTime()
  return gnuTime ? 'gnu-time' : 'proc-sampling'
}

/** CPU-seconds of every thread of `pid` so far, or null once it is gone. @param {number} pid */
export function cpuOf(pid) {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'latin1').split(') ')[1]?.split(' ') ?? []
    return (Number(f[11]) + Number(f[12])) / 100
  } catch {
    return null
  }
}

/**
 * VmHWM (peak resident set) of a live process, in KiB, or null when it is gone.
 * @param {number} pid
 * @returns {number | null}
 */
export function readHwmKiB(pid) {
  try {
    const m = /^VmHWM:\s*(\d+)\s*kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m?.[1] ? Number(m[1]) : null
  } catch {
    return null
  }
}

/**
 * Samples a process's VmHWM every `everyMs` until `stop()`; the result is a lower bound of the
 * true peak (it misses what happens after the last sample).
 * @param {number} pid @param {number} everyMs
 * @returns {{ stop: () => number | null, peek: () => number | null }}
 */
export function sampleHwm(pid, everyMs = 10) {
  /** @type {number | null} */
  let peak = null
  const take = () => {
    const v = readHwmKiB(pid)
    if (v !== null && (peak === null || v > peak)) peak = v
  }
  take()
  const timer = setInterval(take, everyMs)
  return {
    peek: () => {
      take()
      return peak
    },
    stop: () => {
      take()
      clearInterval(timer)
      return peak
    },
  }
}

/**
 * @typedef {object} Measured
 * @property {number | null} code
 * @property {NodeJS.Signals | null} signal
 * @property {number} wallMs        from spawn to exit
 * @property {number | null} peakRssKiB
 * @property {string} stderr
 */

/**
 * Runs `cmd args` to completion, measuring wall time and peak RSS (GNU time's %M when
 * available, else sampling /proc/<pid>/status VmHWM while it runs).
 * @param {string} cmd
 * @param {string[]} args
 * @param {{ stdout?: number | 'ignore', cwd?: string }} [opts] stdout: an fd to write to
 * @returns {Promise<Measured>}
 */
export function runMeasured(cmd, args, opts = {}) {
  const useTime = rssMethod() === 'gnu-time'
  const rssFile = join(OUT_DIR, `.rss-${process.pid}`)
  const [file, argv] = useTime
    ? ['/usr/bin/time', ['-f', '%M', '-o', rssFile, cmd, ...args]]
    : [cmd, args]
  return new Promise((resolve, reject) => {
    const t0 = performance.now()
    const child = spawn(file, argv, {
      cwd: opts.cwd ?? ROOT,
      stdio: ['ignore', opts.stdout ?? 'ignore', 'pipe'],
    })
    const sampler = !useTime && child.pid !== undefined ? sampleHwm(child.pid, 10) : null
    let stderr = ''
    child.stderr?.setEncoding('utf8').on('data', (d) => {
      stderr += d
    })
    child.on('error', (err) => {
      sampler?.stop()
      reject(err)
    })
    child.on('exit', (code, signal) => {
      const wallMs = performance.now() - t0
      let peakRssKiB = sampler ? sampler.stop() : null
      if (useTime) {
        try {
          const lines = readFileSync(rssFile, 'utf8').trim().split('\n')
          const n = Number(lines[lines.length - 1])
          if (Number.isFinite(n)) peakRssKiB = n
        } catch {}
      }
      // 'close' follows once stderr is fully read.
      child.on('close', () => resolve({ code, signal, wallMs, peakRssKiB, stderr }))
    })
  })
}

/**
 * Nearest-rank percentile of an ascending array.
 * @param {readonly number[]} sorted @param {number} p in [0, 100]
 * @returns {number}
 */
export function percentile(sorted, p) {
  if (sorted.length === 0) return Number.NaN
  const rank = Math.ceil((p / 100) * sorted.length)
  return /** @type {number} */ (sorted[Math.min(sorted.length, Math.max(1, rank)) - 1])
}

/**
 * @param {readonly string[]} headers
 * @param {ReadonlyArray<ReadonlyArray<string | number>>} rows
 * @returns {string}
 */
export function markdownTable(headers, rows) {
  const line = (/** @type {ReadonlyArray<string | number>} */ cells) =>
    `| ${cells.map((c) => String(c).replace(/\|/g, '\\|')).join(' | ')} |`
  return [line(headers), line(headers.map(() => '---')), ...rows.map(line)].join('\n')
}

/** @param {number | null | undefined} n @param {number} digits */
export function fmt(n, digits = 1) {
  return n === null || n === undefined || !Number.isFinite(n) ? 'n/a' : n.toFixed(digits)
}

/**
 * Writes `bench/out/results-<name>.json`.
 * @param {string} name @param {unknown} results
 * @returns {Promise<string>} the path written
 */
export async function writeResults(name, results) {
  mkdirSync(OUT_DIR, { recursive: true })
  const path = join(OUT_DIR, `results-${name}.json`)
  await writeFile(path, `${JSON.stringify(results, null, 2)}\n`)
  return path
}

/** @param {number} ms */
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Keeps track of a spawned logmerge: what it wrote to stderr, and whether and how it exited.
 * @param {import('node:child_process').ChildProcess} child
 */
export function trackChild(child) {
  const state = {
    stderr: '',
    alive: true,
    /** @type {Promise<{ code: number | null, signal: NodeJS.Signals | null }>} */
    exited: Promise.resolve({ code: null, signal: null }),
  }
  child.stderr?.setEncoding('utf8').on('data', (d) => {
    state.stderr += d
  })
  state.exited = new Promise((resolve) =>
    child.on('exit', (code, signal) => {
      state.alive = false
      resolve({ code, signal })
    }),
  )
  return state
}
