/**
 * `logmerge status` for the fleet. A host's state file is an ordinary one (its offsets are what
 * the stream acknowledged), plus the stream it publishes to (hostLines). The centre's has its
 * own format: per host the last message applied, and, asked from the servers, how far behind
 * the stream the centre is: messages of that host not yet applied and their age.
 */
import { AckPolicy, DeliverPolicy, jetstreamManager } from '@nats-io/jetstream'
import { nanos } from '@nats-io/nats-core'
import { createLogger } from '../log.js'
import { loadCentreState } from './centre-state.js'
import { connectFleet } from './connect.js'
import type { FleetConfig } from './options.js'
import { parseFleetUrl } from './url.js'

export interface CentreHostStatus {
  readonly host: string
  readonly lastAppliedSeq: number
  readonly lastAppliedTime: string | null
  readonly linesWritten: number
  /** Messages of the host in the stream after the last one applied (null: servers not asked). */
  readonly lagMessages: number | null
  /** Seconds between the last message applied and the host's newest one in the stream. */
  readonly lagSeconds: number | null
}

export interface CentreStatus {
  readonly statePath: string
  readonly lastCheckpoint: string
  readonly output: { readonly path: string; readonly recordedSize: number } | null
  readonly stream: { readonly url: string; readonly resume: number; readonly lastRead: number }
  /** The servers could not be asked: why (the table then shows the state only). */
  readonly unreachable: string | null
  readonly generations: number
  readonly hosts: readonly CentreHostStatus[]
}

/**
 * The centre's status from its state file, with the lag asked from the stream (through `fleet`
 * when the job's config is known: its credentials; else the URL the state recorded).
 */
export async function centreStatus(path: string, fleet: FleetConfig | null): Promise<CentreStatus> {
  const loaded = loadCentreState(path)
  if (loaded.kind !== 'ok') {
    throw new Error(loaded.kind === 'none' ? `no state file at ${path}` : loaded.reason)
  }
  const s = loaded.state
  const hosts = new Map<string, CentreHostStatus>()
  for (const [host, h] of Object.entries(s.hosts)) {
    hosts.set(host, {
      host,
      lastAppliedSeq: h.lastSeq,
      lastAppliedTime: h.lastTime,
      linesWritten: h.lines,
      lagMessages: null,
      lagSeconds: null,
    })
  }
  let unreachable: string | null = null
  try {
    await askStream(s.stream.url, s.stream.name, fleet, hosts)
  } catch (err) {
    unreachable = (err as Error).message
  }
  return {
    statePath: path,
    lastCheckpoint: s.savedAt,
    output: s.output && { path: s.output.path, recordedSize: s.output.size },
    stream: { url: s.stream.url, resume: s.stream.resume, lastRead: s.stream.read },
    unreachable,
    generations: Object.keys(s.generations).length,
    hosts: [...hosts.values()],
  }
}

async function askStream(
  url: string,
  stream: string,
  fleet: FleetConfig | null,
  hosts: Map<string, CentreHostStatus>,
): Promise<void> {
  const config: FleetConfig = fleet ?? {
    role: 'centre',
    url: parseFleetUrl(url, 'the state'),
    hostId: '',
    replicas: 1,
    maxBytes: 0,
    skipLost: false,
  }
  const nc = await connectFleet(config, createLogger('error'))
  try {
    const jsm = await jetstreamManager(nc, { timeout: 5000 })
    for (const [host, h] of hosts) {
      const subject = `${stream}.${host.replace(/[^A-Za-z0-9_-]/g, '_')}`
      const last = await jsm.streams.getMessage(stream, { last_by_subj: subject }).catch(() => null)
      if (!last || last.seq <= h.lastAppliedSeq) {
        hosts.set(host, { ...h, lagMessages: 0, lagSeconds: 0 })
        continue
      }
      // An ephemeral consumer counts what is pending for the host after the last applied.
      const ci = await jsm.consumers.add(stream, {
        filter_subject: subject,
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: h.lastAppliedSeq + 1,
        ack_policy: AckPolicy.None,
        inactive_threshold: nanos(5000),
        mem_storage: true,
      })
      await jsm.consumers.delete(stream, ci.name).catch(() => {})
      const applied = h.lastAppliedTime ? Date.parse(h.lastAppliedTime) : last.time.getTime()
      hosts.set(host, {
        ...h,
        lagMessages: ci.num_pending,
        lagSeconds: Math.max(0, (last.time.getTime() - applied) / 1000),
      })
    }
  } finally {
    await nc.close()
  }
}

export function formatCentreStatus(s: CentreStatus): string {
  const lines = [`state       ${s.statePath} (a fleet centre)`, `checkpoint  ${s.lastCheckpoint}`]
  if (s.output)
    lines.push(`output      ${s.output.path}: ${s.output.recordedSize} bytes at the checkpoint`)
  lines.push(
    `stream      ${s.stream.url}: read up to message ${s.stream.lastRead}, resumes at ${s.stream.resume}; ${s.generations} file generations known`,
  )
  if (s.unreachable) lines.push(`            lag unknown: ${s.unreachable}`)
  lines.push('', 'HOST\tLAST APPLIED\tAPPLIED AT\tLINES\tLAG MESSAGES\tLAG S')
  for (const h of s.hosts) {
    lines.push(
      [
        h.host,
        h.lastAppliedSeq,
        h.lastAppliedTime ?? '-',
        h.linesWritten,
        h.lagMessages ?? '-',
        h.lagSeconds === null ? '-' : h.lagSeconds.toFixed(1),
      ].join('\t'),
    )
  }
  return `${lines.join('\n')}\n`
}
