/**
 * Start-up from a state file, for every engine: load it (a bad one is moved aside), decide what
 * to do with the output (truncate to the recorded size, or go on at-least-once with a warning),
 * and hand back the sources to resume.
 */
import { statSync, truncateSync } from 'node:fs'
import type { Logger } from '../log.js'
import type { SourceMark, SourceStats } from '../sink/sink.js'
import { identityKey } from '../tail/cursor.js'
import { identityOf, type SourceState } from '../tail/source-state.js'
import type { RememberedSource } from '../tail/tracked.js'
import { loadState, planOutput, quarantine, removeLeftTemps } from './checkpoint.js'

/** What a run resumes from: nothing without a state file (`statePath` null). */
export async function recover(
  statePath: string | null,
  output: string,
  log: Logger,
): Promise<Recovered> {
  const none: Recovered = { sources: [], previousStart: null }
  if (statePath === null) return none
  const left = removeLeftTemps(statePath)
  if (left.length > 0)
    log.info(
      `state file ${statePath}: removed ${left.length} temporary file(s) of saves a kill interrupted`,
    )
  const loaded = loadState(statePath)
  if (loaded.kind === 'none') return none
  if (loaded.kind === 'bad') {
    const aside = await quarantine(statePath)
    log.warn(
      `state file ${statePath} is unusable (${loaded.reason}); moved it to ${aside} and starting afresh`,
    )
    return none
  }
  const { state } = loaded
  if (state.output && state.output.path !== output) {
    const aside = await quarantine(statePath)
    log.warn(
      `state file ${statePath} belongs to output ${state.output.path}, not ${output}; moved it to ${aside} and starting afresh`,
    )
    return none
  }
  const now = output === '-' ? null : (statSync(output, { throwIfNoEntry: false }) ?? null)
  const plan = planOutput(state.output, now)
  if (plan.kind === 'truncate') {
    if (now && now.size > plan.size) {
      log.info(
        `output ${output}: dropping ${now.size - plan.size} bytes written after the last checkpoint; they are read again`,
      )
      truncateSync(output, plan.size)
    }
  } else if (plan.kind === 'at-least-once') {
    log.warn(`${plan.why}: lines written after the last checkpoint may appear twice`)
  }
  const started = Date.parse(state.startedAt)
  return { sources: state.sources, previousStart: Number.isNaN(started) ? null : started }
}

export interface Recovered {
  /** Where the sources stood at the last checkpoint. */
  readonly sources: readonly SourceState[]
  /** When the run that wrote the state started (ms since epoch), if known. */
  readonly previousStart: number | null
}

/** The checkpoint's files, as a follower takes them back. */
export const toRemembered = (sources: readonly SourceState[]): RememberedSource[] =>
  sources.map((s) => ({
    identity: identityOf(s),
    head: Buffer.from(s.head, 'base64'),
    offset: s.offset,
    path: s.path,
    ...(s.stats && {
      counts: {
        lines: s.stats.lines,
        ...(s.stats.bytes !== undefined && { bytes: s.stats.bytes }),
        linesSplit: s.stats.linesSplit,
        truncations: s.stats.truncations,
      },
    }),
  }))

/**
 * Where a source starts, for the writer's note: its offset with the fingerprint that goes with
 * it. Without the fingerprint a checkpoint took the reader's current one, which after a
 * truncation is the new content's, beside the old offset: a restart then resumed the new
 * content mid-way (lines lost, one torn; found by the selftest on top-down with the output
 * paused by EFBIG, so no block moved the offset for a while).
 */
export const resumeMark = (s: SourceState): SourceMark => ({
  key: identityKey(s),
  offset: s.offset,
  head: Buffer.from(s.head, 'base64'),
  // Its totals go on from the state's (the reader's cursor resumes them too): without them a
  // checkpoint before the file's first write recorded none (the event-loop writer) or zeros
  // (the locked writer), and its line count started again from 0. `late` is per run.
  ...(s.stats && { stats: withoutLate(s.stats) }),
})

const withoutLate = ({ late: _, ...stats }: SourceStats): SourceStats => stats
