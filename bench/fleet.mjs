// @ts-check
/**
 * fleet: hosts -> JetStream stream -> centre -> one file (issue 18), against logmerge writing
 * the same files straight to a local output, in the same run.
 *
 * Throughput: 2 hosts x 2 files of 100-byte lines (1,000,000 lines in all; --quick 200,000;
 * --size BYTES per file)
 * are published with `--once` while the centre follows the stream into fleet.log; the clock
 * runs from the hosts' start until fleet.log holds every line. Through replicas 1 (one
 * nats-server) and replicas 3 (a 3-node cluster on loopback). CPU seconds per million lines:
 * the hosts' and the centre's user + system time, and the servers' apart. The local run is one
 * `logmerge --once` of the same four files into a local file.
 *
 * Latency: at 100 lines/s (--rate) for 10 s (--seconds) one process appends to a host's file
 * and watches fleet.log (and, beside it, the output of a local logmerge following the same
 * file) for each line: from the append's write() to the line in the output, p50 and p99.
 *
 * A/B: `--logmerge DIR` (repeatable) measures DIR/bin/logmerge too (its own built dist/): the
 * builds' throughput runs alternate within each round, so they share the machine's load;
 * `--runs N` rounds (default 1; 3 with --logmerge). `--only throughput` skips the latency runs. With
 * LOGMERGE_FLEET_PROF=DIR the hosts and the centre run with `node --cpu-prof` into
 * DIR/<build>-r<replicas>-<round>/ (read them with bench/cpuprofile-top.mjs).
 *
 * Needs nats-server (Debian's; .ci/run installs it). Store directories and files go under a
 * temporary directory, removed afterwards.
 */
import { spawn } from 'node:child_process'
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { basename, join, resolve } from 'node:path'
import { BIN, fmt, markdownTable, percentile, ROOT, sleep, trackChild } from './lib.mjs'

const NATS_SERVER = ['/usr/sbin/nats-server', '/usr/bin/nats-server'].find(existsSync)
const LINE_BYTES = 100
const TICKS = 100 // /proc clock ticks per second (Linux's USER_HZ)

/** @returns {Promise<number>} */
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = /** @type {import('node:net').AddressInfo} */ (srv.address())
      srv.close(() => resolve(port))
    })
  })
}

/** user + system CPU seconds of a running process, from /proc. @param {number} pid */
function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1')
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(f[11]) + Number(f[12])) / TICKS
  } catch {
    return Number.NaN
  }
}

/**
 * Starts `size` JetStream nodes clustered on loopback (one: no cluster block).
 * @param {string} dir @param {number} size
 */
