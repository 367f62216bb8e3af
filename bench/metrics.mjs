// @ts-check
/**
 * metrics: what --metrics-listen and --metrics-file cost, in CPU time of the logmerge process
 * (utime + stime from /proc/<pid>/stat), against the same run without them.
 *
 *   node bench/metrics.mjs                     # idle 1,000 and 10,000 files; busy, every engine
 *   node bench/metrics.mjs --idle 1000 --window 60 --busy-rounds 1 --engine async
 *   node bench/metrics.mjs --idle 2000 --window 30 --busy-rounds 0 --against ../main
 *
 * 1. idle: `bin/logmerge bench/out/idle-N/in/ -o ...` (the idle benchmark's files, one short
 *    line each) in four variants started together, so they share the machine's load: without
 *    metrics; --metrics-listen 127.0.0.1:0 (nobody scraping); the same scraped every 15 s;
 *    --metrics-file. Each is measured over --window seconds (default 120) once it said
 *    `ready` and 10 s more passed; --replicas (default 2) of each variant run at once.
 *    --against DIR adds a fifth variant: DIR's bin/logmerge (another checkout, built), without
 *    metrics, so that metrics off can be compared with a build that has none.
 * 2. busy, per engine: 8 followed files, 8 x 200 appends of 256 KiB (about 100-byte lines,
 *    4.19 M lines, 392 MiB) at one append per file every 20 ms; the CPU time from the first
 *    append until the output holds every byte. Without metrics, and with --metrics-listen
 *    scraped every second plus --metrics-file; --busy-rounds (default 3) rounds, alternating.
 *    The total varies by 20-30 % from run to run on a loaded machine: compare medians.
 * 3. per operation, in this process (process.cpuUsage): one exposition of the process's and
 *    a job's series; the same with 101 inputs' series formatted again; replaceFile of it.
 * Build first (npm run build).
 */

import { spawn } from 'node:child_process'
import { appendFileSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { ensureFiles } from './idle.mjs'
import { BIN, fmt, markdownTable, OUT_DIR, ROOT, sleep } from './lib.mjs'

const { values: opts } = parseArgs({
  options: {
    idle: { type: 'string', default: '1000,10000' },
    window: { type: 'string', default: '120' },
    replicas: { type: 'string', default: '2' },
    engine: { type: 'string', multiple: true },
    'busy-rounds': { type: 'string', default: '3' },
    against: { type: 'string' },
  },
})

/** utime + stime of `pid` in seconds (clock ticks of 10 ms). */
function cpuSeconds(/** @type {number} */ pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1')
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(f[11]) + Number(f[12])) / 100
}

/**
 * Starts `bin` (this checkout's bin/logmerge unless told) with `args` and resolves once it said
 * `ready` (give --log-level info); `url` is the metrics address when it listens.
 * @param {string[]} args
 */
async function start(args, bin = BIN) {
  const child = spawn(
    'bash',
    ['-c', 'ulimit -n 65536 2>/dev/null; exec "$@"', 'bash', process.execPath, bin, ...args],
    { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] },
  )
  let err = ''
  child.stderr.on('data', (d) => {
    err += d
  })
  while (!/ready: following/.test(err)) {
    if (child.exitCode !== null) throw new Error(`logmerge ${args.join(' ')}: ${err}`)
    await sleep(50)
  }
  const url = /metrics: serving (\S+)/.exec(err)?.[1] ?? null
  const stop = async () => {
    child.kill('SIGTERM')
    await new Promise((resolve) => child.on('close', resolve))
  }
  return { pid: /** @type {number} */ (child.pid), url, stop }
}

/** Fetches `url` every `ms` until the returned function is called. */
function scraper(/** @type {string | null} */ url, /** @type {number} */ ms) {
  if (url === null || ms <= 0) return () => 0
  let n = 0
  const timer = setInterval(() => {
    fetch(url)
      .then((r) => r.text())
      .then(
        () => n++,
        () => {},
      )
  }, ms)
  return () => {
    clearInterval(timer)
    return n
  }
}

