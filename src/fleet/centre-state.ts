/**
 * The centre's state file: the output's size and identity, where to resume in the stream, and
 * for every (host, generation) the file offset up to which its lines are in the output, all as
 * of one instant. A different format from the hosts' (which record files), with its own name,
 * so neither is ever taken for the other.
 *
 * Protocol (docs/fleet.md): the writer keeps the output size and each generation's offset
 * together (LoopWriter); a checkpoint takes them, computes the first stream message not yet
 * entirely in the output, fsyncs the output, then atomically replaces this file. On start the
 * output is cut back to the recorded size and the stream is read again from the recorded
 * message: what is already written is skipped or trimmed by the offsets.
 */
import { readFileSync } from 'node:fs'
import type { OutputState } from '../state/checkpoint.js'
import type { GenState, HostState } from './applier.js'

export const CENTRE_FORMAT = 'logmerge-fleet-centre'
export const CENTRE_VERSION = 1

export interface SavedHost {
  readonly run: string
  readonly next: number
  readonly lastSeq: number
  readonly lastTime: string | null
  readonly lines: number
  /** The first run of the host taken from its message 0 (HostState.from). */
  readonly from?: string
}

export interface SavedGen {
  readonly applied: number
  readonly path: string
  readonly label: string
  readonly ended: boolean
  readonly lastSeq: number
  /** When its last message was published (ISO), for forgetting ended ones. */
  readonly lastTime?: string
}

export interface CentreState {
  readonly format: typeof CENTRE_FORMAT
  readonly version: typeof CENTRE_VERSION
  readonly savedAt: string
  readonly startedAt: string
  readonly pid: number
  readonly output: OutputState | null
  readonly stream: {
    /** The URL without credentials. */
    readonly url: string
    readonly name: string
    /** When the stream was created (a stream made again is another stream). */
    readonly created: string
    /** The first stream sequence not yet entirely in the output: read again from here. */
    readonly resume: number
    /** The last sequence read (for `status`). */
    readonly read: number
    /**
     * Saved while a centre that started without a state was still reading what the stream
     * held then: it goes on adopting hosts and generations up to this sequence (see Applier).
     */
    readonly adoptUntil?: number
  }
  readonly hosts: Readonly<Record<string, SavedHost>>
  /** Keyed `<host>/<generation id>`. */
  readonly generations: Readonly<Record<string, SavedGen>>
}

export type LoadedCentre =
  | { readonly kind: 'none' }
  | { readonly kind: 'ok'; readonly state: CentreState }
  | { readonly kind: 'bad'; readonly reason: string }

/** True when the file at `path` is a centre's state (for `logmerge status`). */
export function isCentreState(path: string): boolean {
  try {
    return readFileSync(path, 'utf8').includes(`"format": "${CENTRE_FORMAT}"`)
  } catch {
    return false
  }
}

export function loadCentreState(path: string): LoadedCentre {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'none' }
    return { kind: 'bad', reason: `cannot read it: ${(err as Error).message}` }
  }
  try {
    return { kind: 'ok', state: decodeCentreState(text) }
  } catch (err) {
    return { kind: 'bad', reason: (err as Error).message }
  }
}

const isCount = (v: unknown): v is number =>
  typeof v === 'number' && Number.isSafeInteger(v) && v >= 0

export function decodeCentreState(text: string): CentreState {
  let o: Record<string, unknown>
  try {
    o = JSON.parse(text) as Record<string, unknown>
  } catch {
    throw new Error('not valid JSON (a torn or corrupted file)')
  }
  if (typeof o !== 'object' || o === null || o.format !== CENTRE_FORMAT) {
    throw new Error(`not a logmerge centre state file (no "format": "${CENTRE_FORMAT}")`)
  }
  if (o.version !== CENTRE_VERSION) {
    throw new Error(
      `centre state version ${String(o.version)} (this logmerge reads ${CENTRE_VERSION})`,
    )
  }
  const stream = o.stream as Record<string, unknown>
  if (
    typeof stream !== 'object' ||
    typeof stream.name !== 'string' ||
    typeof stream.created !== 'string' ||
    !isCount(stream.resume)
  ) {
    throw new Error('"stream" needs name, created and resume')
  }
  const hosts = o.hosts as Record<string, SavedHost>
  const gens = o.generations as Record<string, SavedGen>
  if (typeof hosts !== 'object' || hosts === null || typeof gens !== 'object' || gens === null) {
    throw new Error('"hosts" and "generations" must be objects')
  }
  for (const [name, h] of Object.entries(hosts)) {
    if (typeof h?.run !== 'string' || !isCount(h.next)) throw new Error(`host ${name}: bad entry`)
  }
  for (const [key, g] of Object.entries(gens)) {
    if (!isCount(g?.applied) || typeof g.path !== 'string') {
      throw new Error(`generation ${key}: bad entry`)
    }
  }
  return o as unknown as CentreState
}

/** The applier's tables back from a state. */
export function tablesOf(state: CentreState): {
  hosts: Map<string, HostState>
  gens: Map<string, GenState>
} {
  const hosts = new Map<string, HostState>()
  for (const [name, h] of Object.entries(state.hosts)) {
    hosts.set(name, {
      run: h.run,
      next: h.next,
      lastSeq: h.lastSeq ?? 0,
      lastTime: h.lastTime ? Date.parse(h.lastTime) : 0,
      lines: h.lines ?? 0,
      ...(typeof h.from === 'string' && { from: h.from }),
    })
  }
  const gens = new Map<string, GenState>()
  for (const [key, g] of Object.entries(state.generations)) {
    const slash = key.indexOf('/')
    gens.set(key, {
      host: key.slice(0, slash),
      id: key.slice(slash + 1),
      applied: g.applied,
      base: g.applied,
      path: g.path,
      label: g.label ?? g.path,
      ended: g.ended === true,
      lastSeq: g.lastSeq ?? 0,
      lastTime: g.lastTime ? Date.parse(g.lastTime) : 0,
    })
  }
  return { hosts, gens }
}

export function encodeCentreState(state: CentreState): string {
  return `${JSON.stringify(state, null, 1)}\n`
}
