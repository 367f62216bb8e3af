/**
 * `logmerge status`: where a (running or stopped) logmerge stands, from its state file and the
 * files on disk. Read-only: it never touches the state or the output.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { errors } from './errors.js'
import { hostLines } from './fleet/host-status.js'
import { loadState, type State } from './state/checkpoint.js'
import { statQuietly } from './tail/input-fs.js'
import type { SourceState } from './tail/source-state.js'

export interface SourceStatus {
  readonly path: string
  readonly identity: string
  /** Bytes of it in the output (as of the last checkpoint). */
  readonly offset: number
  /** Its size now, if it is still at its name or found by identity there; null if gone. */
  readonly size: number | null
  /** Bytes not yet in the output (size - offset), when known. */
  readonly lagBytes: number | null
  /** Seconds since its last change, when it has unread bytes. */
  readonly lagSeconds: number | null
  /** following: at its name; rotated: its name now leads elsewhere; gone: not found. */
  readonly state: 'following' | 'rotated' | 'gone'
  readonly lastChange: string | null
  /** From the last checkpoint (absent in state files from before they were kept). */
  /** Lines of it in the output, over every run (a split line counts once per piece). */
  readonly linesWritten: number | null
  readonly linesSplit: number | null
  readonly truncations: number | null
  readonly partialBytesHeld: number | null
  readonly lastActivity: string | null
  /** --order time: its records written after a later one (null: arrival order, or not known). */
  readonly late: number | null
  /**
   * Whether the running logmerge holds it open now (a rotated or deleted file is held until it
   * is read to its end and quiet; its disk space is freed only then); null when that cannot be
   * seen (not running, or no /proc access).
   */
  readonly held: boolean | null
}

export interface Status {
  readonly statePath: string
  readonly lastCheckpoint: string
  readonly checkpointAgeSeconds: number
  readonly runStarted: string
  readonly output: {
    readonly path: string
    readonly recordedSize: number
    readonly size: number | null
    /** same: the file the state describes; replaced: another file at the path; gone. */
    readonly state: 'same' | 'replaced' | 'gone'
  } | null
  /** The logmerge that saved the state, looked at now (null: the state does not say). */
  readonly process: {
    readonly pid: number
    /** Running, and its open files could be looked at. */
    readonly running: boolean
    /** How many of the sources it holds open now, when running. */
    readonly held: number | null
  } | null
  readonly sources: readonly SourceStatus[]
  /** Lines about the writer: a fleet host's stream (empty for an output file). */
  readonly writer: readonly string[]
}

export function readStatus(statePath: string, now = Date.now()): Status {
  const loaded = loadState(statePath)
  if (loaded.kind === 'none') {
    throw errors.usage(
      `no state file at ${statePath}`,
      'give --state PATH, or --output for the default (logmerge keeps state only when following into a file)',
    )
  }
  if (loaded.kind === 'bad')
    throw errors.usage(`state file ${statePath} is unusable: ${loaded.reason}`)
  return describe(statePath, loaded.state, now)
}

function describe(statePath: string, state: State, now: number): Status {
  const saved = Date.parse(state.savedAt)
  let output: Status['output'] = null
  if (state.output) {
    const st = statSync(state.output.path, { throwIfNoEntry: false })
    const same = st !== undefined && st.dev === state.output.dev && st.ino === state.output.ino
    output = {
      path: state.output.path,
      recordedSize: state.output.size,
      size: st?.size ?? null,
      state: st === undefined ? 'gone' : same ? 'same' : 'replaced',
    }
  }
  const held = state.pid === undefined ? null : heldBy(state.pid)
  const sources = state.sources.map((s) => source(s, now, held))
  return {
    statePath,
    lastCheckpoint: state.savedAt,
    checkpointAgeSeconds: Math.max(0, (now - saved) / 1000),
    runStarted: state.startedAt,
    output,
    process:
      state.pid === undefined
        ? null
        : {
            pid: state.pid,
            running: held !== null,
            held: held && sources.filter((s) => s.held).length,
          },
    sources,
    writer: hostLines(state.writer),
  }
}