async function startServers(dir, size) {
  const ports = await Promise.all(Array.from({ length: size }, () => freePort()))
  const routes = await Promise.all(Array.from({ length: size }, () => freePort()))
  /** @type {import('node:child_process').ChildProcess[]} */
  const procs = []
  for (let i = 0; i < size; i++) {
    const store = join(dir, `store-${i}`)
    mkdirSync(store, { recursive: true })
    const lines = [
      `server_name: b${i}`,
      `listen: 127.0.0.1:${ports[i]}`,
      `jetstream { store_dir: "${store}", max_mem: 256MB, max_file: 8GB }`,
    ]
    if (size > 1) {
      const others = routes.filter((_, j) => j !== i).map((p) => `nats-route://127.0.0.1:${p}`)
      lines.push(
        `cluster { name: bench, listen: 127.0.0.1:${routes[i]}, routes: [${others.join(', ')}] }`,
      )
    }
    const conf = join(dir, `n${i}.conf`)
    writeFileSync(conf, `${lines.join('\n')}\n`)
    const p = spawn(/** @type {string} */ (NATS_SERVER), ['-c', conf], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    await new Promise((resolve, reject) => {
      const onData = (/** @type {Buffer} */ b) => {
        out += b
        if (out.includes('Server is ready')) resolve(undefined)
      }
      p.stdout?.on('data', onData)
      p.stderr?.on('data', onData)
      p.once('exit', () => reject(new Error(`nats-server exited:\n${out}`)))
    })
    procs.push(p)
  }
  const url = (/** @type {string} */ stream) =>
    `nats://${ports.map((p) => `127.0.0.1:${p}`).join(',')}/${stream}`
  return {
    url,
    cpu: () => procs.reduce((n, p) => n + cpuSeconds(/** @type {number} */ (p.pid)), 0),
    async stop() {
      for (const p of procs) p.kill('SIGTERM')
      await Promise.all(
        procs.map(
          (p) => new Promise((r) => (p.exitCode !== null ? r(undefined) : p.once('exit', r))),
        ),
      )
    },
  }
}

/**
 * `count` lines of exactly LINE_BYTES bytes, newline included.
 * @param {string} path @param {string} tag @param {number} count
 */
function writeLines(path, tag, count) {
  const fd = openSync(path, 'w')
  const chunk = []
  for (let i = 0; i < count; i++) {
    const head = `${tag} ${String(i).padStart(9, '0')} `
    chunk.push(`${head}${'x'.repeat(LINE_BYTES - 1 - head.length)}\n`)
    if (chunk.length === 10_000 || i === count - 1) {
      writeSync(fd, chunk.join(''))
      chunk.length = 0
    }
  }
  closeSync(fd)
}

/**
 * Runs bin/logmerge (or `cmd`) to its end with /usr/bin/time: exit, wall and CPU seconds.
 * @param {string[]} args @param {string[]} [cmd]
 */
function runTimed(args, cmd = [BIN]) {
  const timing = join(
    tmpdir(),
    `lm-fleet-time-${process.pid}-${Math.random().toString(36).slice(2)}`,
  )
  const child = spawn('/usr/bin/time', ['-f', '%U %S', '-o', timing, ...cmd, ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  const t = trackChild(child)
  return t.exited.then(({ code }) => {
    const [u, s] =
      readFileSync(timing, 'utf8').trim().split('\n').at(-1)?.split(' ').map(Number) ?? []
    rmSync(timing, { force: true })
    if (code !== 0) throw new Error(`logmerge ${args.join(' ')} exited ${code}:\n${t.stderr}`)
    return { cpu: (u ?? 0) + (s ?? 0) }
  })
}

/** Resolves once `path` is at least `bytes` long (polling). @param {string} path @param {number} bytes */
async function waitForSize(path, bytes, timeoutMs = 600_000) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const size = existsSync(path) ? statSync(path).size : 0
    if (size >= bytes) return
    if (Date.now() > deadline)
      throw new Error(`${path}: ${size} of ${bytes} bytes after ${timeoutMs} ms`)
    await sleep(5)
  }
}

/**
 * The command line that runs `bin` for the run `name`: with LOGMERGE_FLEET_PROF, under
 * `node --cpu-prof` into a directory of its own (NODE_OPTIONS may not carry --cpu-prof).
 * @param {string} bin @param {string} name @returns {string[]}
 */
function command(bin, name) {
  const prof = process.env.LOGMERGE_FLEET_PROF
  if (!prof) return [bin]
  const dir = join(resolve(prof), name)
  mkdirSync(dir, { recursive: true })
  return [process.execPath, '--cpu-prof', `--cpu-prof-dir=${dir}`, bin]
}

/**
 * Hosts -> stream -> centre throughput over `replicas`, with the build `build`.
 * @param {string} dir @param {number} replicas @param {string[][]} hostFiles @param {number} lines
 * @param {{ name: string, bin: string }} build @param {number} round
 */
async function throughputRun(
  dir,
  replicas,
  hostFiles,
  lines,
  build = { name: 'A', bin: BIN },
  round = 1,
) {
  const tag = `${build.name}-r${replicas}-${round}`
  const servers = await startServers(join(dir, `servers-${tag}`), replicas)
  const cmd = command(build.bin, tag)
  try {
    const url = servers.url('BENCH')
    const out = join(dir, `fleet-${tag}.log`)
    const [exe, ...pre] = /** @type {[string, ...string[]]} */ (cmd)
    const centre = spawn(exe, [...pre, url, '-o', out, '--nats-replicas', String(replicas)], {
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    const ct = trackChild(centre)
    await waitForSize(join(dir, `.fleet-${tag}.log.logmerge-state.json`), 1, 30_000)
    const serverCpu0 = servers.cpu()
    const t0 = performance.now()
    const hosts = hostFiles.map((files, h) =>
      runTimed(
        [
          ...files,
          '--once',
          '-o',
          url,
          '--host-id',
          `bench-${h}`,
          '--nats-replicas',
          String(replicas),
        ],
        cmd,
      ),
    )
    const hostCpu = (await Promise.all(hosts)).reduce((n, r) => n + r.cpu, 0)
    const hostsSeconds = (performance.now() - t0) / 1000
    await waitForSize(out, lines * LINE_BYTES)
    const seconds = (performance.now() - t0) / 1000
    const centreCpu = cpuSeconds(/** @type {number} */ (centre.pid))
    const serverCpu = servers.cpu() - serverCpu0
    centre.kill('SIGTERM')
    const exit = await ct.exited
    if (exit.code !== 0) throw new Error(`the centre exited ${exit.code}:\n${ct.stderr}`)
    const written = statSync(out).size
    if (written !== lines * LINE_BYTES)
      throw new Error(`fleet.log has ${written} bytes, not ${lines * LINE_BYTES}`)
    rmSync(out, { force: true })
    return {
      build: build.name,
      round,
      replicas,
      lines,
      seconds,
      hostsSeconds,
      linesPerSecond: lines / seconds,
      hostCpu,
      centreCpu,
      serverCpu,
    }
  } finally {
    await servers.stop()
    rmSync(join(dir, `servers-${tag}`), { recursive: true, force: true })
  }
}

/**
 * Lines appended at `rate`/s to a host's file: when each reaches fleet.log and a local output.
 * @param {string} dir @param {number} replicas @param {number} rate @param {number} seconds
 */
async function latencyRun(dir, replicas, rate, seconds) {
  const servers = await startServers(join(dir, `lat-servers-r${replicas}`), replicas)
  const procs = /** @type {import('node:child_process').ChildProcess[]} */ ([])
  try {
    const url = servers.url('LAT')
    const input = join(dir, `lat-r${replicas}.log`)
    writeFileSync(input, '')
    const fleetOut = join(dir, `lat-fleet-r${replicas}.out`)
    const localOut = join(dir, `lat-local-r${replicas}.out`)
    const args = ['--nats-replicas', String(replicas)]
    const host = ['--host-id', 'lat', '--state', join(dir, `lat-host-r${replicas}.state`)]
    procs.push(spawn(BIN, [url, '-o', fleetOut, ...args], { stdio: 'ignore' }))
    procs.push(
      spawn(BIN, [input, '-o', url, '--from', 'start', ...host, ...args], { stdio: 'ignore' }),
    )
    procs.push(spawn(BIN, [input, '-o', localOut, '--from', 'start'], { stdio: 'ignore' }))
    // Warm up: both outputs show a first line.
    writeFileSync(input, 'warmup\n', { flag: 'a' })
    await waitForSize(fleetOut, 7, 60_000)
    await waitForSize(localOut, 7, 60_000)
    const outs = [fleetOut, localOut].map((path) => ({
      path,
      fd: -1,
      pos: 7,
      rest: '',
      seen: new Map(),
    }))
    const buf = Buffer.allocUnsafe(1 << 20)
    const poll = () => {
      const now = performance.now()
      for (const o of outs) {
        if (o.fd < 0) o.fd = openSync(o.path, 'r')
        for (;;) {
          const n = readSync(o.fd, buf, 0, buf.length, o.pos)
          if (n === 0) break
          o.pos += n
          const text = o.rest + buf.toString('latin1', 0, n)
          const parts = text.split('\n')
          o.rest = parts.pop() ?? ''
          for (const l of parts) {
            const m = /^seq=(\d+)$/.exec(l)
            if (m && !o.seen.has(Number(m[1]))) o.seen.set(Number(m[1]), now)
          }
        }
      }
    }
    const timer = setInterval(poll, 1)
    const appended = new Map()
    const fd = openSync(input, 'a')
    const total = Math.round(rate * seconds)
    const start = performance.now()
    for (let seq = 0; seq < total; seq++) {
      const due = start + (seq * 1000) / rate
      while (performance.now() < due) await sleep(Math.max(0, due - performance.now() - 1))
      writeSync(fd, `seq=${seq}\n`)
      appended.set(seq, performance.now())
    }
    closeSync(fd)
    const deadline = Date.now() + 60_000
    while (outs.some((o) => o.seen.size < total) && Date.now() < deadline) await sleep(10)
    clearInterval(timer)
    const result = outs.map((o) => {
      const ms = [...appended]
        .map(([seq, t]) => (o.seen.get(seq) ?? Number.NaN) - t)
        .sort((a, b) => a - b)
      return { seen: o.seen.size, p50: percentile(ms, 50), p99: percentile(ms, 99), max: ms.at(-1) }
    })
    for (const o of outs) if (o.fd >= 0) closeSync(o.fd)
    const [fleet, local] = /** @type {[typeof result[0] & {}, typeof result[0] & {}]} */ (result)
    return { replicas, rate, seconds, total, fleet, local }
  } finally {
    for (const p of procs) p.kill('SIGTERM')
    await Promise.all(
      procs.map(
        (p) => new Promise((r) => (p.exitCode !== null ? r(undefined) : p.once('exit', r))),
      ),
    )
    await servers.stop()
  }
}

/** @param {import('./run.mjs').BenchOptions} opts */
export async function fleet(opts) {
  if (!NATS_SERVER)
    throw new Error('fleet: nats-server is not installed (apt-get install nats-server)')
  const dir = mkdtempSync(join(tmpdir(), 'lm-bench-fleet-'))
  try {
    // --size: bytes per file (4 files), for runs long enough that the processes' start-up
    // (about 0.4 CPU-s each, see docs/fleet.md) weighs less in the CPU per million lines.
    const lines = opts.bytesEach
      ? 4 * Math.max(1, Math.floor(opts.bytesEach / LINE_BYTES))
      : opts.quick
        ? 200_000
        : 1_000_000
    const each = lines / 4
    /** @type {string[][]} */
    const hostFiles = []
    for (let h = 0; h < 2; h++) {
      mkdirSync(join(dir, `host-${h}`))
      hostFiles.push(
        ['a', 'b'].map((f) => {
          const path = join(dir, `host-${h}`, `${f}.log`)
          writeLines(path, `h${h}${f}`, each)
          return path
        }),
      )
    }
    process.stderr.write(`bench: fleet: ${lines} lines of ${LINE_BYTES} bytes in 4 files\n`)
    const local = await (async () => {
      const t0 = performance.now()
      const r = await runTimed([...hostFiles.flat(), '--once', '-o', join(dir, 'local.log')])
      return { seconds: (performance.now() - t0) / 1000, cpu: r.cpu }
    })()
    const builds = [ROOT, ...(opts.logmerge ?? []).map((d) => resolve(d))].map((root, i) => ({
      name: String.fromCharCode(65 + i),
      root,
      bin: join(root, 'bin', 'logmerge'),
    }))
    const rounds = opts.runsGiven || opts.logmerge ? opts.runs : 1
    const runs = []
    for (const replicas of [1, 3]) {
      for (let round = 1; round <= rounds; round++) {
        // Alternate which build goes first, so neither always follows the other's load.
        const order = round % 2 === 1 ? builds : [...builds].reverse()
        for (const build of order) {
          process.stderr.write(
            `bench: fleet: throughput, replicas ${replicas}, build ${build.name} (${basename(build.root)}), round ${round}\n`,
          )
          runs.push(await throughputRun(dir, replicas, hostFiles, lines, build, round))
        }
      }
    }
    const rate = opts.rate ?? 100
    const seconds = opts.seconds ?? (opts.quick ? 3 : 10)
    const latencies = []
    if (opts.only !== 'throughput') {
      for (const replicas of [1, 3]) {
        process.stderr.write(`bench: fleet: latency at ${rate} lines/s, replicas ${replicas}\n`)
        latencies.push(await latencyRun(dir, replicas, rate, seconds))
      }
    }
    const perM = (/** @type {number} */ cpu) => (cpu * 1e6) / lines
    const label = (/** @type {string} */ name) =>
      builds.length > 1
        ? ` [${name}: ${basename(builds.find((b) => b.name === name)?.root ?? '')}]`
        : ''
    const rows = [
      [
        'local: logmerge --once into a file',
        fmt(lines / local.seconds / 1000, 0),
        fmt(local.seconds, 2),
        fmt(perM(local.cpu), 2),
        '-',
        '-',
        '-',
      ],
      ...runs.map((r) => [
        `fleet, replicas ${r.replicas}: 2 hosts -> stream -> centre${label(r.build)}${rounds > 1 ? `, round ${r.round}` : ''}`,
        fmt(r.linesPerSecond / 1000, 0),
        `${fmt(r.seconds, 2)} (${fmt(r.hostsSeconds, 2)})`,
        fmt(perM(r.hostCpu + r.centreCpu), 2),
        fmt(perM(r.hostCpu), 2),
        fmt(perM(r.centreCpu), 2),
        fmt(perM(r.serverCpu), 2),
      ]),
    ]
    const latRows = latencies.flatMap((l) => [
      [
        `fleet, replicas ${l.replicas}`,
        l.fleet.seen,
        fmt(l.fleet.p50, 1),
        fmt(l.fleet.p99, 1),
        fmt(l.fleet.max, 1),
      ],
      [
        `local (same run)`,
        l.local.seen,
        fmt(l.local.p50, 1),
        fmt(l.local.p99, 1),
        fmt(l.local.max, 1),
      ],
    ])
    const markdown = [
      `### fleet: ${lines.toLocaleString('en')} lines of ${LINE_BYTES} bytes, 2 hosts x 2 files`,
      '',
      markdownTable(
        [
          'run',
          'k lines/s',
          'seconds (hosts done)',
          'logmerge CPU-s / M lines',
          'of it hosts',
          'of it centre',
          'nats-server CPU-s / M lines',
        ],
        rows,
      ),
      ...(latencies.length > 0
        ? [
            '',
            `### fleet: append-to-output latency at ${rate} lines/s for ${seconds} s (ms)`,
            '',
            markdownTable(['output', 'lines seen', 'p50', 'p99', 'max'], latRows),
          ]
        : []),
    ].join('\n')
    return {
      markdown,
      json: {
        lines,
        lineBytes: LINE_BYTES,
        builds: builds.map((b) => ({ name: b.name, root: b.root })),
        local,
        throughput: runs,
        latency: latencies,
      },
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
