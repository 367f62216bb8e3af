/**
 * The end-to-end harness: a temp directory per test, the real bin/logmerge spawned with a pinned
 * environment, writer processes, polling waits with generous deadlines (never wall-clock
 * assertions), and a checker for "every line exactly once, each file's order kept".
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import {
  appendFileSync,
  closeSync,
  existsSync,
  fstatSync,
  openSync,
  readFileSync,
  readSync,
} from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename, dirname, join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterEach, test as base, expect } from 'vitest'
import { lineFor } from './writer-child.mjs'

export { ENGINES } from '../../src/config.js'

export const ROOT = fileURLToPath(new URL('../..', import.meta.url))
/**
 * The bin the tests run: this checkout's, or another build's (LOGMERGE_TEST_BIN=/other/bin/logmerge:
 * to show that a new test fails on the build before a fix).
 */
export const BIN = process.env.LOGMERGE_TEST_BIN || join(ROOT, 'bin', 'logmerge')
const WRITER = fileURLToPath(new URL('./writer-child.mjs', import.meta.url))
const ROTATING_WRITER = fileURLToPath(new URL('./rotating-writer.mjs', import.meta.url))
const COPYING_WRITER = fileURLToPath(new URL('./copying-writer.mjs', import.meta.url))
const SOAK_WRITER = fileURLToPath(new URL('./soak-writer.mjs', import.meta.url))
const LOGROTATE =
  ['/usr/sbin/logrotate', '/sbin/logrotate'].find((p) => existsSync(p)) ?? 'logrotate'

/**
 * Set (to anything) to keep a failed test's temp directory, with the stdout and stderr of every
 * process it started written into it (`children/`), for tracing a failure after the fact.
 */
const KEEP_FAILED = Boolean(process.env.LOGMERGE_TEST_KEEP_FAILED)
/** The processes the last test started, once afterEach has killed what was left of them. */
let ended: Child[] = []

/** Writes the stdout and stderr of the last test's processes into `dir` (see KEEP_FAILED). */
async function keepChildren(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true })
  for (const [i, c] of ended.entries()) {
    const name = `${i}-${c.name.replace(/[^\w-]+/g, '-').slice(0, 40)}`
    await writeFile(join(dir, `${name}.name`), `${c.name}\n`)
    await writeFile(join(dir, `${name}.stdout`), c.stdout())
    await writeFile(join(dir, `${name}.stderr`), c.stderr())
  }
}

/** A fresh temp directory per test, removed afterwards (after afterEach has killed children). */
export const test = base.extend<{ tmp: string }>({
  tmp: async ({ task }, use) => {
    const slug = task.name.replace(/[^\w-]+/g, '-').slice(0, 40)
    const dir = await mkdtemp(join(tmpdir(), `logmerge-e2e-${slug}-`))
    ended = []
    await use(dir)
    if (KEEP_FAILED && task.result?.state === 'fail') {
      await keepChildren(join(dir, 'children'))
      process.stderr.write(`kept the failed test's directory: ${dir}\n`)
      return
    }
    await rm(dir, { recursive: true, force: true })
  },
})

// ---------------------------------------------------------------------------------------------
// Child processes
// ---------------------------------------------------------------------------------------------

export interface Exit {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

export interface Child {
  readonly name: string
  readonly pid: number
  /** Resolves once the process has exited and its stdout/stderr are closed. */
  readonly exited: Promise<Exit>
  readonly hasExited: boolean
  stdout(): Buffer
  stderr(): string
  kill(signal?: NodeJS.Signals): void
}

/** Every child a test starts; afterEach kills what is left. */
const children = new Set<Child>()

/** Node's own process warnings (`(node:123) Warning: ...`, deprecations) fail the test. */
const NODE_WARNING = /\(node:\d+\) (\[\w+\] )?\w*Warning/

afterEach(async () => {
  const all = [...children]
  children.clear()
  for (const child of all) child.kill('SIGKILL')
  await Promise.all(all.map((c) => c.exited))
  ended = all
  const warned = all.filter((c) => NODE_WARNING.test(c.stderr()))
  if (warned.length > 0) {
    throw new Error(
      `process warnings from ${warned.map((c) => c.name).join(', ')}:\n${warned.map((c) => c.stderr()).join('\n')}`,
    )
  }
})

/** The environment every child runs in: nothing inherited but PATH and HOME. */
export function pinnedEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    // The same node that runs the tests comes first, for bin/logmerge's `#!/usr/bin/env node`.
    PATH: `${dirname(process.execPath)}:${process.env.PATH ?? '/usr/bin:/bin'}`,
    HOME: process.env.HOME ?? '/',
    TZ: 'UTC',
    TERM: 'dumb',
    LC_ALL: 'C',
    ...extra,
  }
}

