// @ts-check
/**
 * throughput: how many lines a second logmerge merges while following, with eight writers
 * appending as fast as they can.
 *
 * For each engine:
 *   1. `bin/logmerge f1 .. f8 -o out.log --engine E` follows eight empty files under
 *      bench/out/throughput-E/. It is ready when a probe line appended to each file has come out.
 *   2. Eight writer processes (this file run as `node bench/throughput.mjs --writer I PATH`)
 *      append fixed-width lines `w<I>-<10-digit seq> <padding>\n` (128 bytes) to their own file,
 *      2048 lines (256 KiB) per write(2), for 10 s (2 s with --quick), all starting together.
 *   3. The bench polls the output's size every 5 ms until it holds every line (or stops
 *      growing for 10 s, or 120 s pass), then sends SIGTERM (logmerge drains and exits 0).
 *   4. The whole output is parsed: every (writer, seq) must appear exactly once, each writer's
 *      lines in the order written, every line whole.
 * Merged lines/s = writer lines / (last line in the output - first write). Writers compete with
 * logmerge for the CPUs, so their own rate is reported too, and a run of the writers alone
 * (no logmerge; after a discarded warm-up pass) gives the ceiling this machine's writers reach.
 * Inputs and output are deleted, then `sync` runs, after every run (not timed).
 */

import { spawn, spawnSync } from 'node:child_process'
import {
  closeSync,
  createReadStream,
  existsSync,
  fstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import {
  BIN,
  fmt,
  MiB,
  markdownTable,
  OUT_DIR,
  ROOT,
  sampleHwm,
  sleep,
  trackChild,
} from './lib.mjs'

export const WRITERS = 8
export const LINE_BYTES = 128
export const BATCH_LINES = 2048
const SEQ_DIGITS = 10
export const FULL_SECONDS = 10
export const QUICK_SECONDS = 2
/** How long the output may stay the same size, after the writers stopped, before we give up. */
const STALL_MS = 10_000
/** The longest the bench waits for the output to hold every line after the writers stopped. */
const DRAIN_DEADLINE_MS = 120_000
const HERE = fileURLToPath(import.meta.url)

/** Wall-clock time in ms with sub-ms resolution, comparable across processes. */
const now = () => performance.timeOrigin + performance.now()

/** @returns {number} clock ticks per second (`getconf CLK_TCK`) */
export function clockTicks() {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' })
  const n = Number(`${r.stdout}`.trim())
  return Number.isFinite(n) && n > 0 ? n : 100
}

/**
 * utime + stime of a process (all its threads), in clock ticks, or null when it is gone.
 * @param {number} pid
 * @returns {number | null}
 */
export function cpuTicks(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return Number(rest[11]) + Number(rest[12])
  } catch {
    return null
  }
}

// ---------------------------------------------------------------------------------------------
// The writer process

/**
 * @typedef {object} WriterResult
 * @property {number} index
 * @property {number} lines
 * @property {number} bytes
 * @property {number} writes       write(2) calls
 * @property {number} firstWrite   epoch ms just before the first write
 * @property {number} lastWrite    epoch ms just after the last write returned
 */

/**
 * One batch of lines for writer `index`: `w<index>-` + 10 digits + ' ' + padding + '\n'.
 * @param {number} index
 * @returns {{ buf: Buffer, digitsAt: number }}
 */
function batchTemplate(index) {
  const prefix = `w${index}-`
  const padLen = LINE_BYTES - prefix.length - SEQ_DIGITS - 2
  const pad = String.fromCharCode(97 + (index % 26)).repeat(padLen)
  const line = `${prefix}${'0'.repeat(SEQ_DIGITS)} ${pad}\n`
  if (line.length !== LINE_BYTES) throw new Error(`line is ${line.length} bytes, not ${LINE_BYTES}`)
  return { buf: Buffer.from(line.repeat(BATCH_LINES), 'latin1'), digitsAt: prefix.length }
}

/**
 * Appends batches of numbered lines to `path` as fast as it can for `ms` milliseconds.
 * @param {number} index @param {string} path @param {number} ms
 * @returns {WriterResult}
 */