/** @typedef {{ name: string, args: (tag: string) => string[], scrapeMs: number, bin?: string }} Variant */
/** @type {Variant[]} */
const VARIANTS = [
  ...(opts.against
    ? [
        {
          name: `no metrics, ${opts.against}'s build`,
          args: () => [],
          scrapeMs: 0,
          bin: join(resolve(opts.against), 'bin', 'logmerge'),
        },
      ]
    : []),
  { name: 'no metrics', args: () => [], scrapeMs: 0 },
  {
    name: '--metrics-listen, not scraped',
    args: () => ['--metrics-listen', '127.0.0.1:0'],
    scrapeMs: 0,
  },
  {
    name: '--metrics-listen, scraped every 15 s',
    args: () => ['--metrics-listen', '127.0.0.1:0'],
    scrapeMs: 15_000,
  },
  {
    name: '--metrics-file',
    args: (/** @type {string} */ tag) => ['--metrics-file', join(OUT_DIR, `metrics-${tag}.prom`)],
    scrapeMs: 0,
  },
]

async function idle(
  /** @type {number} */ files,
  /** @type {number} */ windowS,
  /** @type {number} */ replicas,
) {
  const dir = ensureFiles(files)
  const runs = VARIANTS.flatMap((v, vi) =>
    Array.from({ length: replicas }, (_, r) => ({ v, tag: `idle-${files}-${vi}-${r}` })),
  )
  const measured = await Promise.all(
    runs.map(async ({ v, tag }) => {
      const out = join(OUT_DIR, `metrics-${tag}.out`)
      rmSync(out, { force: true })
      rmSync(join(OUT_DIR, `.metrics-${tag}.out.logmerge-state.json`), { force: true })
      const lm = await start([`${dir}/`, '-o', out, '--log-level', 'info', ...v.args(tag)], v.bin)
      await sleep(10_000)
      const stopScraping = scraper(lm.url, v.scrapeMs)
      const c0 = cpuSeconds(lm.pid)
      const t0 = performance.now()
      await sleep(windowS * 1000)
      const cpu = cpuSeconds(lm.pid) - c0
      const secs = (performance.now() - t0) / 1000
      const scrapes = stopScraping()
      await lm.stop()
      return { variant: v.name, percent: (cpu / secs) * 100, scrapes }
    }),
  )
  return VARIANTS.map((v) => {
    const mine = measured.filter((m) => m.variant === v.name)
    return [
      `${files}`,
      v.name,
      mine.map((m) => fmt(m.percent, 2)).join(', '),
      mine.map((m) => m.scrapes).join(', '),
    ]
  })
}

const CHUNKS = 200
const LINES_PER_CHUNK = 2621

async function busyRun(
  /** @type {string} */ engine,
  /** @type {boolean} */ metrics,
  /** @type {number} */ round,
) {
  const dir = join(OUT_DIR, `metrics-busy-${engine}`)
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir, { recursive: true })
  const inputs = Array.from({ length: 8 }, (_, i) => join(dir, `f${i}.log`))
  for (const p of inputs) writeFileSync(p, '')
  const out = join(dir, 'out.log')
  const extra = metrics
    ? ['--metrics-listen', '127.0.0.1:0', '--metrics-file', join(dir, 'logmerge.prom')]
    : []
  const lm = await start([
    ...inputs,
    '-o',
    out,
    '--engine',
    engine,
    '--threads',
    '2',
    '--log-level',
    'info',
    ...extra,
  ])
  const line = (/** @type {number} */ w, /** @type {number} */ i) =>
    `w${w} r${round} ${String(i).padStart(9, '0')} ${'x'.repeat(80)}\n`
  const chunks = inputs.map((_, w) =>
    Array.from({ length: CHUNKS }, (_, c) => {
      let s = ''
      for (let i = 0; i < LINES_PER_CHUNK; i++) s += line(w, c * LINES_PER_CHUNK + i)
      return s
    }),
  )
  const total = chunks.flat().reduce((n, c) => n + Buffer.byteLength(c), 0)
  await sleep(1500)
  const stopScraping = scraper(lm.url, 1000)
  const c0 = cpuSeconds(lm.pid)
  for (let c = 0; c < CHUNKS; c++) {
    for (let w = 0; w < 8; w++)
      appendFileSync(/** @type {string} */ (inputs[w]), /** @type {string} */ (chunks[w]?.[c]))
    await sleep(20)
  }
  while ((statSync(out, { throwIfNoEntry: false })?.size ?? 0) < total) await sleep(20)
  const cpu = cpuSeconds(lm.pid) - c0
  const scrapes = stopScraping()
  await lm.stop()
  rmSync(dir, { recursive: true, force: true })
  return { cpu, scrapes, mib: total / 2 ** 20 }
}