function track(name: string, proc: ChildProcess): Child {
  const out: Buffer[] = []
  const err: Buffer[] = []
  proc.stdout?.on('data', (b: Buffer) => out.push(b))
  proc.stderr?.on('data', (b: Buffer) => err.push(b))
  let done = false
  const exited = new Promise<Exit>((resolve, reject) => {
    proc.once('error', reject)
    proc.once('close', (code, signal) => {
      done = true
      resolve({ code, signal })
    })
  })
  if (proc.pid === undefined) throw new Error(`could not start ${name}`)
  const child: Child = {
    name,
    pid: proc.pid,
    exited,
    get hasExited() {
      return done
    },
    stdout: () => Buffer.concat(out),
    stderr: () => Buffer.concat(err).toString('utf8'),
    kill(signal = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal)
    },
  }
  children.add(child)
  return child
}

export interface SpawnOptions {
  readonly cwd?: string
  readonly env?: NodeJS.ProcessEnv
  /** Run as this user id, with the group id of the same number (root only: nobody is 65534). */
  readonly uid?: number
  /** Run under `ulimit -n <this>` (through bash). */
  readonly openFilesLimit?: number
  /** Run under this file size limit in bytes, rounded up to KiB (`ulimit -f`, through bash). */
  readonly fileSizeLimit?: number
  /** Its stdout is this file descriptor (`> file`) instead of a pipe the test collects. */
  readonly stdoutFd?: number
}

/** Starts the real bin/logmerge (through its shebang) with a pinned environment. */
export function spawnLogmerge(args: readonly string[], opts: SpawnOptions = {}): Child {
  const limits = [
    ...(opts.openFilesLimit === undefined ? [] : [`ulimit -n ${opts.openFilesLimit}`]),
    ...(opts.fileSizeLimit === undefined
      ? []
      : [`ulimit -f ${Math.ceil(opts.fileSizeLimit / 1024)}`]),
  ]
  const [command, argv] =
    limits.length === 0
      ? [BIN, args]
      : ['bash', ['-c', `${limits.join(' && ')} && exec "$0" "$@"`, BIN, ...args]]
  const proc = spawn(command, argv, {
    cwd: opts.cwd ?? ROOT,
    env: pinnedEnv(opts.env),
    stdio: ['ignore', opts.stdoutFd ?? 'pipe', 'pipe'],
    ...(opts.uid !== undefined && { uid: opts.uid, gid: opts.uid }),
  })
  return track(`logmerge ${args.join(' ')}`, proc)
}

export interface Ran extends Exit {
  readonly stdout: Buffer
  readonly stderr: string
}

/** Runs bin/logmerge to its end (for --once and for the start-up errors). */
export async function runLogmerge(args: readonly string[], opts: SpawnOptions = {}): Promise<Ran> {
  const child = spawnLogmerge(args, opts)
  const exit = await child.exited
  return { ...exit, stdout: child.stdout(), stderr: child.stderr() }
}

export interface Writer extends Child {
  /** The lines it writes, in order (without newlines). */
  readonly lines: readonly string[]
}