function writeFor(index, path, ms) {
  const { buf, digitsAt } = batchTemplate(index)
  const fd = openSync(path, 'a')
  let seq = 0
  let writes = 0
  const firstWrite = now()
  const end = firstWrite + ms
  let lastWrite = firstWrite
  try {
    do {
      for (let k = 0; k < BATCH_LINES; k++) {
        let s = seq + k
        const at = k * LINE_BYTES + digitsAt
        for (let d = SEQ_DIGITS - 1; d >= 0; d--) {
          buf[at + d] = 48 + (s % 10)
          s = Math.floor(s / 10)
        }
      }
      let off = 0
      while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off)
      writes++
      seq += BATCH_LINES
      lastWrite = now()
    } while (lastWrite < end)
  } finally {
    closeSync(fd)
  }
  return { index, lines: seq, bytes: seq * LINE_BYTES, writes, firstWrite, lastWrite }
}

/**
 * The child's side: say `ready`, wait for `go <ms>` on stdin, write, print the result as JSON.
 * @param {string[]} argv  [index, path]
 */
async function writerMain(argv) {
  const index = Number(argv[0])
  const path = argv[1]
  if (!Number.isInteger(index) || index < 0 || !path) throw new Error('usage: --writer I PATH')
  process.stdout.write('ready\n')
  let input = ''
  process.stdin.setEncoding('utf8')
  for await (const chunk of process.stdin) {
    input += chunk
    if (input.includes('\n')) break
  }
  const m = /^go (\d+)/.exec(input)
  if (!m) throw new Error(`expected "go <ms>", got ${JSON.stringify(input)}`)
  const result = writeFor(index, path, Number(m[1]))
  process.stdout.write(`${JSON.stringify(result)}\n`)
  process.stdin.destroy()
}

// ---------------------------------------------------------------------------------------------
// The bench side

/**
 * Starts one writer process per path and waits until each has said `ready`.
 * @param {string[]} paths
 * @returns {Promise<{ go: (ms: number) => void, results: Promise<WriterResult[]> }>}
 */
async function startWriters(paths) {
  const children = paths.map((path, index) =>
    spawn(process.execPath, [HERE, '--writer', String(index), path], {
      cwd: ROOT,
      stdio: ['pipe', 'pipe', 'inherit'],
    }),
  )
  const outputs = children.map((child) => {
    let text = ''
    child.stdout?.setEncoding('utf8').on('data', (d) => {
      text += d
    })
    const ready = new Promise((resolve, reject) => {
      const check = () => {
        if (text.startsWith('ready\n')) resolve(undefined)
      }
      child.stdout?.on('data', check)
      child.on('exit', (code) => reject(new Error(`writer exited early (${code})`)))
    })
    /** @type {Promise<WriterResult>} */
    const result = new Promise((resolve, reject) => {
      child.on('close', (code) => {
        const last = text.trim().split('\n').pop() ?? ''
        try {
          if (code !== 0) throw new Error(`exit ${code}`)
          resolve(JSON.parse(last))
        } catch (err) {
          reject(
            new Error(
              `writer failed (exit ${code}): ${err instanceof Error ? err.message : String(err)}; output ${JSON.stringify(text.slice(-200))}`,
            ),
          )
        }
      })
    })
    result.catch(() => {})
    return { ready, result }
  })
  await Promise.all(outputs.map((o) => o.ready))
  return {
    go: (ms) => {
      for (const c of children) c.stdin?.end(`go ${Math.round(ms)}\n`)
    },
    results: Promise.all(outputs.map((o) => o.result)),
  }
}

/**
 * @param {WriterResult[]} rs
 * @returns {{ lines: number, bytes: number, firstWrite: number, lastWrite: number, linesPerSec: number, mibPerSec: number, writes: number }}
 */
