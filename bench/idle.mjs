// @ts-check
/**
 * idle: what following many files that do not change costs: memory, threads, CPU and fds.
 *
 * For each engine and file count N (1,000 for every engine and 10,000 for `async`; 100 and
 * 1,000 with --quick):
 *   1. bench/out/idle-N/in/ holds N files of one short line each (made once, then reused).
 *   2. `bin/logmerge bench/out/idle-N/in/ -o bench/out/idle-E-N.out --engine E` starts under
 *      `bash -c 'ulimit -n 65536 || ulimit -n <hard limit>; exec ...'` (the limit in effect is
 *      read back from /proc/<pid>/limits).
 *   3. Start-up is over once at least 5 s (3 s with --quick) have passed and the last second
 *      used under 10 % of a core (at most 60 s).
 *   4. Then for 20 s (5 s with --quick), once a second: VmRSS and Threads from
 *      /proc/<pid>/status and the number of open fds; CPU is utime+stime from /proc/<pid>/stat
 *      over the whole window, in % of one core.
 *   5. Finally a line is appended to one file picked at random: it must reach the output (it
 *      proves the files are really followed), then SIGTERM: logmerge must exit 0.
 * Node's own threads are measured first, on idle `node -e` processes: without and with the
 * libuv pool started (it starts on the first async fs call and keeps 4 threads). A thread
 * engine's reader threads are inferred as its thread count minus the second baseline.
 */

import { execFileSync, spawn } from 'node:child_process'
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { availableParallelism } from 'node:os'
import { join, relative } from 'node:path'
import { BIN, fmt, markdownTable, OUT_DIR, ROOT, sleep, trackChild } from './lib.mjs'
import { clockTicks, cpuTicks } from './throughput.mjs'

export const TARGET_ASYNC_FILES = 10_000
/** 200 MB (10^6 bytes), reported in MiB. */
export const TARGET_RSS_BYTES = 200e6
export const TARGET_CPU_PERCENT = 2
const WANTED_NOFILE = 65_536

/**
 * @typedef {object} Status
 * @property {number | null} rssKiB    VmRSS
 * @property {number | null} hwmKiB    VmHWM
 * @property {number | null} threads
 * @property {number | null} fds
 */

/** @param {number} pid @returns {Status} */
export function readStatus(pid) {
  /** @type {Status} */
  const s = { rssKiB: null, hwmKiB: null, threads: null, fds: null }
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8')
    const num = (/** @type {RegExp} */ re) => {
      const m = re.exec(text)
      return m?.[1] ? Number(m[1]) : null
    }
    s.rssKiB = num(/^VmRSS:\s*(\d+)/m)
    s.hwmKiB = num(/^VmHWM:\s*(\d+)/m)
    s.threads = num(/^Threads:\s*(\d+)/m)
    s.fds = readdirSync(`/proc/${pid}/fd`).length
  } catch {}
  return s
}

/**
 * inotify watches held by a process: the `inotify wd:` lines in the fdinfo of its inotify fds.
 * @param {number} pid
 * @returns {number | null}
 */
function inotifyWatches(pid) {
  try {
    let n = 0
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      let target = ''
      try {
        target = readlinkSync(`/proc/${pid}/fd/${fd}`)
      } catch {
        continue
      }
      if (target !== 'anon_inode:inotify') continue
      const info = readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8')
      n += info.split('\n').filter((l) => l.startsWith('inotify wd:')).length
    }
    return n
  } catch {
    return null
  }
}

/** @param {number} pid @returns {number | null} the soft RLIMIT_NOFILE in effect */
function openFileLimit(pid) {
  try {
    const m = /^Max open files\s+(\S+)/m.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'))
    return m?.[1] ? Number(m[1]) : null
  } catch {
    return null
  }
}

/**
 * Spawns a process with a raised open-file limit: 65536 if allowed, else the hard limit.
 * `exec` keeps the pid, so /proc/<pid> is the program's.
 * @param {string[]} argv  program and arguments
 */
function spawnWithLimit(argv) {
  const script = `ulimit -n ${WANTED_NOFILE} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$@"`
  return spawn('bash', ['-c', script, 'bash', ...argv], {
    cwd: ROOT,
    stdio: ['ignore', 'ignore', 'pipe'],
  })
}

/**
 * Node's own threads, RSS and fds with nothing to do: `setTimeout` only, and after one async fs
 * call (which starts the libuv pool).
 */
