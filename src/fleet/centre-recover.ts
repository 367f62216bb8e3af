/**
 * Where a centre starts: its state file if usable (a bad one, or another output's or another
 * stream's, is moved aside), the output cut back to the recorded size (what came after is
 * written again), and the first stream message to read. Messages the centre had not merged
 * that the stream no longer holds are exit 9 (ESTREAM_LOST), never silence; --nats-skip-lost
 * goes on past them after naming them.
 */
import { statSync, truncateSync } from 'node:fs'
import type { StreamInfo } from '@nats-io/jetstream'
import type { Config } from '../config.js'
import { LogmergeError } from '../errors.js'
import type { Logger } from '../log.js'
import { planOutput, quarantine } from '../state/checkpoint.js'
import { type CentreState, loadCentreState } from './centre-state.js'
import type { FleetConfig } from './options.js'

export function streamLost(message: string): LogmergeError {
  return new LogmergeError('ESTREAM_LOST', message, {
    hint: 'give the stream room (--nats-max-bytes when it is created, or its limits), run one centre per stream; --nats-skip-lost goes on without those lines',
  })
}

/**
 * How far apart two creation times the servers report for one stream may be (see sameStream):
 * far more than the concurrent creates take, far less than an operator's delete and add again.
 */
export const CREATED_SLACK_MS = 60_000

/**
 * Whether a stream the servers report as created at `now` is the one created at `recorded`
 * (a stream made again is another stream: its sequence numbers are other messages). Not by
 * equality: when several logmerges create the stream at once (hosts and centre starting
 * together), each add is accepted as an assignment of its own with its own time, and
 * nats-server 2.9.10 reports one or the other depending on which server leads the stream,
 * e.g. after a leader's restart (1.5 ms and 19 ms apart in two runs; the fleet soak's centre
 * took one such change for a stream made again and stopped with exit 9, seed 2).
 */
export function sameStream(recorded: string, now: string): boolean {
  if (recorded === now) return true
  const a = Date.parse(recorded)
  const b = Date.parse(now)
  return Number.isFinite(a) && Number.isFinite(b) && Math.abs(a - b) < CREATED_SLACK_MS
}

/** The saved state to go on from (null: none), and the first stream sequence to read. */
export async function startPoint(
  config: Config,
  fleet: FleetConfig,
  info: StreamInfo,
  log: Logger,
): Promise<{ saved: CentreState | null; from: number }> {
  const saved = config.statePath ? await recoverCentre(config, fleet, info, log) : null
  // An empty stream that never held a message says first_seq 0; sequences start at 1.
  const first = Math.max(1, info.state.first_seq)
  if (!saved) return { saved, from: first }
  const { stream } = fleet.url
  const { resume, read } = saved.stream
  if (resume > info.state.last_seq + 1) {
    throw streamLost(
      `stream ${stream} ends at message ${info.state.last_seq}, before message ${resume - 1} the centre had read (the servers lost messages they had acknowledged)`,
    )
  }
  if (resume >= first) return { saved, from: resume }
  // Messages [resume, first) are gone.
  const lost = `messages ${resume} to ${first - 1} of stream ${stream} were deleted before the centre merged them (stream limits, a purge, or another centre on the same stream; the state was saved at ${saved.savedAt} having read up to ${read}, the stream holds ${info.state.first_seq} to ${info.state.last_seq})`
  if (!fleet.skipLost) throw streamLost(lost)
  log.error(
    `${lost}; going on from ${first} (--nats-skip-lost): their lines are not in ${config.output}`,
  )
  return { saved, from: first }
}

async function recoverCentre(
  config: Config,
  fleet: FleetConfig,
  info: StreamInfo,
  log: Logger,
): Promise<CentreState | null> {
  const path = config.statePath as string
  const loaded = loadCentreState(path)
  if (loaded.kind === 'none') return null
  const aside = async (why: string) => {
    const to = await quarantine(path)
    log.warn(`state file ${path} ${why}; moved it to ${to} and starting afresh`)
    return null
  }
  if (loaded.kind === 'bad') return aside(`is unusable (${loaded.reason})`)
  const state = loaded.state
  if (state.output && state.output.path !== config.output) {
    return aside(`belongs to output ${state.output.path}, not ${config.output}`)
  }
  if (state.stream.name !== fleet.url.stream) {
    return aside(`was kept for stream ${state.stream.name}, not ${fleet.url.stream}`)
  }
  if (!sameStream(state.stream.created, info.created)) {
    const lost = `stream ${fleet.url.stream} was made again since the last checkpoint (created ${info.created}, the state says ${state.stream.created}): what the old one held from message ${state.stream.resume} on was not merged`
    if (!fleet.skipLost) throw streamLost(lost)
    log.error(`${lost}; going on (--nats-skip-lost)`)
    return {
      ...state,
      stream: { ...state.stream, created: info.created, resume: info.state.first_seq },
    }
  }
  const now = statSync(config.output, { throwIfNoEntry: false }) ?? null
  const plan = planOutput(state.output, now)
  if (plan.kind === 'truncate' && now && now.size > plan.size) {
    log.info(
      `output ${config.output}: dropping ${now.size - plan.size} bytes written after the last checkpoint; they are read again`,
    )
    truncateSync(config.output, plan.size)
  } else if (plan.kind === 'at-least-once') {
    log.warn(`${plan.why}: lines written after the last checkpoint may appear twice`)
  }
  return state
}
