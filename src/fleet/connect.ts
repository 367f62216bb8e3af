/**
 * The connection to the NATS servers of a fleet URL, with the official client. At start-up a
 * server that cannot be reached or that refuses the credentials is a one-line error with its
 * own exit code (7, 8): systemd restarts the first, a person has to fix the second. Once
 * connected, the client reconnects by itself for as long as it takes; the host's readers wait
 * meanwhile (the files are the buffer), and each outage is said once and its end once.
 */
import { readFileSync } from 'node:fs'
import type { NatsConnection } from '@nats-io/nats-core'
import { connect, credsAuthenticator } from '@nats-io/transport-node'
import { describeErrno, LogmergeError } from '../errors.js'
import type { Logger } from '../log.js'
import type { FleetConfig } from './options.js'

/** How long one connection attempt at start-up may take. */
const CONNECT_TIMEOUT_MS = 5000
/**
 * How long start-up keeps trying before it says the servers cannot be reached (exit 7). No
 * server answering at all (refused, timed out) is said after CONNECT_RETRY_MS: a wrong address
 * or a stopped server is said soon. A server that answers but whose JetStream does not yet (a
 * cluster electing a leader after a node restarted) is waited for JETSTREAM_RETRY_MS. Once
 * running, logmerge reconnects for as long as it takes.
 */
export const CONNECT_RETRY_MS = 3_000
export const JETSTREAM_RETRY_MS = 60_000

export async function connectFleet(fleet: FleetConfig, log: Logger): Promise<NatsConnection> {
  return startupRetry(fleet, log, 'connecting', () => connectOnce(fleet, log), CONNECT_RETRY_MS)
}

/**
 * Runs `attempt` until it succeeds, the error is not a passing one (credentials), or
 * STARTUP_RETRY_MS have passed; the error then is the user's one-line error.
 */
export async function startupRetry<T>(
  fleet: FleetConfig,
  log: Logger,
  what: string,
  attempt: () => Promise<T>,
  budget = JETSTREAM_RETRY_MS,
): Promise<T> {
  const started = Date.now()
  let said = false
  for (let pause = 200; ; pause = Math.min(pause * 2, 2000)) {
    try {
      return await attempt()
    } catch (err) {
      const e = natsError(err, fleet)
      const passing = e instanceof LogmergeError && e.code === 'ENATS_UNREACHABLE'
      if (!passing || Date.now() + pause > started + budget) throw e
      // Said as a warning when the wait is long (a cluster electing); a start-up that fails
      // soon anyway says only its error.
      const say = budget > CONNECT_RETRY_MS ? log.warn : log.info
      if (!said) say.call(log, `${what}: ${e.message}; trying again for up to ${budget / 1000} s`)
      said = true
      await new Promise((resolve) => setTimeout(resolve, pause))
    }
  }
}

async function connectOnce(fleet: FleetConfig, log: Logger): Promise<NatsConnection> {
  const { url } = fleet
  const name = fleet.role === 'host' ? `logmerge host ${fleet.hostId}` : 'logmerge centre'
  let nc: NatsConnection
  try {
    nc = await connect({
      servers: [...url.servers],
      name,
      timeout: CONNECT_TIMEOUT_MS,
      // Every server of the list is tried before giving up at start-up.
      waitOnFirstConnect: false,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 1000,
      pingInterval: 10_000,
      ...(url.user !== undefined && { user: url.user, pass: url.pass ?? '' }),
      ...(url.token !== undefined && { token: url.token }),
      ...(fleet.creds !== undefined && { authenticator: credsAuthenticator(readCreds(fleet)) }),
      ...(fleet.tls && {
        tls: {
          ...(fleet.tls.ca !== undefined && { caFile: fleet.tls.ca }),
          ...(fleet.tls.cert !== undefined && { certFile: fleet.tls.cert }),
          ...(fleet.tls.key !== undefined && { keyFile: fleet.tls.key }),
        },
      }),
    })
  } catch (err) {
    throw natsError(err, fleet)
  }
  void watchStatus(nc, fleet, log)
  return nc
}

function readCreds(fleet: FleetConfig): Uint8Array {
  const path = fleet.creds as string
  try {
    return readFileSync(path)
  } catch (err) {
    throw new LogmergeError(
      'EUSAGE',
      `cannot read --nats-creds ${path}: ${describeErrno(err as NodeJS.ErrnoException)}`,
      { hint: 'give the path of a NATS credentials file (nsc generate creds)' },
    )
  }
}

/** The client's own errors (anything else is not NATS's doing, and is passed on as it is). */
const NATS_ERRORS = new Set([
  'AuthorizationError',
  'ClosedConnectionError',
  'ConnectionError',
  'DrainingConnectionError',
  'JetStreamApiError',
  'JetStreamError',
  'JetStreamNotEnabled',
  'JetStreamStatusError',
  'NoRespondersError',
  'PermissionViolationError',
  'ProtocolError',
  'RequestError',
  'StreamNotFoundError',
  'TimeoutError',
  'UserAuthenticationExpiredError',
])

/** The error of a failed connection or request, as the user should read it. */
export function natsError(err: unknown, fleet: FleetConfig): Error {
  if (err instanceof LogmergeError || !NATS_ERRORS.has((err as Error)?.name)) return err as Error
  const e = err as Error & { code?: string; cause?: Error }
  const servers = fleet.url.servers.join(',')
  const name = e?.name ?? ''
  if (
    name === 'AuthorizationError' ||
    name === 'UserAuthenticationExpiredError' ||
    name === 'PermissionViolationError' ||
    /authorization violation|authentication|permissions violation/i.test(e?.message ?? '')
  ) {
    return new LogmergeError(
      'ENATS_AUTH',
      `NATS server ${servers} refused logmerge: ${e.message}`,
      {
        cause: err,
        hint: 'check the user and password (or token) in the URL, --nats-creds, and the permissions for the subjects <stream>.> and $JS.API.>',
      },
    )
  }
  if (name === 'JetStreamNotEnabled' || /jetstream not enabled/i.test(e?.message ?? '')) {
    return new LogmergeError(
      'ENATS_UNREACHABLE',
      `NATS server ${servers} has no JetStream: ${e.message}`,
      { cause: err, hint: 'enable it in the server config (`jetstream { store_dir: ... }`)' },
    )
  }
  const code = (e?.cause as NodeJS.ErrnoException | undefined)?.code
  const why = `${e?.message ?? String(err)}${code ? ` (${code})` : ''}`
  return new LogmergeError('ENATS_UNREACHABLE', `cannot reach NATS server ${servers}: ${why}`, {
    cause: err,
    hint: 'start it, or check the host and port (default 4222), the network, and tls:// for a server that requires TLS',
  })
}

/** Says each disconnection once and the reconnection once (the client retries by itself). */
async function watchStatus(nc: NatsConnection, fleet: FleetConfig, log: Logger): Promise<void> {
  let down = false
  for await (const s of nc.status()) {
    if (s.type === 'disconnect' && !down) {
      down = true
      log.warn(
        `lost the connection to NATS (${fleet.url.display}); reconnecting${fleet.role === 'host' ? ': the readers wait, the lines stay in their files' : ''}`,
      )
    } else if (s.type === 'reconnect' && down) {
      down = false
      log.warn(`reconnected to NATS (${s.server})`)
    } else if (s.type === 'error') {
      log.warn(`NATS: ${(s as { error?: Error }).error?.message ?? 'error'}`)
    }
  }
}