function writersSummary(rs) {
  const lines = rs.reduce((s, r) => s + r.lines, 0)
  const bytes = rs.reduce((s, r) => s + r.bytes, 0)
  const firstWrite = Math.min(...rs.map((r) => r.firstWrite))
  const lastWrite = Math.max(...rs.map((r) => r.lastWrite))
  const secs = (lastWrite - firstWrite) / 1000
  return {
    lines,
    bytes,
    writes: rs.reduce((s, r) => s + r.writes, 0),
    firstWrite,
    lastWrite,
    linesPerSec: lines / secs,
    mibPerSec: bytes / MiB / secs,
  }
}

/**
 * @typedef {object} Check
 * @property {number} writerLines  well-formed writer lines seen (duplicates included)
 * @property {number} probes       probe lines
 * @property {number} lost
 * @property {number} duplicated
 * @property {number} outOfOrder   lines whose seq is below an earlier line of the same writer
 * @property {number} malformed    lines that are neither a whole writer line nor a probe
 * @property {number} unknown      writer lines with a seq the writer never wrote
 * @property {string[]} examples   a few of the problems, for the report
 */

/**
 * Parses the output: every writer's seq 0..lines-1 exactly once, in order, each line whole.
 * @param {string} path @param {number[]} linesPerWriter
 * @returns {Promise<Check>}
 */
async function checkOutput(path, linesPerWriter) {
  const seen = linesPerWriter.map((n) => new Uint8Array(n))
  const last = linesPerWriter.map(() => -1)
  const c = {
    writerLines: 0,
    probes: 0,
    lost: 0,
    duplicated: 0,
    outOfOrder: 0,
    malformed: 0,
    unknown: 0,
    /** @type {string[]} */ examples: [],
  }
  const note = (/** @type {string} */ what) => {
    if (c.examples.length < 5) c.examples.push(what)
  }
  const PROBE = Buffer.from('probe-')
  /** @param {Buffer} buf @param {number} start @param {number} end  end: the newline */
  const line = (buf, start, end) => {
    if (buf[start] === 119 /* w */) {
      let i = start + 1
      let w = 0
      while (i < end && buf[i] !== 45 /* - */) {
        const d = (buf[i] ?? 0) - 48
        if (d < 0 || d > 9) break
        w = w * 10 + d
        i++
      }
      let seq = 0
      let ok = buf[i] === 45 && i > start + 1 && end + 1 - start === LINE_BYTES
      for (let k = 1; ok && k <= SEQ_DIGITS; k++) {
        const d = (buf[i + k] ?? 0) - 48
        if (d < 0 || d > 9) ok = false
        seq = seq * 10 + d
      }
      if (ok && buf[i + SEQ_DIGITS + 1] === 32) {
        c.writerLines++
        const marks = seen[w]
        if (!marks || seq >= marks.length) {
          c.unknown++
          note(`unknown line ${buf.toString('latin1', start, Math.min(end, start + 20))}...`)
          return
        }
        if ((marks[seq] ?? 0) < 255) marks[seq] = (marks[seq] ?? 0) + 1
        if (seq < (last[w] ?? -1)) {
          c.outOfOrder++
          note(`w${w}-${seq} after w${w}-${last[w]}`)
        }
        last[w] = seq
        return
      }
    } else if (buf.compare(PROBE, 0, PROBE.length, start, start + PROBE.length) === 0) {
      c.probes++
      return
    }
    c.malformed++
    note(
      `malformed line of ${end - start + 1} bytes: ${JSON.stringify(buf.toString('latin1', start, Math.min(end, start + 40)))}`,
    )
  }
  /** @type {Buffer} */
  let rest = Buffer.alloc(0)
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * MiB })) {
    const buf = rest.length > 0 ? Buffer.concat([rest, /** @type {Buffer} */ (chunk)]) : chunk
    let start = 0
    for (let nl = buf.indexOf(10, start); nl >= 0; nl = buf.indexOf(10, start)) {
      line(buf, start, nl)
      start = nl + 1
    }
    rest = Buffer.from(buf.subarray(start))
  }
  if (rest.length > 0) {
    c.malformed++
    note(`${rest.length} bytes after the last newline`)
  }
  seen.forEach((marks, w) => {
    for (let s = 0; s < marks.length; s++) {
      const n = marks[s] ?? 0
      if (n === 0) {
        if (c.lost === 0) note(`first lost line: w${w}-${s}`)
        c.lost++
      } else if (n > 1) c.duplicated += n - 1
    }
  })
  return c
}

