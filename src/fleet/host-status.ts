/**
 * What `logmerge status` adds for a fleet host (kept apart from status.ts's NATS client, so an
 * ordinary status does not load it): the stream it publishes to and its last acknowledgement.
 */
import { type HostWriterState, WRITER_KIND } from './host-state.js'

/** The lines `status` adds for a host: where it publishes and what was acknowledged last. */
export function hostLines(writer: unknown): string[] {
  const w = writer as Partial<HostWriterState> | undefined
  if (w?.kind !== WRITER_KIND) return []
  const when = w.ackedAt ? ` at ${w.ackedAt}` : ''
  return [
    `stream      ${w.url} as host ${w.hostId}: last message acknowledged ${w.ackedSeq ?? 0}${when}; the offsets below are what the stream has acknowledged (LAG: not yet published)`,
  ]
}
