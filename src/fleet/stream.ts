/**
 * The JetStream stream of a fleet: found, or created by the first logmerge that needs it.
 *
 * Limits. A centre that stalls must not fill the servers: the stream refuses new messages when
 * full (discard "new"), and the hosts then wait, their files holding the lines. The limit is
 * set as a message count with a message size cap, not as bytes: nats-server 2.9 (Debian 12's)
 * underestimates a message's size when checking a byte limit with discard "new", accepts it,
 * and then makes room by deleting the OLDEST message (nats-server issues 4771 and 4775), which
 * would lose lines the centre has not read. max_msgs is checked exactly. So the stream holds at
 * most `maxBytes / MESSAGE_BYTES` messages of at most MESSAGE_BYTES each.
 */
import {
  DiscardPolicy,
  type JetStreamManager,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type StreamInfo,
} from '@nats-io/jetstream'
import type { NatsConnection } from '@nats-io/nats-core'
import { LogmergeError } from '../errors.js'
import type { Logger } from '../log.js'
import { natsError, startupRetry } from './connect.js'
import type { FleetConfig } from './options.js'

/** The largest message a host sends (whole lines; a longer line is split, see frame.ts). */
export const MESSAGE_BYTES = 256 * 1024

export const subjectsOf = (stream: string): string => `${stream}.>`

/** The stream's info, made first if need be; at start-up a cluster still electing is waited for. */
export async function ensureStream(
  nc: NatsConnection,
  fleet: FleetConfig,
  log: Logger,
): Promise<StreamInfo> {
  return startupRetry(fleet, log, `stream ${fleet.url.stream}`, async () =>
    findOrCreate(await jetstreamManager(nc, { timeout: 5000 }), fleet, log),
  )
}

async function findOrCreate(
  jsm: JetStreamManager,
  fleet: FleetConfig,
  log: Logger,
): Promise<StreamInfo> {
  const { stream } = fleet.url
  try {
    return await jsm.streams.info(stream)
  } catch (err) {
    if ((err as Error).name !== 'StreamNotFoundError') throw natsError(err, fleet)
  }
  const maxMsgs = Math.max(4, Math.floor(fleet.maxBytes / MESSAGE_BYTES))
  try {
    const info = await jsm.streams.add({
      name: stream,
      subjects: [subjectsOf(stream)],
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      discard: DiscardPolicy.New,
      num_replicas: fleet.replicas,
      max_msgs: maxMsgs,
      max_msg_size: MESSAGE_BYTES + 4096,
      duplicate_window: 120 * 1e9,
    })
    log.info(
      `created stream ${stream} on ${fleet.url.display} (replicas ${fleet.replicas}, at most ${maxMsgs} messages of ${MESSAGE_BYTES / 1024} KiB)`,
    )
    return info
  } catch (err) {
    // Another logmerge created it meanwhile.
    if (/already in use/i.test((err as Error).message)) return jsm.streams.info(stream)
    const e = natsError(err, fleet)
    if (e instanceof LogmergeError && e.code === 'ENATS_UNREACHABLE' && (err as Error).message) {
      throw new LogmergeError(
        'ENATS_UNREACHABLE',
        `cannot create stream ${stream} on ${fleet.url.display}: ${(err as Error).message}`,
        {
          cause: err,
          hint: '--nats-replicas may not exceed the servers of the cluster; or create the stream yourself (docs/fleet.md)',
        },
      )
    }
    throw e
  }
}