/**
 * Polls `path` every 5 ms and notes when its size last changed.
 * @param {string} path
 */
function sizeWatcher(path) {
  const fd = openSync(path, 'r')
  let size = fstatSync(fd).size
  let changedAt = now()
  const timer = setInterval(() => {
    const s = fstatSync(fd).size
    if (s !== size) {
      size = s
      changedAt = now()
    }
  }, 5)
  return {
    get size() {
      return size
    },
    get changedAt() {
      return changedAt
    },
    stop() {
      clearInterval(timer)
      closeSync(fd)
    },
  }
}

/**
 * The writers alone, with nobody reading: what this machine's writers can do.
 * @param {string} base @param {number} seconds
 */
async function writersOnly(base, seconds) {
  const dir = join(base, 'throughput-writers-only')
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir, { recursive: true })
  const paths = Array.from({ length: WRITERS }, (_, i) => join(dir, `f${i + 1}.log`))
  for (const p of paths) writeFileSync(p, '')
  const writers = await startWriters(paths)
  writers.go(seconds * 1000)
  const w = writersSummary(await writers.results)
  rmSync(dir, { recursive: true, force: true })
  spawnSync('sync')
  return w
}

/**
 * @param {string} base @param {string} engine @param {number} seconds @param {string[]} extra
 * @param {number} ticksPerSec
 */
async function measureEngine(base, engine, seconds, extra, ticksPerSec) {
  const dir = join(base, `throughput-${engine}`)
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(join(dir, 'in'), { recursive: true })
  const inputs = Array.from({ length: WRITERS }, (_, i) => join(dir, 'in', `f${i + 1}.log`))
  for (const p of inputs) writeFileSync(p, '')
  const output = join(dir, 'out.log')
  const args = [...inputs.map((p) => relative(ROOT, p)), '-o', relative(ROOT, output)]
  args.push('--engine', engine, ...extra)
  const command = `bin/logmerge ${args.join(' ')}`
  const child = spawn(BIN, args, { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] })
  const run = trackChild(child)
  const pid = /** @type {number} */ (child.pid)
  const hwm = sampleHwm(pid, 50)
  /** @type {ReturnType<typeof sizeWatcher> | null} */
  let watch = null
  try {
    // Ready: a probe line appended to every input has come out.
    const t0 = now()
    while (!existsSync(output)) {
      if (!run.alive) throw new Error(`${command} exited early: ${run.stderr}`)
      if (now() - t0 > 15_000)
        throw new Error(`${command}: no output file after 15 s: ${run.stderr}`)
      await sleep(10)
    }
    const waiting = new Set(inputs.map((_, i) => i))
    for (let round = 0; waiting.size > 0; round++) {
      if (round >= 300 || !run.alive)
        throw new Error(`${command}: not following after 15 s: ${run.stderr}`)
      for (const i of waiting)
        writeFileSync(inputs[i] ?? '', `probe-${i}-${round}\n`, { flag: 'a' })
      await sleep(50)
      const text = readFileSync(output, 'latin1')
      for (const i of [...waiting]) if (text.includes(`probe-${i}-`)) waiting.delete(i)
    }
    const readyMs = now() - t0
    watch = sizeWatcher(output)
    // Late probes (written before an earlier one came out) settle before the base size is taken.
    while (now() - watch.changedAt < 300) await sleep(20)
    const baseBytes = watch.size

    const writers = await startWriters(inputs)
    const cpu0 = cpuTicks(pid) ?? 0
    writers.go(seconds * 1000)
    const rs = await writers.results
    const w = writersSummary(rs)
    const expected = baseBytes + w.bytes
    process.stderr.write(
      `throughput: ${engine}: writers done: ${w.lines} lines, ${fmt(w.mibPerSec, 0)} MiB/s; waiting for the output\n`,
    )
    const deadline = w.lastWrite + DRAIN_DEADLINE_MS
    while (
      watch.size < expected &&
      now() < deadline &&
      now() - Math.max(watch.changedAt, w.lastWrite) < STALL_MS &&
      run.alive
    ) {
      await sleep(5)
    }
    await sleep(20) // a last look
    const complete = watch.size >= expected
    const lastLineAt = watch.changedAt
    const cpu1 = cpuTicks(pid) ?? cpu0
    const rssKiB = hwm.peek()
    watch.stop()
    watch = null

    const tStop = now()
    child.kill('SIGTERM')
    const killer = setTimeout(() => child.kill('SIGKILL'), 15_000)
    const { code, signal } = await run.exited
    clearTimeout(killer)
    const stopMs = now() - tStop
    hwm.stop()

    const check = await checkOutput(
      output,
      rs.map((r) => r.lines),
    )
    const mergeSecs = (lastLineAt - w.firstWrite) / 1000
    const result = {
      engine,
      command,
      seconds,
      readyMs,
      writers: w,
      perWriter: rs,
      outputBytes: statSize(output),
      expectedBytes: expected,
      complete,
      mergeSecs,
      mergedLinesPerSec: w.lines / mergeSecs,
      mergedMibPerSec: w.bytes / MiB / mergeSecs,
      drainMs: lastLineAt - w.lastWrite,
      cpuPercent: ((cpu1 - cpu0) / ticksPerSec / mergeSecs) * 100,
      peakRssKiB: rssKiB,
      exit: signal ?? code,
      stopMs,
      ...check,
      stderr: run.stderr.slice(0, 2000),
    }
    rmSync(dir, { recursive: true, force: true })
    spawnSync('sync')
    return result
  } finally {
    watch?.stop()
    if (run.alive) child.kill('SIGKILL')
  }
}