async function busy(/** @type {string[]} */ engines, /** @type {number} */ rounds) {
  const rows = []
  for (const engine of engines) {
    /** @type {{ off: number[], on: number[] }} */
    const cpu = { off: [], on: [] }
    for (let r = 0; r < rounds; r++) {
      cpu.off.push((await busyRun(engine, false, r)).cpu)
      cpu.on.push((await busyRun(engine, true, r)).cpu)
      process.stderr.write(
        `metrics: busy ${engine} round ${r + 1}: ${fmt(cpu.off.at(-1) ?? 0, 2)} s, with metrics ${fmt(cpu.on.at(-1) ?? 0, 2)} s\n`,
      )
    }
    const median = (/** @type {number[]} */ xs) =>
      [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0
    rows.push([
      engine,
      cpu.off.map((x) => fmt(x, 2)).join(', '),
      cpu.on.map((x) => fmt(x, 2)).join(', '),
      `${fmt((median(cpu.on) / median(cpu.off) - 1) * 100, 0)} %`,
    ])
  }
  return rows
}

async function operations() {
  // The compiled module (a computed specifier: tsc checks bench/, not dist/).
  const families = new URL('../dist/metrics/families.js', import.meta.url).href
  const { makeFamilies } = await import(families)
  const { replaceFile } = await import(new URL('../dist/atomic-file.js', import.meta.url).href)
  const f = makeFamilies('bench')
  const job = { logmerge_job: 'main' }
  for (const c of [f.outputBytes, f.pauses, f.pausedSeconds, f.checkpointFailures]) c.inc(job, 0)
  f.checkpointDuration.zero(job)
  for (let i = 0; i < 101; i++) {
    const labels = { ...job, input: `${OUT_DIR}/idle-10000/in/f${String(i).padStart(4, '0')}.log` }
    for (const c of [f.lines, f.bytes, f.linesSplit, f.truncations, f.rotations, f.copies])
      c.inc(labels, i)
    f.lagBytes.set(labels, 0)
    f.lagSeconds.set(labels, 0)
  }
  const cpuMs = () => {
    const u = process.cpuUsage()
    return (u.user + u.system) / 1000
  }
  const each = async (/** @type {() => Promise<unknown>} */ fn, n = 200) => {
    await fn()
    const c0 = cpuMs()
    for (let i = 0; i < n; i++) await fn()
    return (cpuMs() - c0) / n
  }
  const head = await f.registry.metrics()
  const inputs = await f.inputs.metrics()
  const path = join(OUT_DIR, 'metrics-ops.prom')
  return [
    [
      'exposition: the process and one job',
      fmt(await each(() => f.registry.metrics()), 2),
      head.split('\n').length,
    ],
    [
      'the same and 101 inputs formatted again',
      fmt(await each(async () => [await f.registry.metrics(), await f.inputs.metrics()]), 2),
      head.split('\n').length + inputs.split('\n').length,
    ],
    [
      'replaceFile of it (atomic-file.ts, no fsync)',
      fmt(await each(() => replaceFile(path, head + inputs, { fsync: false, mode: 0o644 })), 2),
      '-',
    ],
  ]
}

const engines = opts.engine ?? ['async', 'threads', 'top-down', 'bottom-up']
const idleRows = []
for (const files of opts.idle.split(',').filter(Boolean).map(Number)) {
  process.stderr.write(`metrics: idle, ${files} files, ${opts.window} s...\n`)
  idleRows.push(...(await idle(files, Number(opts.window), Number(opts.replicas))))
}
process.stdout.write(
  `### idle (CPU % of one core over ${opts.window} s, each replica)\n\n${markdownTable(['files', 'variant', 'CPU %', 'scrapes'], idleRows)}\n\n`,
)
const rounds = Number(opts['busy-rounds'])
if (rounds > 0) {
  const busyRows = await busy(engines, rounds)
  process.stdout.write(
    `### busy (CPU seconds for 392 MiB from 8 files, each round)\n\n${markdownTable(['engine', 'no metrics', 'listen (scraped every 1 s) + file', 'medians'], busyRows)}\n\n`,
  )
}
process.stdout.write(
  `### per operation (CPU ms, this process)\n\n${markdownTable(['operation', 'CPU ms', 'lines'], await operations())}\n`,
)
