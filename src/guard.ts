/**

 * Start-up checks on the output, before anything is opened for writing: it must never be one of
 * the inputs (logmerge would read its own output forever), and it and the state file must be
 * writable where they are (or be creatable there). With several jobs, also no output written
 * by two jobs, no output that another job reads, and no state file shared. Each failure is
 * exit 2 with the path and the fix, rather than a run that fails later or loops.
 */
import { accessSync, constants, readdirSync, readlinkSync, realpathSync, statSync } from 'node:fs'
import { basename, dirname, join, resolve } from 'node:path'
import { describeErrno, errors } from './errors.js'
import { isFleetUrl } from './fleet/url.js'
import type { InputSpec } from './tail/inputs.js'

/** Directories looked at below a directory or glob input before giving up the search. */
const MAX_DIRS = 10_000
/** Symlinks followed in a row (the kernel's own limit is 40). */
const MAX_HOPS = 40

interface Identity {
  readonly dev: number
  readonly ino: number
}

export function checkOutputNotInput(output: string, inputs: readonly InputSpec[]): void {
  const how = outputReadBy(output, inputs)
  if (how !== null) throw errors.outputIsInput(output, how)
}

/** How `inputs` would read `output` (same path, a glob matching it, a link), or null. */
export function outputReadBy(output: string, inputs: readonly InputSpec[]): string | null {
  if (output === '-' || isFleetUrl(output)) return null
  const target = finalPath(output)
  const dirId = identityOf(dirname(target))
  const fileId = identityOf(target)
  for (const input of inputs) {
    const how = reachedBy(input, output, target, dirId, fileId)
    if (how) return how
  }
  return null
}

/** What the cross-job checks need of a job. */
export interface JobFiles {
  /** For messages: `jobs[1]` (or the job's name). */
  readonly where: string
  readonly name: string
  readonly output: string
  readonly inputs: readonly InputSpec[]
  readonly statePath: string | null
}

/**
 * Problems between jobs, one line each naming the key path: two jobs writing one output (their
 * lines would interleave and each would truncate the other's bytes on restart), an output that
 * another job reads (a restart truncates it back to its checkpoint, which the reader would take
 * for a truncation and read again), and two jobs sharing a state file (each would overwrite the
 * other's checkpoint). A job's own output among its own inputs is checked here too.
 */
export function checkJobs(jobs: readonly JobFiles[]): string[] {
  const problems: string[] = []
  const writers = new Map<string, JobFiles>()
  const states = new Map<string, JobFiles>()
  for (const job of jobs) {
    const out = job.output === '-' ? '-' : realOrSelf(job.output)
    const first = writers.get(out)
    const sameOutput = first !== undefined
    if (first) {
      const what = out === '-' ? 'stdout' : job.output
      problems.push(
        `${job.where}.output: ${what} is also the output of ${describe(first)}: two jobs cannot write one output (give each its own)`,
      )
    } else writers.set(out, job)
    // Two jobs on one output have one default state file too: one message says it.
    if (job.statePath !== null && !sameOutput) {
      const state = realOrSelf(job.statePath)
      const other = states.get(state)
      if (other) {
        problems.push(
          `${job.where}.state: ${job.statePath} is also the state file of ${describe(other)}: give one of them its own "state" path (default state files are named after the output's file name)`,
        )
      } else states.set(state, job)
    }
    for (const reader of jobs) {
      const how = outputReadBy(job.output, reader.inputs)
      if (how === null) continue
      problems.push(
        reader === job
          ? `${job.where}.output: ${job.output} is also an input of the same job (${how}): logmerge would read its own output`
          : `${job.where}.output: ${job.output} is an input of ${describe(reader)} (${how}): a job may not read another job's output (it is cut back to its checkpoint on restart); read the same inputs in both jobs instead`,
      )
    }
  }
  return problems
}

const describe = (job: JobFiles): string => `${job.where} ("${job.name}")`

/** The output's real path when its directory exists (it may not exist itself yet). */
function realOrSelf(path: string): string {
  try {
    return join(realpathSync(dirname(path)), basename(path))
  } catch {
    return path
  }
}

/** How `input` would read the output (null: it cannot), for the message. */
function reachedBy(
  input: InputSpec,
  output: string,
  target: string,
  dirId: Identity | null,
  fileId: Identity | null,
): string | null {
  const via = target === output ? '' : ` (the output leads to ${target})`
  if (input.matches(output) || input.matches(target)) {
    return input.kind === 'file'
      ? `input ${input.given} is the same path${via}`
      : `matched by input ${input.given}${via}`
  }
  if (input.kind === 'file') {
    // One stat an input (a start-up with 10,000 paths paid 0.35 CPU-s for a realpath of each):
    // the path walk only tells how an input that is the output leads there, or finds an input
    // that does not exist yet leading to where the output will be (a dangling symlink). An
    // input that exists, when the output does not, cannot be the output's path.
    const inputId = identityOf(input.root)
    if (inputId !== null && !(fileId && sameFile(inputId, fileId))) return null
    if (finalPath(input.root) === target) {
      return `input ${input.given} leads to the same path through a symlink`
    }
    return inputId ? `input ${input.given} is the same file through a link` : null
  }
  // A directory or a glob may reach the output's directory through a symlinked directory:
  // look for it among the directories the input would watch, as the input names them.
  if (!dirId) return null
  const dir = findDirectory(input.root, input.depth, dirId)
  if (dir === null) return null
  const name = join(dir, basename(target))
  return input.matches(name) ? `matched by input ${input.given} through ${name}${via}` : null
}