/** @param {string} path */
function statSize(path) {
  try {
    const fd = openSync(path, 'r')
    try {
      return fstatSync(fd).size
    } finally {
      closeSync(fd)
    }
  } catch {
    return 0
  }
}

/**
 * @param {{ engines: string[], quick: boolean, seconds?: number | undefined, extraArgs?: string[], dir?: string }} opts
 *   seconds: how long the writers write (default 10; 2 with --quick); dir: where the inputs
 *   and outputs go (default bench/out; e.g. a tmpfs, to take the disk out of the figures)
 */
export async function throughput(opts) {
  const seconds = opts.seconds ?? (opts.quick ? QUICK_SECONDS : FULL_SECONDS)
  const base = opts.dir ?? OUT_DIR
  const ticks = clockTicks()
  mkdirSync(base, { recursive: true })
  // The first burst of writes after a quiet spell is often several times slower on this VM (new
  // page-cache memory faulted in from the host): a discarded warm-up pass comes first.
  const warmupSeconds = Math.min(QUICK_SECONDS, seconds)
  process.stderr.write(`throughput: warm-up: ${WRITERS} writers alone for ${warmupSeconds} s...\n`)
  const warmup = await writersOnly(base, warmupSeconds)
  process.stderr.write(`throughput: warm-up: ${fmt(warmup.mibPerSec, 0)} MiB/s (discarded)\n`)
  process.stderr.write(`throughput: ${WRITERS} writers alone for ${seconds} s...\n`)
  const alone = await writersOnly(base, seconds)
  process.stderr.write(
    `throughput: writers alone: ${fmt(alone.linesPerSec, 0)} lines/s, ${fmt(alone.mibPerSec, 0)} MiB/s\n`,
  )
  const results = []
  for (const engine of opts.engines) {
    process.stderr.write(`throughput: ${engine}: ${WRITERS} writers for ${seconds} s...\n`)
    const r = await measureEngine(base, engine, seconds, opts.extraArgs ?? [], ticks)
    process.stderr.write(
      `throughput: ${engine}: ${fmt(r.mergedLinesPerSec, 0)} lines/s merged, lost ${r.lost}, duplicated ${r.duplicated}, out of order ${r.outOfOrder}, malformed ${r.malformed}, exit ${r.exit}\n`,
    )
    results.push({
      ...r,
      ok:
        r.complete &&
        r.lost === 0 &&
        r.duplicated === 0 &&
        r.outOfOrder === 0 &&
        r.malformed === 0 &&
        r.unknown === 0 &&
        r.exit === 0,
    })
  }
  const table = markdownTable(
    [
      'engine',
      'lines',
      'MiB',
      'writers lines/s',
      'writers MiB/s',
      'merged lines/s',
      'merged MiB/s',
      'drain ms',
      'logmerge CPU %',
      'peak RSS MiB',
      'lost',
      'dup',
      'out of order',
      'malformed',
      'exit',
    ],
    [
      [
        '(writers alone)',
        alone.lines,
        fmt(alone.bytes / MiB, 0),
        fmt(alone.linesPerSec, 0),
        fmt(alone.mibPerSec, 0),
        '-',
        '-',
        '-',
        '-',
        '-',
        '-',
        '-',
        '-',
        '-',
        '-',
      ],
      ...results.map((r) => [
        r.engine,
        r.writers.lines,
        fmt(r.writers.bytes / MiB, 0),
        fmt(r.writers.linesPerSec, 0),
        fmt(r.writers.mibPerSec, 0),
        fmt(r.mergedLinesPerSec, 0),
        fmt(r.mergedMibPerSec, 0),
        fmt(r.drainMs, 0),
        fmt(r.cpuPercent, 0),
        fmt(r.peakRssKiB === null ? null : r.peakRssKiB / 1024, 0),
        r.lost,
        r.duplicated,
        r.outOfOrder,
        r.malformed + r.unknown,
        String(r.exit),
      ]),
    ],
  )
  const problems = results.flatMap((r) =>
    r.ok
      ? []
      : [
          `- **${r.engine}: problems.** complete ${r.complete}, lost ${r.lost}, duplicated ${r.duplicated}, out of order ${r.outOfOrder}, malformed ${r.malformed}, unknown ${r.unknown}, exit ${r.exit}${r.examples.length > 0 ? `; e.g. ${r.examples.join('; ')}` : ''}${r.stderr ? `; stderr: ${JSON.stringify(r.stderr.slice(0, 300))}` : ''}`,
        ],
  )
  const markdown = [
    `### throughput: ${WRITERS} writers x ${seconds} s, ${LINE_BYTES}-byte lines, ${BATCH_LINES} lines (${(BATCH_LINES * LINE_BYTES) / 1024} KiB) per write`,
    '',
    'merged lines/s = writer lines / (last line in the output - first write); writers lines/s = writer lines / (last write - first write).',
    'drain ms = last line in the output - last write (how far behind logmerge was when the writers stopped).',
    'logmerge CPU % = its utime+stime from the first write to the last line, in % of one core.',
    '',
    table,
    '',
    ...(problems.length > 0
      ? problems
      : ['Every line arrived exactly once, whole and in order per writer; every exit was 0.']),
    '',
    `Commands (files under ${relative(ROOT, join(base, 'throughput-E'))}/):`,
    '',
    ...results.map((r) => `    ${r.command}`),
  ].join('\n')
  return {
    markdown,
    json: {
      name: 'throughput',
      seconds,
      dir: relative(ROOT, base) || '.',
      writers: WRITERS,
      lineBytes: LINE_BYTES,
      batchLines: BATCH_LINES,
      clockTicks: ticks,
      writersAlone: alone,
      writersWarmup: warmup,
      results,
    },
  }
}

/** @returns {boolean} true when this file is the program being run */
function isMain() {
  const arg = process.argv[1]
  if (!arg) return false
  try {
    return pathToFileURL(realpathSync(arg)).href === import.meta.url
  } catch {
    return false
  }
}

if (isMain() && process.argv[2] === '--writer') {
  writerMain(process.argv.slice(3)).catch((err) => {
    process.stderr.write(`throughput writer: ${err instanceof Error ? err.message : String(err)}\n`)
    process.exitCode = 1
  })
}