async function nodeBaselines() {
  const programs = [
    { name: 'node, idle', code: 'setTimeout(() => {}, 1e5)' },
    {
      name: 'node, idle, libuv pool started',
      code: "require('node:fs').stat('.', () => {}); setTimeout(() => {}, 1e5)",
    },
  ]
  const out = []
  for (const p of programs) {
    const child = spawn(process.execPath, ['-e', p.code], { stdio: 'ignore' })
    await sleep(1000)
    const s = readStatus(/** @type {number} */ (child.pid))
    child.kill('SIGKILL')
    out.push({ name: p.name, command: `node -e '${p.code}'`, ...s })
  }
  return out
}

/**
 * Makes (or reuses) a directory of `n` files, each holding one short line.
 * @param {number} n
 * @returns {string} the directory
 */
export function ensureFiles(n) {
  const dir = join(OUT_DIR, `idle-${n}`, 'in')
  const width = String(n - 1).length
  const name = (/** @type {number} */ i) => `f${String(i).padStart(width, '0')}.log`
  /** @type {string[]} */
  let have = []
  try {
    have = readdirSync(dir)
  } catch {}
  if (have.length === n && have.every((f) => /^f\d+\.log$/.test(f))) return dir
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir, { recursive: true })
  for (let i = 0; i < n; i++) writeFileSync(join(dir, name(i)), `idle file ${i}: one short line\n`)
  return dir
}

/**
 * @param {string} engine @param {number} files
 * @param {{ settleMinMs: number, settleMaxMs: number, windowMs: number, extra: string[], ticksPerSec: number, poolBaseline: number | null }} o
 */
async function measureEngine(engine, files, o) {
  const dir = ensureFiles(files)
  const output = join(OUT_DIR, `idle-${engine}-${files}.out`)
  rmSync(output, { force: true })
  // logmerge keeps a checkpoint beside the output (.<name>.logmerge-state.json, plus .bad-*
  // copies): a leftover one would make this run a restart (resume from old offsets).
  const stateName = `.idle-${engine}-${files}.out.logmerge-state.json`
  for (const f of readdirSync(OUT_DIR)) {
    if (f.startsWith(stateName)) rmSync(join(OUT_DIR, f), { force: true })
  }
  const args = [`${relative(ROOT, dir)}/`, '-o', relative(ROOT, output), '--engine', engine]
  args.push(...o.extra)
  const command = `bin/logmerge ${args.join(' ')}`
  const t0 = performance.now()
  const child = spawnWithLimit([process.execPath, BIN, ...args])
  const run = trackChild(child)
  const pid = /** @type {number} */ (child.pid)
  try {
    // Start-up: the output exists, at least settleMinMs passed, and the last second was quiet.
    let last = cpuTicks(pid) ?? 0
    let settled = false
    let lastSecondPercent = Number.NaN
    while (performance.now() - t0 < o.settleMaxMs) {
      await sleep(1000)
      if (!run.alive) throw new Error(`${command} exited during start-up: ${run.stderr}`)
      const t = cpuTicks(pid) ?? last
      lastSecondPercent = ((t - last) / o.ticksPerSec) * 100
      last = t
      if (performance.now() - t0 >= o.settleMinMs && existsSync(output)) {
        if (lastSecondPercent < 10) {
          settled = true
          break
        }
      }
    }
    const settleMs = performance.now() - t0
    const nofile = openFileLimit(pid)

    // The window.
    /** @type {Status[]} */
    const samples = []
    /** @type {number[]} */
    const perSecond = []
    const w0 = performance.now()
    const cpu0 = cpuTicks(pid) ?? 0
    let prev = cpu0
    samples.push(readStatus(pid))
    while (performance.now() - w0 < o.windowMs) {
      await sleep(Math.min(1000, o.windowMs - (performance.now() - w0)))
      if (!run.alive) throw new Error(`${command} exited while idle: ${run.stderr}`)
      const t = cpuTicks(pid) ?? prev
      perSecond.push(((t - prev) / o.ticksPerSec) * 100)
      prev = t
      samples.push(readStatus(pid))
    }
    const cpu1 = cpuTicks(pid) ?? prev
    const windowSecs = (performance.now() - w0) / 1000
    const watches = inotifyWatches(pid)

    // Really following? One line appended to a random file must come out.
    const names = readdirSync(dir).sort()
    const picked = names[Math.floor(Math.random() * names.length)] ?? ''
    const token = `idle-probe ${engine} ${files} ${Math.random().toString(36).slice(2)}`
    const p0 = performance.now()
    appendFileSync(join(dir, picked), `${token}\n`)
    let followMs = null
    while (performance.now() - p0 < 10_000) {
      if (existsSync(output) && readFileSync(output, 'latin1').includes(token)) {
        followMs = performance.now() - p0
        break
      }
      await sleep(5)
    }
    const s0 = performance.now()
    child.kill('SIGTERM')
    const killer = setTimeout(() => child.kill('SIGKILL'), 15_000)
    const { code, signal } = await run.exited
    clearTimeout(killer)
    const stopMs = performance.now() - s0
    // Put the file back as it was (after the exit: a rewrite while following is a truncation),
    // so the next run starts from the same inputs.
    const probed = join(dir, picked)
    writeFileSync(probed, readFileSync(probed, 'latin1').replace(`${token}\n`, ''))
    const outText = existsSync(output) ? readFileSync(output, 'latin1') : ''
    const probeCount = outText.split(token).length - 1

    const nums = (/** @type {(s: Status) => number | null} */ f) =>
      samples.map(f).filter((x) => x !== null)
    const rss = nums((s) => s.rssKiB)
    const threads = nums((s) => s.threads)
    const fds = nums((s) => s.fds)
    const threadsMax = threads.length > 0 ? Math.max(...threads) : null
    const end = samples[samples.length - 1]
    return {
      engine,
      files,
      command,
      nofileLimit: nofile,
      settleMs,
      settled,
      lastSettleSecondCpuPercent: lastSecondPercent,
      windowSecs,
      rssKiBEnd: end?.rssKiB ?? null,
      rssKiBMax: rss.length > 0 ? Math.max(...rss) : null,
      hwmKiB: end?.hwmKiB ?? null,
      threadsMin: threads.length > 0 ? Math.min(...threads) : null,
      threadsMax,
      readerThreadsInferred:
        threadsMax === null || o.poolBaseline === null ? null : threadsMax - o.poolBaseline,
      fdsMax: fds.length > 0 ? Math.max(...fds) : null,
      inotifyWatches: watches,
      cpuPercent: ((cpu1 - cpu0) / o.ticksPerSec / windowSecs) * 100,
      cpuPercentPerSecondMax: perSecond.length > 0 ? Math.max(...perSecond) : null,
      cpuPercentPerSecond: perSecond.map((x) => Math.round(x * 10) / 10),
      probedFile: picked,
      followMs,
      probeCount,
      outputLines: outText.split('\n').filter((l) => l !== '').length,
      exit: signal ?? code,
      stopMs,
      samples,
      stderr: run.stderr.slice(0, 2000),
    }
  } finally {
    if (run.alive) child.kill('SIGKILL')
  }
}

