// @ts-check
/**
 * latency: how long a line appended to a followed file takes to reach the output file.
 *
 * One process does both ends, so there is one clock: it appends numbered lines to
 * bench/out/latency-<engine>/in/app.log at a steady rate (one write(2) a line) while
 * `bin/logmerge in/app.log -o out.log --engine E` follows it, and watches out.log (fs.watch,
 * plus a 1 ms poll as a safety net) to note when each sequence number first appears. Latency is
 * from the moment the append's write() returned to the moment the line was seen in out.log.
 * A calibration run first measures the watcher itself (the bench appending straight to a file
 * it watches): that is the floor under every figure.
 * After the last line, logmerge gets SIGTERM (it drains and exits 0) and the whole output is
 * counted: every sequence number must be there exactly once.
 */

import { spawn } from 'node:child_process'
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  watch,
  writeFileSync,
  writeSync,
} from 'node:fs'
import { join, relative } from 'node:path'
import { createLineSource } from '../fixtures/generate.mjs'
import {
  BIN,
  fmt,
  markdownTable,
  OUT_DIR,
  percentile,
  ROOT,
  sampleHwm,
  sleep,
  trackChild,
} from './lib.mjs'

export const TARGET_P99_MS = 10
const SEQ = /\bseq=(\d+)$/
const WARMUP = /\bwarmup=(\d+)$/

/**
 * Follows a growing file from inside this process and notes when each `seq=N` first shows up.
 */
export class OutputWatcher {
  /** @type {Map<number, number>} seq -> performance.now() when first seen */
  seen = new Map()
  warmupSeen = false
  #path
  #fd = -1
  #pos = 0
  #rest = ''
  #buf = Buffer.allocUnsafe(1 << 20)
  /** @type {import('node:fs').FSWatcher | null} */
  #watcher = null
  /** @type {NodeJS.Timeout | null} */
  #timer = null

  /** @param {string} path */
  constructor(path) {
    this.#path = path
  }

  /** Starts watching; the file must exist. */
  start() {
    this.#fd = openSync(this.#path, 'r')
    this.#watcher = watch(this.#path, () => this.drain())
    this.#timer = setInterval(() => this.drain(), 1)
  }