/**
 * The files (dev:ino) that process `pid` holds open, from /proc/<pid>/fd; null when it is not a
 * running logmerge (gone, or its pid reused by another program) or its fds cannot be read
 * (another user's process, or no /proc).
 */
function heldBy(pid: number): Set<string> | null {
  const proc = `/proc/${pid}`
  let fds: string[]
  try {
    if (!readFileSync(`${proc}/cmdline`, 'latin1').includes('logmerge')) return null
    fds = readdirSync(`${proc}/fd`)
  } catch {
    return null
  }
  const held = new Set<string>()
  for (const fd of fds) {
    const st = statQuietly(`${proc}/fd/${fd}`) // the open file itself, even when deleted
    if (st?.isFile()) held.add(`${st.dev}:${st.ino}`)
  }
  return held
}

function source(s: SourceState, now: number, held: ReadonlySet<string> | null): SourceStatus {
  const st = statSync(s.path, { throwIfNoEntry: false })
  const here = st !== undefined && st.dev === s.dev && st.ino === s.ino
  const size = here ? st.size : null
  const lag = size === null ? null : Math.max(0, size - s.offset)
  return {
    path: s.path,
    identity: `${s.dev}:${s.ino}`,
    offset: s.offset,
    size,
    lagBytes: lag,
    lagSeconds: lag && st ? Math.max(0, (now - st.mtimeMs) / 1000) : lag === 0 ? 0 : null,
    state: here ? 'following' : st ? 'rotated' : 'gone',
    lastChange: here ? st.mtime.toISOString() : null,
    linesWritten: s.stats?.lines ?? null,
    linesSplit: s.stats?.linesSplit ?? null,
    truncations: s.stats?.truncations ?? null,
    partialBytesHeld: s.stats?.pendingBytes ?? null,
    lastActivity: s.stats ? new Date(s.stats.lastActivity).toISOString() : null,
    late: s.stats?.late ?? null,
    held: held === null ? null : held.has(`${s.dev}:${s.ino}`),
  }
}

/** A table for people. */
export function formatStatus(s: Status): string {
  const lines = [
    `state       ${s.statePath}`,
    `checkpoint  ${s.lastCheckpoint} (${s.checkpointAgeSeconds.toFixed(1)} s ago); run started ${s.runStarted}`,
  ]
  if (s.output) {
    const o = s.output
    const size = o.size === null ? 'gone' : `${o.size} bytes now`
    lines.push(
      `output      ${o.path}: ${o.recordedSize} bytes at the checkpoint, ${size} (${o.state})`,
    )
  }
  if (s.process) {
    const p = s.process
    const now = p.running
      ? `running, holds ${p.held} of ${s.sources.length} sources open`
      : 'not running (or its open files cannot be seen)'
    lines.push(`process     ${p.pid}: ${now}`)
  }
  lines.push(...s.writer)
  lines.push(
    '',
    'SOURCE\tSTATE\tOFFSET\tSIZE\tLAG BYTES\tLAG S\tLINES\tSPLIT\tTRUNCATED\tPARTIAL\tLAST ACTIVE\tIDENTITY\tLATE\tHELD',
  )
  for (const x of s.sources) {
    const lagS = x.lagSeconds === null ? '-' : x.lagSeconds.toFixed(1)
    lines.push(
      [
        x.path,
        x.state,
        x.offset,
        x.size ?? '-',
        x.lagBytes ?? '-',
        lagS,
        x.linesWritten ?? '-',
        x.linesSplit ?? '-',
        x.truncations ?? '-',
        x.partialBytesHeld ?? '-',
        x.lastActivity ?? '-',
        x.identity,
        x.late ?? '-',
        x.held === null ? '-' : x.held ? 'yes' : 'no',
      ].join('\t'),
    )
  }
  return `${lines.join('\n')}\n`
}
