// @ts-check
/**
 * timeorder: merging big files by timestamp (--once --order time) against `LC_ALL=C sort -m`
 * of the same files, in one run. The inputs are 4 sorted ISO-timestamped logs (the `app`
 * format of fixtures/generate.mjs, one seed each, all starting at the same time so their lines
 * interleave), 128 MiB each by default.
 *
 *   node bench/timeorder.mjs                  # build first: npm run build
 *   node bench/timeorder.mjs --size 8M --runs 1
 *   node bench/timeorder.mjs --out /dev/null  # measure without writing the output to disk
 *
 * Contenders (CONTENDERS below, one function each; add one to compare something else):
 *   logmerge --once --order time   the real CLI end to end (spawned, under GNU time), as the
 *                  product chooses its reader; `(reader thread)` and `(main-thread reader)`
 *                  force one (LOGMERGE_READER_THREAD); --baseline DIR adds another build
 *   merge          TimeOrder from dist/ in this process: readSync 1 MiB chunks, framed by the
 *                  tail Cursor, pushed, released, copied into 1 MiB output writes
 *   sort -m        LC_ALL=C sort -m f1..f4 > out          (whole-line comparison)
 *   sort -m -s -k1,1   the same order as the merge: the timestamp field only, stable, so
 *                  equal times keep file order (its output must equal the merge's: --verify)
 * Rounds are interleaved (order rotated each round); best and median are reported. Inputs
 * are read through the page cache (a warm-up read comes first). MB/s = input bytes / wall time.
 */

