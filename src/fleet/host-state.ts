/**
 * What a fleet host keeps in its state file besides the files' offsets (the writer's part of a
 * checkpoint): the stream, its run, its last acknowledgement, and the generation table that
 * lets a restart publish again under the same generation ids (generations.ts). Kept apart so
 * `logmerge status` reads it without loading the NATS client.
 */
import type { Config } from '../config.js'
import type { Logger } from '../log.js'
import { loadState } from '../state/checkpoint.js'
import type { SavedGeneration } from './generations.js'
import type { FleetConfig } from './options.js'

export const WRITER_KIND = 'nats-host'

export interface HostWriterState {
  readonly kind: typeof WRITER_KIND
  readonly url: string
  readonly stream: string
  readonly hostId: string
  readonly run: string
  /** The stream sequence of the last message acknowledged, and when. */
  readonly ackedSeq: number
  readonly ackedAt: string | null
  readonly generations: readonly SavedGeneration[]
}

/** The generations and acknowledgement of the state file, if it is this host's on this stream. */
export function savedHostState(
  config: Config,
  fleet: FleetConfig,
  log: Logger,
): HostWriterState | null {
  if (!config.statePath) return null
  const loaded = loadState(config.statePath)
  if (loaded.kind !== 'ok') return null
  const w = loaded.state.writer as Partial<HostWriterState> | undefined
  if (w?.kind !== WRITER_KIND || !Array.isArray(w.generations)) return null
  if (w.stream !== fleet.url.stream || w.hostId !== fleet.hostId) {
    log.warn(
      `state file ${config.statePath} was kept for host ${w.hostId} on stream ${w.stream}, not ${fleet.hostId} on ${fleet.url.stream}: its generations are not used (lines after its last checkpoint may reach the centre twice)`,
    )
    return null
  }
  return w as HostWriterState
}
