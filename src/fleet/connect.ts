/**
 * The connection to the NATS servers of a fleet URL, with the official client. At start-up a
 * server that cannot be reached or that refuses the credentials is a one-line error with its
 * own exit code (7, 8): systemd restarts the first, a person has to fix the second. Once
 * connected, the client reconnects by itself for as long as it takes; the host's readers wait
 * meanwhile (the files are the buffer), and each outage is said once and its end once.
 */
import { readFileSync } from 'node:fs'
import { checkServerIdentity, type PeerCertificate } from 'node:tls'
import type { NatsConnection } from '@nats-io/nats-core'
import { connect, credsAuthenticator } from '@nats-io/transport-node'
import { describeErrno, LogmergeError } from '../errors.js'
import type { Logger } from '../log.js'
import type { FleetConfig } from './options.js'
import { wantsClientCert } from './probe.js'

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
  try {
    return await startupRetry(
      fleet,
      log,
      'connecting',
      () => connectOnce(fleet, log),
      CONNECT_RETRY_MS,
    )
  } catch (err) {
    // A server that wants a client certificate ends the handshake of a client without one (or
    // with one it does not accept), and the client sees a timeout: the server's greeting says.
    if (!(err instanceof LogmergeError) || err.code !== 'ENATS_UNREACHABLE' || !fleet.tls) throw err
    const server = await wantsClientCert(fleet.url.servers)
    if (server === null) throw err
    throw new LogmergeError(
      'ENATS_TLS',
      `NATS server ${server}: TLS: the server requires a client certificate${fleet.tls.cert === undefined ? '' : ` and did not accept ${fleet.tls.cert}`}`,
      {
        cause: err,
        hint:
          fleet.tls.cert === undefined
            ? 'give one with --nats-tls-cert and --nats-tls-key'
            : 'give one signed by a CA the server trusts (its tls { ca_file })',
      },
    )
  }
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
      ...(fleet.tls && { tls: tlsOptions(fleet) }),
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

/**
 * The client's TLS options: the files read here (a missing one is a usage error, exit 2), and
 * the server's certificate checked against the hosts of the URL. The client checks a server
 * given by IP address against the name "localhost" (it sets no server name for an address), so
 * the check is ours: the certificate must be valid for one of the URL's hosts (all of them are
 * servers the user named; a cluster's certificates usually name every node).
 */
function tlsOptions(fleet: FleetConfig): Record<string, unknown> {
  const tls = fleet.tls ?? {}
  const read = (flag: string, path: string | undefined) => {
    if (path === undefined) return undefined
    try {
      return readFileSync(path)
    } catch (err) {
      throw new LogmergeError(
        'EUSAGE',
        `cannot read ${flag} ${path}: ${describeErrno(err as NodeJS.ErrnoException)}`,
        { hint: `give the path of a PEM file readable by logmerge` },
      )
    }
  }
  const ca = read('--nats-tls-ca', tls.ca)
  const cert = read('--nats-tls-cert', tls.cert)
  const key = read('--nats-tls-key', tls.key)
  const hosts = fleet.url.servers.map((s) => s.replace(/:\d+$/, '').replace(/^\[|\]$/g, ''))
  return {
    ...(ca && { ca: [ca] }),
    ...(cert && { cert }),
    ...(key && { key }),
    checkServerIdentity: (_host: string, peer: PeerCertificate): Error | undefined => {
      let first: Error | undefined
      for (const host of hosts) {
        const e = checkServerIdentity(host, peer)
        if (e === undefined) return undefined
        first ??= e
      }
      return first
    },
  }
}

/** A TLS failure of Node's or OpenSSL's (a certificate not trusted or refused, a bad key). */
function isTlsError(err: Error & { code?: string }): boolean {
  const code = err.code ?? ''
  return (
    /CERT|SSL|TLS|OSSL|UNABLE_TO_(GET|VERIFY)|SELF_SIGNED/.test(code) ||
    /certificate|\bTLS\b|\bSSL\b/i.test(err.message ?? '')
  )
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
  if (err instanceof LogmergeError) return err
  const servers = fleet.url.servers.join(',')
  const tlsCause = [err as Error, (err as Error)?.cause as Error | undefined].find(
    (x) => x instanceof Error && isTlsError(x),
  )
  if (tlsCause) return tlsError(tlsCause, servers, fleet)
  if (!NATS_ERRORS.has((err as Error)?.name)) return err as Error
  const e = err as Error & { code?: string; cause?: Error }
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

function tlsError(err: Error & { code?: string }, servers: string, fleet: FleetConfig): Error {
  const code = err.code ? ` (${err.code})` : ''
  const clientCert = /CERTIFICATE_REQUIRED|BAD_CERTIFICATE|UNKNOWN_CA|HANDSHAKE_FAILURE/i.test(
    err.code ?? '',
  )
  const hint = clientCert
    ? fleet.tls?.cert === undefined
      ? 'the server wants a client certificate: give it with --nats-tls-cert and --nats-tls-key'
      : 'the server does not accept this client certificate (--nats-tls-cert): check that its CA signed it'
    : fleet.tls?.ca === undefined
      ? "give the CA that signed the server's certificate with --nats-tls-ca"
      : "check --nats-tls-ca (the CA that signed the server's certificate) and that the certificate names the host of the URL"
  return new LogmergeError('ENATS_TLS', `NATS server ${servers}: TLS: ${err.message}${code}`, {
    cause: err,
    hint,
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