import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import {
  closeSync,
  fstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs'
import { open, writeFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { parseSize, writeLogFile } from '../fixtures/generate.mjs'
import {
  checkBuild,
  fmt,
  formatMachine,
  gitInfo,
  MiB,
  machineInfo,
  markdownTable,
  OUT_DIR,
  ROOT,
  writeResults,
} from './lib.mjs'

const DEFAULT_BYTES = 128 * MiB
const SEEDS = [201, 202, 203, 204]
const READ_CHUNK = MiB
const OUT_CHUNK = MiB

/**
 * @typedef {object} Input
 * @property {number} seed
 * @property {number} requestedBytes
 * @property {string} path
 * @property {number} bytes
 * @property {number} lines
 */

/**
 * Generates the inputs under bench/out/timeorder-<size>/, or reuses them when the manifest
 * matches and the files still have their size.
 * @param {number} bytesEach
 * @returns {Promise<Input[]>}
 */
async function ensureInputs(bytesEach) {
  const dir = join(OUT_DIR, `timeorder-${bytesEach}`)
  const manifestPath = join(dir, 'manifest.json')
  mkdirSync(dir, { recursive: true })
  /** @type {Input[]} */
  let old = []
  try {
    old = JSON.parse(readFileSync(manifestPath, 'utf8'))
  } catch {}
  /** @type {Input[]} */
  const inputs = []
  for (const seed of SEEDS) {
    const path = join(dir, `app-${seed}.log`)
    const had = old.find((f) => f.seed === seed && f.requestedBytes === bytesEach)
    if (had && statSync(path, { throwIfNoEntry: false })?.size === had.bytes) {
      inputs.push({ ...had, path })
      continue
    }
    const t0 = performance.now()
    const r = await writeLogFile(path, { format: 'app', seed, bytes: bytesEach })
    process.stderr.write(
      `timeorder: generated ${relative(ROOT, path)} (${(r.bytes / MiB).toFixed(1)} MiB, ${r.lines} lines) in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`,
    )
    inputs.push({ seed, requestedBytes: bytesEach, path, bytes: r.bytes, lines: r.lines })
  }
  await writeFile(manifestPath, `${JSON.stringify(inputs, null, 2)}\n`)
  return inputs
}

/** @param {string[]} paths reads every input once so all contenders find it in the cache */
function warm(paths) {
  const buf = Buffer.allocUnsafe(4 * MiB)
  for (const p of paths) {
    const fd = openSync(p, 'r')
    try {
      while (readSync(fd, buf, 0, buf.length, null) > 0) {}
    } finally {
      closeSync(fd)
    }
  }
}

/** Collects output into OUT_CHUNK-sized writes, copying each piece with Buffer.copy. */
class ChunkWriter {
  /** @param {(bytes: Buffer) => void} write */
  constructor(write) {
    this.write = write
    this.buf = Buffer.allocUnsafe(OUT_CHUNK)
    this.used = 0
  }

  /** @param {Buffer} block @param {number} start @param {number} end */
  append(block, start, end) {
    const n = end - start
    if (this.used + n > this.buf.length) this.flush()
    if (n > this.buf.length) {
      this.write(block.subarray(start, end))
      return
    }
    block.copy(this.buf, this.used, start, end)
    this.used += n
  }

  flush() {
    if (this.used === 0) return
    const bytes = this.buf.subarray(0, this.used)
    this.used = 0
    this.write(bytes)
  }
}

/**
 * The compiled modules the in-process contenders run (dist/, as the real program does). The
 * path is computed so the type checker reads the sources' types instead of compiling dist/.
 * @returns {Promise<{ TimeOrder: typeof import('../src/order/time-order.js').TimeOrder, Cursor: typeof import('../src/tail/cursor.js').Cursor, CopyArena: typeof import('../src/batch/arena.js').CopyArena }>}
 */
async function loadDist() {
  const dist = (/** @type {string} */ name) => pathToFileURL(join(ROOT, 'dist', name)).href
  const { TimeOrder } = await import(dist('order/time-order.js'))
  const { CopyArena } = await import(dist('batch/arena.js'))
  const { Cursor } = await import(dist('tail/cursor.js'))
  return { TimeOrder, Cursor, CopyArena }
}

/** Room in a read slot for the partial line carried over from the previous read. */
const SLOT_SLACK = 64 * 1024

/**
 * A CopyArena writing with `write`, which is synchronous: an output area is free again as soon
 * as write returns (the product's writer keeps areas until they are written).
 * @param {typeof import('../src/batch/arena.js').CopyArena} CopyArena
 * @param {number} slotBytes
 * @param {number} slots
 * @param {(bytes: Buffer) => void} write
 */
function syncArena(CopyArena, slotBytes, slots, write) {
  const arena = new CopyArena(slotBytes, slots, OUT_CHUNK, (bytes) => {
    write(bytes)
    arena.written(arena.handedBytes)
  })
  return arena
}

/**
 * The merge as --once would run it, in this process: read the sources the merge waits for,
 * push, release runs, write. With `arena`, reads go into two slots per source of a CopyArena
 * and runs are copied to the output within its memory (WebAssembly's memory.copy); without,
 * each read gets a fresh buffer and runs are copied with Buffer.copy.
 * @param {string[]} paths
 * @param {number} outFd
 * @param {import('node:crypto').Hash | null} hash
 * @param {boolean} arena
 * @returns {Promise<{ outBytes: number, records: number, cpuMs: number }>}
 */
async function mergeInProcess(paths, outFd, hash, arena) {
  const { TimeOrder, Cursor, CopyArena } = await loadDist()
  const cpu0 = process.cpuUsage()
  const order = new TimeOrder({ windowMs: Number.POSITIVE_INFINITY })
  let outBytes = 0
  /** @param {Buffer} bytes */
  const write = (bytes) => {
    hash?.update(bytes)
    let at = 0
    while (at < bytes.length) at += writeSync(outFd, bytes, at, bytes.length - at)
    outBytes += bytes.length
  }
  const out = arena
    ? syncArena(CopyArena, READ_CHUNK + SLOT_SLACK, 2 * paths.length, write)
    : new ChunkWriter(write)
  const sources = paths.map((path, i) => {
    order.open(i, { format: 'iso' })
    return {
      fd: openSync(path, 'r'),
      cursor: new Cursor({
        identity: { dev: 0, ino: i },
        offset: 0,
        head: Buffer.alloc(0),
        maxLineBytes: MiB,
      }),
      reads: 0,
      done: false,
    }
  })
  /** @type {import('../src/order/time-order.js').RunSink<number>} */
  const sink = (_key, block, start, end) => out.append(block, start, end)
  try {
    for (;;) {
      let open = 0
      for (const [i, s] of sources.entries()) {
        if (s.done) continue
        open++
        if (!order.needsMore(i)) continue
        const scratch = out instanceof CopyArena ? out.slot(2 * i + (s.reads++ % 2)) : undefined
        const { buf, start } = s.cursor.readBuffer(READ_CHUNK, scratch)
        const n = readSync(s.fd, buf, start, READ_CHUNK, s.cursor.offset)
        const block = n === 0 ? s.cursor.flush() : s.cursor.frameRead(buf, start, n)
        if (block !== null) order.push(i, block, 0)
        if (n === 0) {
          order.end(i)
          s.done = true
        }
      }
      order.releaseRuns(0, sink)
      if (open === 0) break
    }
  } finally {
    for (const s of sources) closeSync(s.fd)
  }
  out.flush()
  const cpu = process.cpuUsage(cpu0)
  return { outBytes, records: order.stats.written, cpuMs: (cpu.user + cpu.system) / 1000 }
}

/**
 * @typedef {object} ReadAheadSource
 * @property {import('node:fs/promises').FileHandle} handle
 * @property {import('../src/tail/cursor.js').Cursor} cursor
 * @property {number} reads
 * @property {boolean} done
 * @property {Promise<{ buf: Buffer, start: number, n: number }> | null} pending
 */

/**
 * The merge with reads in the background: each source keeps one read of its next chunk in
 * flight (FileHandle.read, on libuv's thread pool) while the merge works on what it has, so the
 * kernel's copy from the page cache runs beside the merge instead of before it. Three arena
 * slots per source: the chunk being merged, the one being read, and the one before (free once
 * the merge needs more of the source: it then holds at most the last record, in the newest).
 * Writes stay synchronous, as in `merge`.
 * @param {string[]} paths
 * @param {number} outFd
 * @param {import('node:crypto').Hash | null} hash
 * @returns {Promise<{ outBytes: number, records: number, cpuMs: number }>}
 */
async function mergeReadAhead(paths, outFd, hash) {
  const { TimeOrder, Cursor, CopyArena } = await loadDist()
  const cpu0 = process.cpuUsage()
  const order = new TimeOrder({ windowMs: Number.POSITIVE_INFINITY })
  let outBytes = 0
  /** @param {Buffer} bytes */
  const write = (bytes) => {
    hash?.update(bytes)
    let at = 0
    while (at < bytes.length) at += writeSync(outFd, bytes, at, bytes.length - at)
    outBytes += bytes.length
  }
  const SLOTS = 3
  const arena = syncArena(CopyArena, READ_CHUNK + SLOT_SLACK, SLOTS * paths.length, write)
  const sources = await Promise.all(
    paths.map(async (path, i) => {
      order.open(i, { format: 'iso' })
      const cursor = new Cursor({
        identity: { dev: 0, ino: i },
        offset: 0,
        head: Buffer.alloc(0),
        maxLineBytes: MiB,
      })
      /** @type {ReadAheadSource} */
      const source = { handle: await open(path, 'r'), cursor, reads: 0, done: false, pending: null }
      return source
    }),
  )
  /**
   * Starts reading the source's next chunk into its next slot (the cursor copies a held
   * partial line to the slot's start first).
   * @param {ReadAheadSource} s @param {number} i
   */
  const readNext = (s, i) => {
    const slot = arena.slot(SLOTS * i + (s.reads++ % SLOTS))
    const { buf, start } = s.cursor.readBuffer(READ_CHUNK, slot)
    const position = s.cursor.offset
    s.pending = s.handle
      .read(buf, start, READ_CHUNK, position)
      .then((r) => ({ buf, start, n: r.bytesRead }))
  }
  /** @type {import('../src/order/time-order.js').RunSink<number>} */
  const sink = (_key, block, start, end) => arena.append(block, start, end)
  try {
    for (const [i, s] of sources.entries()) readNext(s, i)
    for (;;) {
      let open = 0
      for (const [i, s] of sources.entries()) {
        if (s.done) continue
        open++
        if (!order.needsMore(i) || s.pending === null) continue
        const { buf, start, n } = await s.pending
        s.pending = null
        const block = n === 0 ? s.cursor.flush() : s.cursor.frameRead(buf, start, n)
        if (n > 0) readNext(s, i)
        if (block !== null) order.push(i, block, 0)
        if (n === 0) {
          order.end(i)
          s.done = true
        }
      }
      order.releaseRuns(0, sink)
      if (open === 0) break
    }
  } finally {
    await Promise.all(sources.map((s) => s.handle.close()))
  }
  arena.flush()
  const cpu = process.cpuUsage(cpu0)
  return { outBytes, records: order.stats.written, cpuMs: (cpu.user + cpu.system) / 1000 }
}

/**
 * Runs `sort` with the given arguments on the inputs, stdout to `outFd` or through a hash.
 * @param {string[]} args
 * @param {string[]} paths
 * @param {number} outFd
 * @param {import('node:crypto').Hash | null} hash
 * @returns {Promise<{ outBytes: number, cpuMs: number }>}
 */
function runSort(args, paths, outFd, hash) {
  return runProgram('sort', args, paths, outFd, hash)
}

/**
 * Runs `program` with `args` then the inputs under GNU time, stdout to `outFd` or a hash.
 * @param {string} program
 * @param {string[]} args
 * @param {string[]} paths
 * @param {number} outFd
 * @param {import('node:crypto').Hash | null} hash
 * @param {NodeJS.ProcessEnv} [env] added to the environment
 * @returns {Promise<{ outBytes: number, cpuMs: number }>}
 */
function runProgram(program, args, paths, outFd, hash, env = {}) {
  return new Promise((resolve, reject) => {
    const cpuFile = join(OUT_DIR, `.sort-cpu-${process.pid}`)
    const child = spawn(
      '/usr/bin/time',
      ['-f', '%U %S', '-o', cpuFile, program, ...args, ...paths],
      {
        env: { ...process.env, LC_ALL: 'C', ...env },
        stdio: ['ignore', hash === null ? outFd : 'pipe', 'pipe'],
      },
    )
    let outBytes = 0
    child.stdout?.on('data', (/** @type {Buffer} */ d) => {
      hash?.update(d)
      outBytes += d.length
    })
    let stderr = ''
    child.stderr?.setEncoding('utf8').on('data', (d) => {
      stderr += d
    })
    child.on('error', reject)
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`${program} ${args.join(' ')} exited ${code}: ${stderr}`))
      else {
        const [user, sys] = readFileSync(cpuFile, 'utf8').trim().split(/\s+/).map(Number)
        rmSync(cpuFile, { force: true })
        const cpuMs = ((user ?? Number.NaN) + (sys ?? Number.NaN)) * 1000
        resolve({ outBytes: hash === null ? fstatSync(outFd).size : outBytes, cpuMs })
      }
    })
  })
}