/**
 * @param {{ engines: string[], quick: boolean, extraArgs?: string[] }} opts
 */
export async function idle(opts) {
  const small = opts.quick ? 100 : 1000
  const large = opts.quick ? 1000 : TARGET_ASYNC_FILES
  const windowMs = opts.quick ? 5000 : 20_000
  const ticksPerSec = clockTicks()
  const defaultThreads = availableParallelism()
  let nproc = defaultThreads
  try {
    nproc = Number(execFileSync('nproc', { encoding: 'utf8' }).trim()) || nproc
  } catch {}
  const baselines = await nodeBaselines()
  const poolBaseline = baselines[1]?.threads ?? null
  process.stderr.write(
    `idle: node baseline threads: ${baselines.map((b) => `${b.name}: ${b.threads}`).join('; ')}\n`,
  )
  const extra = opts.extraArgs ?? []
  const threadsArg = extra.find((a) => a.startsWith('--threads'))
  const runs = opts.engines.flatMap((e) =>
    e === 'async'
      ? [
          [e, small],
          [e, large],
        ]
      : [[e, small]],
  )
  const results = []
  for (const [engine, files] of /** @type {[string, number][]} */ (runs)) {
    process.stderr.write(`idle: ${engine}: ${files} files...\n`)
    const r = await measureEngine(engine, files, {
      settleMinMs: opts.quick ? 3000 : 5000,
      settleMaxMs: 60_000,
      windowMs,
      extra,
      ticksPerSec,
      poolBaseline,
    })
    process.stderr.write(
      `idle: ${engine}, ${files} files: RSS ${fmt((r.rssKiBMax ?? Number.NaN) / 1024, 0)} MiB, threads ${r.threadsMax}, CPU ${fmt(r.cpuPercent, 2)} %, fds ${r.fdsMax}, followed ${r.followMs === null ? 'NO' : `${fmt(r.followMs, 0)} ms`}, exit ${r.exit}\n`,
    )
    const isAsyncTarget = engine === 'async' && files === TARGET_ASYNC_FILES
    const expectReaders = engine === 'async' ? 0 : defaultThreads
    results.push({
      ...r,
      expectedReaderThreads: threadsArg ? null : expectReaders,
      rssTargetMet: isAsyncTarget ? (r.rssKiBMax ?? Infinity) * 1024 < TARGET_RSS_BYTES : null,
      cpuTargetMet: isAsyncTarget ? r.cpuPercent < TARGET_CPU_PERCENT : null,
      threadsTargetMet:
        engine === 'async' || threadsArg ? null : r.readerThreadsInferred === expectReaders,
    })
  }

  const baseTable = markdownTable(
    ['process', 'threads', 'RSS MiB', 'fds'],
    baselines.map((b) => [
      `\`${b.command}\``,
      b.threads ?? 'n/a',
      fmt((b.rssKiB ?? Number.NaN) / 1024, 0),
      b.fds ?? 'n/a',
    ]),
  )
  const yesNo = (/** @type {boolean | null} */ x) => (x === null ? '-' : x ? 'yes' : '**NO**')
  const table = markdownTable(
    [
      'engine',
      'files',
      'RSS MiB (max)',
      'CPU % of a core',
      'max 1-s CPU %',
      'threads',
      'reader threads (inferred)',
      'fds',
      'inotify watches',
      'start-up s',
      'append seen after ms',
      'exit',
      'RSS < 200 MB, CPU < 2 %',
      'readers = --threads',
    ],
    results.map((r) => [
      r.engine,
      r.files,
      fmt((r.rssKiBMax ?? Number.NaN) / 1024, 0),
      fmt(r.cpuPercent, 2),
      fmt(r.cpuPercentPerSecondMax, 1),
      r.threadsMin === r.threadsMax ? String(r.threadsMax) : `${r.threadsMin}-${r.threadsMax}`,
      r.readerThreadsInferred ?? 'n/a',
      r.fdsMax ?? 'n/a',
      r.inotifyWatches ?? 'n/a',
      `${fmt(r.settleMs / 1000, 1)}${r.settled ? '' : ' (not settled)'}`,
      r.followMs === null ? '**not seen**' : fmt(r.followMs, 0),
      String(r.exit),
      r.rssTargetMet === null
        ? '-'
        : `${yesNo(r.rssTargetMet)}, ${yesNo(/** @type {boolean} */ (r.cpuTargetMet))}`,
      yesNo(r.threadsTargetMet),
    ]),
  )
  const limits = [...new Set(results.map((r) => r.nofileLimit))].join(', ')
  const problems = results.flatMap((r) => {
    const p = []
    if (r.followMs === null) p.push('the appended line never reached the output')
    else if (r.probeCount !== 1) p.push(`the appended line came out ${r.probeCount} times`)
    if (r.exit !== 0) p.push(`exit ${r.exit}`)
    if (!r.settled) p.push('start-up CPU had not settled after 60 s')
    if (r.stderr.trim() !== '') p.push(`stderr: ${JSON.stringify(r.stderr.slice(0, 300))}`)
    return p.length > 0 ? [`- ${r.engine}, ${r.files} files: ${p.join('; ')}`] : []
  })
  const markdown = [
    `### idle: following N unchanging files for ${windowMs / 1000} s`,
    '',
    `Sampled once a second from /proc/<pid>/status (VmRSS, Threads) and /proc/<pid>/fd; CPU = utime+stime over the window / CLK_TCK (${ticksPerSec}). Open-file limit in effect: ${limits}. Default --threads here: ${defaultThreads} (nproc ${nproc}).`,
    'Reader threads are inferred: threads - the node baseline with its libuv pool started (logmerge always starts it).',
    '',
    'Node baselines (sampled after 1 s):',
    '',
    baseTable,
    '',
    table,
    '',
    ...(problems.length > 0
      ? ['Problems:', '', ...problems]
      : ['Every appended line reached the output once; every exit was 0.']),
    '',
    'Commands:',
    '',
    ...[...new Set(results.map((r) => `    ${r.command}`))],
  ].join('\n')
  return {
    markdown,
    json: {
      name: 'idle',
      windowMs,
      clockTicks: ticksPerSec,
      defaultThreads,
      targets: {
        asyncFiles: TARGET_ASYNC_FILES,
        rssBytes: TARGET_RSS_BYTES,
        cpuPercent: TARGET_CPU_PERCENT,
      },
      baselines,
      results,
    },
  }
}