/** Starts writer-child.mjs: `count` lines `<prefix>-<seq>-<pad>` appended to `path`. */
export function spawnWriter(path: string, prefix: string, count: number, delayMs = 0): Writer {
  const proc = spawn(process.execPath, [WRITER, path, prefix, String(count), String(delayMs)], {
    env: pinnedEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const child = track(`writer ${prefix}`, proc)
  const lines = Array.from({ length: count }, (_, seq) => lineFor(prefix, seq))
  return Object.assign(child, { lines })
}

/** Starts `script` (a line writer's arguments: path, prefix, count, rate, every) as `label`. */
function spawnLineWriter(
  script: string,
  label: string,
  path: string,
  prefix: string,
  count: number,
  rate: number,
  every: number,
): Writer {
  const argv = [script, path, prefix, String(count), String(rate), String(every)]
  const proc = spawn(process.execPath, argv, {
    env: pinnedEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const child = track(`${label} ${prefix}`, proc)
  const lines = Array.from({ length: count }, (_, seq) => lineFor(prefix, seq))
  return Object.assign(child, { lines })
}

/**
 * Starts rotating-writer.mjs: `count` lines `<prefix>-<seq>-<pad>` at `rate` lines/s to `path`,
 * which it creates and renames to `path.K` every `every` lines.
 */
export const spawnRotatingWriter = (
  path: string,
  prefix: string,
  count: number,
  rate: number,
  every: number,
): Writer => spawnLineWriter(ROTATING_WRITER, 'rotating writer', path, prefix, count, rate, every)

/**
 * Starts copying-writer.mjs: `count` lines `<prefix>-<seq>-<pad>` at `rate` lines/s to `path`,
 * copied over `path.1` in place (fs.copyFileSync) and truncated every `every` lines.
 */
export const spawnCopyingWriter = (
  path: string,
  prefix: string,
  count: number,
  rate: number,
  every: number,
): Writer => spawnLineWriter(COPYING_WRITER, 'copying writer', path, prefix, count, rate, every)

/** How soak-writer.mjs rotates its file (see there). */
export type SoakRotation = 'rename' | 'copy' | 'copy-in-place' | 'truncate'

export interface SoakWriterOptions {
  readonly path: string
  readonly prefix: string
  readonly mode: SoakRotation
  readonly rate: number
  /** Each rotation comes rotateMs[0]-rotateMs[1] ms after the one before. */
  readonly rotateMs: readonly [number, number]
  /** logmerge's output and state file: a destructive rotation waits until they cover it. */
  readonly out: string
  readonly state: string
}

/** What soak-writer.mjs reports when it stops. */
export interface SoakWritten {
  readonly prefix: string
  readonly mode: SoakRotation
  readonly lines: number
  readonly rotations: number
  /** Old numbered generations deleted (logrotate's `rotate N`), each once durable. */
  readonly deleted: number
  /** Where each generation of the file begins (line number), how, and when (ms). */
  readonly generations: readonly {
    readonly from: number
    readonly how: string
    readonly at: number
  }[]
  /** Waits for the checkpoint before a destructive rotation. */
  readonly waits: { readonly count: number; readonly longestMs: number; readonly totalMs: number }
}

/**
 * Starts soak-writer.mjs, which writes `lineFor(prefix, 0, 1, ...)` and rotates its file until
 * `stopSoakWriter`.
 */
export function spawnSoakWriter(o: SoakWriterOptions): Child {
  const argv = [
    SOAK_WRITER,
    ...[o.path, o.prefix, o.mode, String(o.rate), String(o.rotateMs[0]), String(o.rotateMs[1])],
    ...[o.out, o.state],
  ]
  const proc = spawn(process.execPath, argv, {
    env: pinnedEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  return track(`soak writer ${o.prefix} (${o.mode})`, proc)
}

/** SIGTERM, then the writer's report of what it wrote. */
export async function stopSoakWriter(writer: Child): Promise<SoakWritten> {
  writer.kill('SIGTERM')
  await finished(writer)
  return JSON.parse(writer.stdout().toString('utf8')) as SoakWritten
}

/**
 * `n` processes that spin (`node -e 'for(;;){}'`) until the test ends: load that takes the
 * cores from logmerge and the writers, as other work on a busy machine does.
 */
export function spawnBusyLoops(n: number): Child[] {
  return Array.from({ length: n }, (_, i) =>
    track(
      `busy loop ${i}`,
      spawn(process.execPath, ['-e', 'for(;;){}'], { env: pinnedEnv(), stdio: 'ignore' }),
    ),
  )
}

/** Waits for a writer to finish and checks it did. */
export async function finished(writer: Child): Promise<void> {
  expect(await writer.exited, `${writer.name}: ${writer.stderr()}`).toEqual({
    code: 0,
    signal: null,
  })
}

/**
 * SIGSTOP, and wait until the process really is stopped (kill returns before it is), or has
 * ended (a writer that was finishing).
 */
export async function pause(child: Child): Promise<void> {
  child.kill('SIGSTOP')
  // Polled every millisecond: the stop takes microseconds, and the tests that step a process
  // (resume, a few ms, pause) until it is mid-merge pause hundreds of times.
  await waitFor(() => procState(child.pid) === 'T' || child.hasExited, {
    what: `${child.name} to stop`,
    interval: 1,
  })
}

export function resume(child: Child): void {
  child.kill('SIGCONT')
}

/** The state letter in /proc/<pid>/stat (R, S, T, Z, ...). */
function procState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1')
    return stat.slice(stat.lastIndexOf(')') + 2).charAt(0)
  } catch {
    return undefined
  }
}

/** Resident memory of a process in bytes (VmRSS), or undefined once it is gone. */
export function rssBytes(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'))
    return m ? Number(m[1]) * 1024 : undefined
  } catch {
    return undefined
  }
}

/** SIGTERM, then expect a clean exit (status 0: drained and stopped). */
export async function stop(lm: Child): Promise<void> {
  lm.kill('SIGTERM')
  expect(await lm.exited, `logmerge stderr:\n${lm.stderr()}`).toEqual({ code: 0, signal: null })
}

// ---------------------------------------------------------------------------------------------
// Waiting
// ---------------------------------------------------------------------------------------------

export interface WaitOptions {
  /** Deadline in ms; generous, because a loaded CI machine is slow. */
  readonly timeout?: number
  readonly interval?: number
  /** For the error message. */
  readonly what?: string
  /** Give up at once if this process exits, and show its stderr on failure. */
  readonly proc?: Child
}

/** Polls `condition` until it returns a truthy value, which it returns. */
export async function waitFor<T>(
  condition: () => T | Promise<T>,
  opts: WaitOptions = {},
): Promise<NonNullable<T>> {
  const { timeout = 20000, interval = 25, what = 'a condition', proc } = opts
  const deadline = Date.now() + timeout
  for (;;) {
    const value = await condition()
    if (value) return value as NonNullable<T>
    if (proc?.hasExited) {
      const exit = await proc.exited
      throw new Error(
        `${proc.name} exited (${JSON.stringify(exit)}) while waiting for ${what}\nstderr:\n${proc.stderr()}`,
      )
    }
    if (Date.now() > deadline) {
      const stderr = proc ? `\nstderr of ${proc.name}:\n${proc.stderr()}` : ''
      throw new Error(`timed out after ${timeout} ms waiting for ${what}${stderr}`)
    }
    await sleep(interval)
  }
}

/** The complete lines of a file (without newlines; a trailing partial line is left out). */
export function completeLines(file: string): string[] {
  let text: string
  try {
    text = readFileSync(file, 'latin1')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
  const end = text.lastIndexOf('\n')
  return end < 0 ? [] : text.slice(0, end).split('\n')
}

/** Reads `file` until it has at least `n` complete lines; returns them. */
export function waitForLines(file: string, n: number, opts: WaitOptions = {}): Promise<string[]> {
  return waitFor(
    () => {
      const lines = completeLines(file)
      return lines.length >= n ? lines : null
    },
    { what: `${n} lines in ${basename(file)}`, ...opts },
  )
}

/**
 * Waits until every one of `lines` is in `file`; returns its complete lines then.
 *
 * Each look reads only what was added since the last one: reading the whole output every 25 ms
 * took a core of its own once it held 100,000 lines (330 ms a look at 114,000 lines), beside
 * the logmerge runs the test waits for. A file that is another one now (inode), shorter than
 * what was read, or whose bytes before the point reached are not the ones read there (cut
 * back and written again, as a restart does to the output) is read again from its start, and
 * what it holds counts only from then on.
 */
export async function waitForAll(
  file: string,
  lines: readonly string[],
  opts: WaitOptions = {},
): Promise<string[]> {
  let pending = lines
  let have = new Set<string>()
  let ino = -1
  let offset = 0
  let seam = Buffer.alloc(0) // the last bytes read, just before offset
  let carry = '' // a partial last line
  const look = (): boolean => {
    let fd: number
    try {
      fd = openSync(file, 'r')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return pending.length === 0
      throw err
    }
    try {
      const st = fstatSync(fd)
      let same = st.ino === ino && st.size >= offset
      if (same && seam.length > 0) {
        const now = Buffer.alloc(seam.length)
        same = readSync(fd, now, 0, seam.length, offset - seam.length) === seam.length
        same &&= now.equals(seam)
      }
      if (!same) {
        pending = lines
        have = new Set()
        ino = st.ino
        offset = 0
        seam = Buffer.alloc(0)
        carry = ''
      }
      if (st.size > offset) {
        const chunk = Buffer.alloc(st.size - offset)
        const n = readSync(fd, chunk, 0, chunk.length, offset)
        const parts = (carry + chunk.toString('latin1', 0, n)).split('\n')
        carry = parts.pop() as string
        for (const line of parts) have.add(line)
        offset += n
        seam = Buffer.concat([seam, chunk.subarray(Math.max(0, n - SEAM_BYTES), n)]).subarray(
          -SEAM_BYTES,
        )
      }
      pending = pending.filter((l) => !have.has(l))
      return pending.length === 0
    } finally {
      closeSync(fd)
    }
  }
  await waitFor(look, { what: `${lines.length} given lines in ${basename(file)}`, ...opts })
  return completeLines(file)
}

/** How many bytes before the point reached waitForAll compares at each look. */
const SEAM_BYTES = 64

// ---------------------------------------------------------------------------------------------
// What was written, and the check of what came out
// ---------------------------------------------------------------------------------------------

const RUN = Math.random().toString(36).slice(2, 8)
let unique = 0

/** Lines nobody else writes: `<name>-<seq>-<random pad>`. */
export function uniqueLines(name: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => {
    const pad = Math.random()
      .toString(36)
      .slice(2, 2 + (i % 9))
    return `${name}-${i}-${RUN}${unique++}${pad}`
  })
}

/**
 * What the test wrote, as ordered streams: one per input file, or one per writer when several
 * write to the same file (each writer's lines are a subsequence of that file).
 */
export class Journal {
  readonly streams = new Map<string, string[]>()

  /** Appends `lines` to `file` in one write and records them under `stream` (default: file). */
  append(file: string, lines: readonly string[], stream = file): void {
    appendFileSync(file, lines.map((l) => `${l}\n`).join(''))
    this.record(stream, lines)
  }

  record(stream: string, lines: readonly string[]): void {
    const list = this.streams.get(stream) ?? []
    // One at a time: a spread of 100,000s of lines overflows the call stack (the 200-kill soak).
    for (const line of lines) list.push(line)
    this.streams.set(stream, list)
  }

  get all(): string[] {
    return [...this.streams.values()].flat()
  }
}

/** What is wrong with an output, by kind (see tally). */
export interface Tally {
  readonly missing: readonly string[]
  /** `<line> xN` for each line that appears N > 1 times. */
  readonly doubled: readonly string[]
  readonly unexpected: readonly string[]
  /** Lines that came after a later line of their stream (`after`: that line's index). */
  readonly disorder: readonly {
    readonly line: string
    readonly stream: string
    readonly after: number
  }[]
}

/** Compares an output with what was written: lines missing, doubled, unexpected, out of order. */
export function tally(output: readonly string[], written: Journal): Tally {
  const where = new Map<string, { stream: string; index: number }>()
  for (const [stream, lines] of written.streams) {
    lines.forEach((line, index) => {
      if (where.has(line)) throw new Error(`test bug: line ${line} written twice`)
      where.set(line, { stream, index })
    })
  }
  const seen = new Map<string, number>()
  const unexpected: string[] = []
  const disorder: { line: string; stream: string; after: number }[] = []
  const lastIndex = new Map<string, number>()
  for (const line of output) {
    seen.set(line, (seen.get(line) ?? 0) + 1)
    const at = where.get(line)
    if (!at) {
      unexpected.push(line)
      continue
    }
    const prev = lastIndex.get(at.stream) ?? -1
    if (at.index <= prev) disorder.push({ line, stream: at.stream, after: prev })
    lastIndex.set(at.stream, at.index)
  }
  const missing = [...where.keys()].filter((l) => !seen.has(l))
  const doubled = [...seen].filter(([l, n]) => n > 1 && where.has(l)).map(([l, n]) => `${l} x${n}`)
  return { missing, doubled, unexpected, disorder }
}

/**
 * Every written line appears exactly once, nothing else appears, and each stream's lines keep
 * their order. Reports a short list of problems rather than a diff of thousands of lines.
 */
export function expectMerged(output: readonly string[], written: Journal): void {
  const { missing, doubled, unexpected, disorder } = tally(output, written)
  const show = (what: string, list: readonly string[]) =>
    list.length === 0
      ? []
      : [
          `${list.length} ${what}: ${list.slice(0, 5).map(cut).join(' | ')}${list.length > 5 ? ' ...' : ''}`,
        ]
  const problems = [
    ...show('missing', missing),
    ...show('doubled', doubled),
    ...show('unexpected', unexpected),
    ...show(
      'out of order',
      disorder.map((d) => `${d.line} after index ${d.after} of ${d.stream}`),
    ),
  ]
  const count = [...written.streams.values()].reduce((n, lines) => n + lines.length, 0)
  expect(problems, `${output.length} output lines, ${count} written`).toEqual([])
}

const cut = (line: string): string =>
  JSON.stringify(line.length > 80 ? `${line.slice(0, 77)}...` : line)

// ---------------------------------------------------------------------------------------------
// Following
// ---------------------------------------------------------------------------------------------

export interface Following {
  readonly lm: Child
  /** The output file. */
  readonly out: string
  /** The probe lines that reached the output, recorded per probed file. */
  readonly journal: Journal
}

export interface FollowOptions {
  readonly cwd: string
  readonly engine: string
  /** Input arguments as given on the command line (relative to cwd). */
  readonly inputs: readonly string[]
  /** Existing input files (absolute) to probe before returning; default: none. */
  readonly probe?: readonly string[]
  readonly args?: readonly string[]
  readonly out?: string
  /** Extra environment (LOGMERGE_FAULT) and the user to run as (see SpawnOptions). */
  readonly env?: NodeJS.ProcessEnv
  readonly uid?: number
}

/**
 * Starts logmerge in follow mode (from the end of existing files, the default) and returns once
 * it follows every file in `probe`: a probe line appended to each has reached the output.
 */
export async function follow(opts: FollowOptions): Promise<Following> {
  const out = opts.out ?? join(opts.cwd, 'out.log')
  const lm = spawnLogmerge(
    ['--engine', opts.engine, ...(opts.args ?? []), '-o', out, ...opts.inputs],
    {
      cwd: opts.cwd,
      ...(opts.env && { env: opts.env }),
      ...(opts.uid !== undefined && { uid: opts.uid }),
    },
  )
  const journal = new Journal()
  await Promise.all((opts.probe ?? []).map((file) => probe(lm, out, file, journal)))
  return { lm, out, journal }
}

/**
 * Appends probe lines to `file` until one reaches `out`. A probe written before logmerge opened
 * the file lies before its start (--from end) and never appears; every probe after the first
 * that appears must appear too, in order, so those are recorded in the journal. The first wait
 * is short and grows: a thread engine opens its files 300-600 ms after the spawn, and a probe
 * sent while it starts only costs a line (a first wait of 250 ms, doubled, cost 750 ms each).
 */
async function probe(lm: Child, out: string, file: string, journal: Journal): Promise<void> {
  const sent: string[] = []
  const deadline = Date.now() + 20000
  let patience = 50
  for (;;) {
    const [line] = uniqueLines(`probe-${basename(file)}`, 1) as [string]
    appendFileSync(file, `${line}\n`)
    sent.push(line)
    let first = -1
    try {
      await waitFor(
        () => {
          const have = new Set(completeLines(out))
          first = sent.findIndex((l) => have.has(l))
          return first >= 0
        },
        { timeout: Math.min(patience, deadline - Date.now()), proc: lm, what: `a probe` },
      )
    } catch (err) {
      if (lm.hasExited || Date.now() >= deadline) throw err
      patience = Math.min(Math.round(patience * 1.5), 4000)
      continue
    }
    const due = sent.slice(first)
    journal.record(file, due)
    // Those written after the one seen may still be on their way: let the output settle.
    await waitForAll(out, due, { proc: lm })
    return
  }
}

// ---------------------------------------------------------------------------------------------
// logrotate
// ---------------------------------------------------------------------------------------------

const execFileAsync = promisify(execFile)

/** Writes a logrotate config for `file` with the given directives; returns a rotate function. */
export async function logrotateFor(
  dir: string,
  file: string,
  directives: readonly string[],
): Promise<() => Promise<void>> {
  const conf = join(dir, 'logrotate.conf')
  const state = join(dir, 'logrotate.state')
  const body = `${file} {\n${directives.map((d) => `  ${d}\n`).join('')}}\n`
  // logrotate ignores a config that group or others may write.
  await writeFile(conf, body, { mode: 0o644 })
  return async () => {
    await execFileAsync(LOGROTATE, ['-f', '-s', state, conf], { env: pinnedEnv() })
  }
}