/**
 * @typedef {object} Contender
 * @property {string} name
 * @property {string} command   what it runs, as a user would type it
 * @property {boolean} ordersByTime  true when its output must equal REFERENCE's (plain
 *   `sort -m` compares whole lines, so lines with equal timestamps may come out otherwise)
 * @property {(paths: string[], outFd: number, hash: import('node:crypto').Hash | null) => Promise<{ outBytes: number, cpuMs: number }>} run
 *   cpuMs: user + system CPU time of the work (the child's, via GNU time; this process's for
 *   in-process contenders, which includes V8's helper threads)
 */

const BASELINE = 'logmerge (baseline)'

/**
 * The end-to-end contender for another build of logmerge (a checkout with dist/ built).
 * @param {string} dir
 * @returns {Contender}
 */
function baseline(dir) {
  const bin = join(dir, 'bin', 'logmerge')
  if (!statSync(join(dir, 'dist', 'cli.js'), { throwIfNoEntry: false })) {
    throw new RangeError(`--baseline: ${dir} has no dist/cli.js (run npm run build there)`)
  }
  return {
    name: BASELINE,
    ordersByTime: true,
    command: `${relative(ROOT, bin)} --once --order time f1 f2 f3 f4 > out (${gitCommitOf(dir)})`,
    run: (paths, fd, hash) => runProgram(bin, ['--once', '--order', 'time'], paths, fd, hash),
  }
}