  /** Reads whatever is new and records the sequence numbers in it. */
  drain() {
    if (this.#fd < 0) return
    while (true) {
      const n = readSync(this.#fd, this.#buf, 0, this.#buf.length, this.#pos)
      if (n === 0) break
      const now = performance.now()
      this.#pos += n
      const text = this.#rest + this.#buf.toString('latin1', 0, n)
      const lines = text.split('\n')
      this.#rest = lines.pop() ?? ''
      for (const line of lines) {
        const m = SEQ.exec(line)
        if (m) {
          const seq = Number(m[1])
          if (!this.seen.has(seq)) this.seen.set(seq, now)
        } else if (WARMUP.test(line)) this.warmupSeen = true
      }
    }
  }

  stop() {
    this.drain()
    this.#watcher?.close()
    if (this.#timer) clearInterval(this.#timer)
    if (this.#fd >= 0) closeSync(this.#fd)
    this.#fd = -1
  }
}

/**
 * Appends `count` numbered lines to `path`, one every 1000/rate ms on a fixed schedule.
 * @param {string} path @param {number} count @param {number} rate
 * @returns {Promise<number[]>} when each append's write() returned (performance.now())
 */
export async function appendLines(path, count, rate) {
  const next = createLineSource({ format: 'app', seed: 7, gapMs: 1000 / rate })
  const fd = openSync(path, 'a')
  /** @type {number[]} */
  const sentAt = []
  try {
    const interval = 1000 / rate
    const t0 = performance.now() + 5
    for (let i = 0; i < count; i++) {
      const wait = t0 + i * interval - performance.now()
      if (wait > 0) await sleep(wait)
      const line = Buffer.from(`${next().slice(0, -1)} seq=${i}\n`, 'latin1')
      writeSync(fd, line)
      sentAt.push(performance.now())
    }
  } finally {
    closeSync(fd)
  }
  return sentAt
}

/**
 * @param {number[]} sentAt @param {Map<number, number>} seen
 * @returns {{ samples: number[], p50: number, p90: number, p99: number, max: number, mean: number }}
 */
export function summarize(sentAt, seen) {
  /** @type {number[]} */
  const samples = []
  sentAt.forEach((t, seq) => {
    const s = seen.get(seq)
    if (s !== undefined) samples.push(s - t)
  })
  const sorted = [...samples].sort((a, b) => a - b)
  return {
    samples,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    max: sorted.length > 0 ? (sorted[sorted.length - 1] ?? Number.NaN) : Number.NaN,
    mean: samples.reduce((a, b) => a + b, 0) / samples.length,
  }
}

/** @param {number} deadline @param {() => boolean} done */
export async function waitFor(deadline, done) {
  while (!done() && performance.now() < deadline) await sleep(5)
  return done()
}

/**
 * The watcher's own delay: the bench appends straight to a file it watches.
 * @param {string} dir @param {number} count @param {number} rate
 */
export async function calibrate(dir, count, rate) {
  const path = join(dir, 'calibration.log')
  writeFileSync(path, '')
  const watcher = new OutputWatcher(path)
  watcher.start()
  try {
    const sentAt = await appendLines(path, count, rate)
    await waitFor(performance.now() + 1000, () => watcher.seen.size >= count)
    watcher.drain()
    return summarize(sentAt, watcher.seen)
  } finally {
    watcher.stop()
    rmSync(path, { force: true })
  }
}

/**
 * @param {string} engine @param {number} count @param {number} rate
 * @param {string[]} extra  more logmerge arguments
 */
async function measureEngine(engine, count, rate, extra) {
  const dir = join(OUT_DIR, `latency-${engine}`)
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(join(dir, 'in'), { recursive: true })
  const input = join(dir, 'in', 'app.log')
  const output = join(dir, 'out.log')
  writeFileSync(input, '')
  const args = [relative(ROOT, input), '-o', relative(ROOT, output), '--engine', engine, ...extra]
  const command = `bin/logmerge ${args.join(' ')}`
  const child = spawn(BIN, args, { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] })
  const run = trackChild(child)
  const hwm = child.pid === undefined ? null : sampleHwm(child.pid, 50)
  const watcher = new OutputWatcher(output)
  try {
    // Up and following: keep appending warm-up lines until one comes out.
    if (!(await waitFor(performance.now() + 15000, () => existsSync(output) || !run.alive))) {
      throw new Error(`${command}: no output file after 15 s; stderr: ${run.stderr}`)
    }
    if (!run.alive) throw new Error(`${command} exited early: ${run.stderr}`)
    watcher.start()
    const wfd = openSync(input, 'a')
    try {
      for (let i = 0; !watcher.warmupSeen; i++) {
        if (i >= 300 || !run.alive)
          throw new Error(`${command}: not following after 15 s: ${run.stderr}`)
        writeSync(wfd, `warm-up line warmup=${i}\n`)
        await sleep(50)
      }
    } finally {
      closeSync(wfd)
    }
    await sleep(300)

    const sentAt = await appendLines(input, count, rate)
    await waitFor(performance.now() + 5000, () => watcher.seen.size >= count)
    const rssKiB = hwm?.peek() ?? null
    child.kill('SIGTERM')
    const killer = setTimeout(() => child.kill('SIGKILL'), 10000)
    const { code, signal } = await run.exited
    clearTimeout(killer)
    hwm?.stop()
    watcher.stop()

    /** @type {Map<number, number>} */
    const counts = new Map()
    let unexpected = 0
    for (const line of readFileSync(output, 'latin1').split('\n')) {
      if (line === '') continue
      const m = SEQ.exec(line)
      if (m) counts.set(Number(m[1]), (counts.get(Number(m[1])) ?? 0) + 1)
      else if (!WARMUP.test(line)) unexpected++
    }
    let lost = 0
    let duplicated = 0
    for (let i = 0; i < count; i++) {
      const c = counts.get(i) ?? 0
      if (c === 0) lost++
      else if (c > 1) duplicated += c - 1
    }
    const s = summarize(sentAt, watcher.seen)
    return {
      engine,
      command,
      lines: count,
      rate,
      seenLive: watcher.seen.size,
      lost,
      duplicated,
      unexpected,
      exit: signal ?? code,
      peakRssKiB: rssKiB,
      ...s,
      samples: s.samples.map((x) => Math.round(x * 1000) / 1000),
      stderr: run.stderr.slice(0, 2000),
    }
  } finally {
    watcher.stop()
    if (run.alive) child.kill('SIGKILL')
  }
}

/**
 * @param {{ engines: string[], quick: boolean, seconds?: number | undefined, rate?: number | undefined, extraArgs?: string[] }} opts
 */
export async function latency(opts) {
  const seconds = opts.seconds ?? (opts.quick ? 2 : 10)
  const rate = opts.rate ?? 100
  const count = Math.round(seconds * rate)
  mkdirSync(OUT_DIR, { recursive: true })
  const floor = await calibrate(OUT_DIR, Math.min(count, 200), rate)
  process.stderr.write(
    `latency: watcher floor p50 ${fmt(floor.p50, 3)} ms, p99 ${fmt(floor.p99, 3)} ms\n`,
  )
  const results = []
  for (const engine of opts.engines) {
    process.stderr.write(`latency: ${engine}: ${count} lines at ${rate}/s...\n`)
    const r = await measureEngine(engine, count, rate, opts.extraArgs ?? [])
    process.stderr.write(
      `latency: ${engine}: p50 ${fmt(r.p50, 2)} ms, p99 ${fmt(r.p99, 2)} ms, lost ${r.lost}, duplicated ${r.duplicated}\n`,
    )
    results.push({ ...r, targetMet: r.p99 < TARGET_P99_MS && r.lost === 0 && r.duplicated === 0 })
  }
  const table = markdownTable(
    [
      'engine',
      'lines',
      'p50 ms',
      'p90 ms',
      'p99 ms',
      'max ms',
      'mean ms',
      'lost',
      'duplicated',
      'exit',
      'peak RSS MiB',
      `p99 < ${TARGET_P99_MS} ms`,
    ],
    [
      [
        '(watcher floor)',
        floor.samples.length,
        fmt(floor.p50, 3),
        fmt(floor.p90, 3),
        fmt(floor.p99, 3),
        fmt(floor.max, 3),
        fmt(floor.mean, 3),
        '-',
        '-',
        '-',
        '-',
        '-',
      ],
      ...results.map((r) => [
        r.engine,
        r.lines,
        fmt(r.p50, 2),
        fmt(r.p90, 2),
        fmt(r.p99, 2),
        fmt(r.max, 2),
        fmt(r.mean, 2),
        r.lost,
        r.duplicated,
        String(r.exit),
        fmt(r.peakRssKiB === null ? null : r.peakRssKiB / 1024, 0),
        r.targetMet ? 'yes' : 'NO',
      ]),
    ],
  )
  const markdown = [
    `### latency: ${count} lines at ${rate}/s for ${seconds} s, one followed file`,
    '',
    'From the append (write() returned) to the line being in the output file; same process, one clock.',
    'Peak RSS: VmHWM sampled from /proc while following.',
    '',
    table,
    '',
    'Commands:',
    '',
    ...results.map((r) => `    ${r.command}`),
  ].join('\n')
  return {
    markdown,
    json: {
      name: 'latency',
      seconds,
      rate,
      lines: count,
      targetP99Ms: TARGET_P99_MS,
      floor: { ...floor, samples: floor.samples.map((x) => Math.round(x * 1000) / 1000) },
      results,
    },
  }
}