/**
 * The directory under `root` (down to `depth` levels; undefined: any) that is the directory
 * `wanted`, following symlinks as the watcher does; null if none (or too many to look at).
 */
function findDirectory(root: string, depth: number | undefined, wanted: Identity): string | null {
  const queue: { path: string; level: number }[] = [{ path: root, level: 0 }]
  const seen = new Set<string>()
  while (queue.length > 0 && seen.size < MAX_DIRS) {
    const { path, level } = queue.shift() as { path: string; level: number }
    const id = identityOf(path)
    if (!id || seen.has(`${id.dev}:${id.ino}`)) continue
    seen.add(`${id.dev}:${id.ino}`)
    if (sameFile(id, wanted)) return path
    if (depth !== undefined && level >= depth) continue
    for (const entry of listDirectory(path)) {
      if (entry.isDirectory() || entry.isSymbolicLink()) {
        queue.push({ path: join(path, entry.name), level: level + 1 })
      }
    }
  }
  return null
}

function listDirectory(path: string) {
  try {
    return readdirSync(path, { withFileTypes: true })
  } catch {
    return [] // not a directory (a symlink to a file) or unreadable: nothing to watch there
  }
}

/**
 * Where `path` leads: its symlinks followed, even to a target that does not exist yet (the
 * output is created through a dangling symlink), with the directory's own links resolved.
 */
function finalPath(path: string): string {
  let p = resolve(path)
  for (let hops = 0; hops < MAX_HOPS; hops++) {
    let link: string
    try {
      link = readlinkSync(p)
    } catch {
      break // not a symlink, or nothing there
    }
    p = resolve(dirname(p), link)
  }
  try {
    return join(realpathSync(dirname(p)), basename(p))
  } catch {
    return p
  }
}

function identityOf(path: string): Identity | null {
  try {
    const { dev, ino } = statSync(path)
    return { dev, ino }
  } catch {
    return null
  }
}

const sameFile = (a: Identity, b: Identity): boolean => a.dev === b.dev && a.ino === b.ino

// ---------------------------------------------------------------------------------------------
// Writable where it is
// ---------------------------------------------------------------------------------------------

/**
 * The output must be a writable file or creatable in an existing writable directory; the state
 * file is replaced atomically (a temporary file beside it, then a rename), so its directory
 * must be writable too. Checked as the user logmerge runs as (access(2)).
 */
export function checkOutputWritable(output: string, statePath: string | null): void {
  if (output !== '-' && !isFleetUrl(output)) checkWritable(output, 'output', false)
  if (statePath) checkWritable(statePath, 'state file', true)
}

/** --metrics-file: replaced atomically like the state file, so its directory must be writable. */
export function checkMetricsFileWritable(path: string): void {
  checkWritable(path, 'metrics file', true)
}

const FIX = {
  output: 'choose another --output',
  'state file': 'give --state a writable path (or --no-state: no exactly-once restarts)',
  'metrics file': 'give --metrics-file a path in a writable directory',
} as const

function checkWritable(path: string, role: keyof typeof FIX, needDir: boolean): void {
  const fix = FIX[role]
  const fail: (problem: string, hint: string) => never = (problem, hint) => {
    throw errors.notWritable(role, path, problem, hint)
  }
  const st = statOrNull(path)
  if (st?.isDirectory()) fail('it is a directory', `give a file path, or ${fix}`)
  if (st) {
    const denied = accessError(path, constants.W_OK)
    if (denied) fail(`it is not writable: ${denied}`, `fix its permissions for ${who()}, or ${fix}`)
    if (!needDir) return
  }
  const dir = dirname(finalPath(path))
  const dst = statOrNull(dir)
  if (!dst)
    fail(`its directory ${dir} does not exist`, `create it with \`mkdir -p ${dir}\`, or ${fix}`)
  if (!dst.isDirectory()) fail(`${dir} is not a directory`, fix)
  const denied = accessError(dir, constants.W_OK | constants.X_OK)
  if (denied) {
    fail(
      `its directory ${dir} is not writable: ${denied}`,
      `make ${dir} writable for ${who()}, or ${fix}`,
    )
  }
}

/** stat, or null when nothing is there (ENOENT, or a path component that is not a directory). */
function statOrNull(path: string) {
  try {
    return statSync(path)
  } catch {
    return null
  }
}

function accessError(path: string, mode: number): string | null {
  try {
    accessSync(path, mode)
    return null
  } catch (err) {
    return describeErrno(err as NodeJS.ErrnoException)
  }
}

const who = (): string =>
  process.getuid ? `the user logmerge runs as (uid ${process.getuid()})` : 'this user'