/**
 * The commit a checkout was made from, when it says (a git archive carries none).
 * @param {string} dir
 */
function gitCommitOf(dir) {
  try {
    return readFileSync(join(dir, 'COMMIT'), 'utf8').trim()
  } catch {
    return 'commit unknown'
  }
}

/** @param {number[]} values @returns {number} the middle value (the mean of the two for an even count) */
function medianOf(values) {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1
    ? (sorted[mid] ?? Number.NaN)
    : ((sorted[mid - 1] ?? Number.NaN) + (sorted[mid] ?? Number.NaN)) / 2
}

/** The contender whose output every other must equal: the same order by definition. */
const REFERENCE = 'sort -m -s -k1,1'

/** @type {Contender[]} */
const CONTENDERS = [
  {
    name: 'logmerge --once --order time',
    ordersByTime: true,
    command:
      'bin/logmerge --once --order time f1 f2 f3 f4 > out (end to end: formats detected; partition threads, or a reader thread, when the load average leaves cores free)',
    run: (paths, fd, hash) =>
      runProgram(join(ROOT, 'bin', 'logmerge'), ['--once', '--order', 'time'], paths, fd, hash),
  },
  {
    name: 'logmerge (partitions)',
    ordersByTime: true,
    command: 'LOGMERGE_PARTITIONS=on bin/logmerge --once --order time f1 f2 f3 f4 > out',
    run: (paths, fd, hash) =>
      runProgram(join(ROOT, 'bin', 'logmerge'), ['--once', '--order', 'time'], paths, fd, hash, {
        LOGMERGE_PARTITIONS: 'on',
      }),
  },
  {
    name: 'logmerge (reader thread)',
    ordersByTime: true,
    command:
      'LOGMERGE_PARTITIONS=off LOGMERGE_READER_THREAD=on bin/logmerge --once --order time f1 f2 f3 f4 > out',
    run: (paths, fd, hash) =>
      runProgram(join(ROOT, 'bin', 'logmerge'), ['--once', '--order', 'time'], paths, fd, hash, {
        LOGMERGE_PARTITIONS: 'off',
        LOGMERGE_READER_THREAD: 'on',
      }),
  },
  {
    name: 'logmerge (main-thread reader)',
    ordersByTime: true,
    command:
      'LOGMERGE_PARTITIONS=off LOGMERGE_READER_THREAD=off bin/logmerge --once --order time f1 f2 f3 f4 > out',
    run: (paths, fd, hash) =>
      runProgram(join(ROOT, 'bin', 'logmerge'), ['--once', '--order', 'time'], paths, fd, hash, {
        LOGMERGE_PARTITIONS: 'off',
        LOGMERGE_READER_THREAD: 'off',
      }),
  },
  {
    name: 'merge',
    ordersByTime: true,
    command: 'TimeOrder.releaseRuns in-process; readSync 1 MiB into CopyArena slots, 1 MiB writes',
    run: (paths, fd, hash) => mergeInProcess(paths, fd, hash, true),
  },
  {
    name: 'merge (read-ahead)',
    ordersByTime: true,
    command: 'the same, each source reading its next chunk in the background (FileHandle.read)',
    run: (paths, fd, hash) => mergeReadAhead(paths, fd, hash),
  },
  {
    name: 'merge (Buffer.copy)',
    ordersByTime: true,
    command: 'the same, a fresh buffer per read and Buffer.copy per run',
    run: (paths, fd, hash) => mergeInProcess(paths, fd, hash, false),
  },
  {
    name: 'sort -m',
    ordersByTime: false,
    command: 'LC_ALL=C sort -m f1 f2 f3 f4 > out',
    run: (paths, fd, hash) => runSort(['-m'], paths, fd, hash),
  },
  {
    name: 'sort -m -s -k1,1',
    ordersByTime: true,
    command: 'LC_ALL=C sort -m -s -k1,1 f1 f2 f3 f4 > out',
    run: (paths, fd, hash) => runSort(['-m', '-s', '-k1,1'], paths, fd, hash),
  },
]

/**
 * @param {Contender} c @param {string[]} paths @param {string} out
 * @returns {Promise<{ wallMs: number, cpuMs: number, outBytes: number }>}
 */
async function timeOnce(c, paths, out) {
  if (out !== '/dev/null') rmSync(out, { force: true })
  const fd = openSync(out, 'w')
  try {
    const t0 = performance.now()
    const r = await c.run(paths, fd, null)
    return { wallMs: performance.now() - t0, cpuMs: r.cpuMs, outBytes: r.outBytes }
  } finally {
    closeSync(fd)
    if (out !== '/dev/null') rmSync(out, { force: true })
  }
}

/** @param {Contender} c @param {string[]} paths @returns {Promise<string>} sha256 of the output */
async function outputHash(c, paths) {
  const hash = createHash('sha256')
  const fd = openSync('/dev/null', 'w')
  try {
    await c.run(paths, fd, hash)
  } finally {
    closeSync(fd)
  }
  return hash.digest('hex')
}

const USAGE = `usage: node bench/timeorder.mjs [--size SIZE] [--runs N] [--out PATH] [--no-verify]

  --size SIZE   bytes per input (default 128M; 4 inputs)
  --runs N      rounds; the best time of each contender is kept (default 3)
  --out PATH    where outputs go (default bench/out/timeorder.out, deleted after each run);
                /dev/null measures without writing to disk
  --no-verify   skip comparing each output with sort -m -s -k1,1's (sha256; plain sort -m
                differs where two lines share a timestamp: it compares whole lines)
  --only NAME   run only this contender (repeatable): ${CONTENDERS.map((c) => c.name).join(', ')}
  --baseline DIR  also run DIR/bin/logmerge (another checkout, built) as 'logmerge (baseline)',
                in the same rounds: before/after figures from one run
`

async function main() {
  const { values } = parseArgs({
    options: {
      size: { type: 'string' },
      runs: { type: 'string' },
      out: { type: 'string' },
      verify: { type: 'boolean', default: true },
      'no-verify': { type: 'boolean', default: false },
      only: { type: 'string', multiple: true },
      baseline: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  })
  if (values.help) {
    process.stdout.write(USAGE)
    return
  }
  checkBuild()
  const bytesEach = values.size === undefined ? DEFAULT_BYTES : parseSize(values.size)
  const runs = Math.max(1, Number(values.runs ?? 3))
  const out = values.out ?? join(OUT_DIR, 'timeorder.out')
  const inputs = await ensureInputs(bytesEach)
  const paths = inputs.map((f) => f.path)
  const totalBytes = inputs.reduce((n, f) => n + f.bytes, 0)
  const totalLines = inputs.reduce((n, f) => n + f.lines, 0)
  warm(paths)

  const all =
    values.baseline === undefined ? CONTENDERS : [baseline(values.baseline), ...CONTENDERS]
  const contenders = all.filter(
    (c) =>
      values.only === undefined ||
      values.only.includes(c.name) ||
      (c.name === BASELINE && values.baseline !== undefined),
  )
  if (contenders.length === 0) {
    throw new RangeError(`--only: expected some of ${CONTENDERS.map((c) => c.name).join(', ')}`)
  }
  /** @type {Record<string, Array<{ wallMs: number, cpuMs: number }>>} */
  const times = Object.fromEntries(contenders.map((c) => [c.name, []]))
  /** @type {Record<string, number>} */
  const outBytes = {}
  for (let round = 0; round < runs; round++) {
    const rotated = contenders.map((_, i) => contenders[(i + round) % contenders.length])
    for (const c of rotated) {
      if (c === undefined) continue
      const r = await timeOnce(c, paths, out)
      times[c.name]?.push({ wallMs: r.wallMs, cpuMs: r.cpuMs })
      outBytes[c.name] = r.outBytes
      process.stderr.write(
        `timeorder: round ${round + 1}/${runs} ${c.name}: ${(r.wallMs / 1000).toFixed(2)} s (cpu ${(r.cpuMs / 1000).toFixed(2)} s)\n`,
      )
    }
  }

  /** @type {Record<string, string>} */
  const hashes = {}
  const verify = values.verify && !values['no-verify']
  if (verify) {
    for (const c of contenders) hashes[c.name] = await outputHash(c, paths)
  }
  const reference = hashes[REFERENCE]
  const rows = contenders.map((c) => {
    const all = times[c.name] ?? []
    const best = Math.min(...all.map((t) => t.wallMs))
    const median = medianOf(all.map((t) => t.wallMs))
    const bestCpu = Math.min(...all.map((t) => t.cpuMs))
    const medianCpu = medianOf(all.map((t) => t.cpuMs))
    const hash = hashes[c.name]
    return [
      c.name,
      fmt(best / 1000, 2),
      fmt(totalBytes / MiB / (best / 1000), 0),
      fmt(median / 1000, 2),
      fmt(totalBytes / MiB / (median / 1000), 0),
      fmt(bestCpu / 1000, 2),
      fmt(medianCpu / 1000, 2),
      all.map((t) => (t.wallMs / 1000).toFixed(2)).join(', '),
      hash === undefined || reference === undefined
        ? 'not checked'
        : hash === reference
          ? 'yes'
          : `NO (${hash.slice(0, 12)})`,
      c.command,
    ]
  })
  const mismatch =
    verify &&
    contenders.some(
      (c) => c.ordersByTime && reference !== undefined && hashes[c.name] !== reference,
    )
  const machine = machineInfo()
  const git = gitInfo()
  const markdown = [
    `## timeorder: merge by timestamp vs sort -m`,
    '',
    formatMachine(machine),
    `- logmerge commit ${git.commit}${git.dirty.length > 0 ? ` (uncommitted: ${git.dirty.join(', ')})` : ''}`,
    `- inputs: ${inputs.length} x ${fmt(bytesEach / MiB, 0)} MiB (${fmt(totalBytes / MiB, 1)} MiB, ${totalLines} lines), output to ${out === '/dev/null' ? '/dev/null' : relative(ROOT, out)}; best of ${runs}`,
    `- same output as \`${REFERENCE}\`: sha256 of each contender's output compared`,
    '',
    markdownTable(
      [
        'contender',
        'best wall s',
        'MiB/s (best)',
        'median wall s',
        'MiB/s (median)',
        'best CPU s',
        'median CPU s',
        'all runs (wall s)',
        'same output',
        'command',
      ],
      rows,
    ),
  ].join('\n')
  process.stdout.write(`${markdown}\n`)
  const path = await writeResults('timeorder', {
    machine,
    git,
    inputs,
    runs,
    out,
    times,
    outBytes,
    hashes,
  })
  process.stdout.write(`\n(JSON: ${path})\n`)
  if (mismatch) process.exitCode = 1
}

main().catch((err) => {
  process.stderr.write(
    `timeorder: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  )
  process.exitCode = 1
})
