/**
 * `--metrics-listen`: an HTTP server with the exposition at /metrics (Prometheus text format).
 * It binds before any job starts, so an address that cannot be used (taken, not this machine's,
 * a port below 1024, a sandbox without network) stops logmerge at once with exit 2, instead of
 * a daemon that runs unseen.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { describeErrno, LogmergeError } from '../errors.js'
import type { Logger } from '../log.js'
import { formatListen, type ListenAddress } from './listen.js'

export interface Exposition {
  readonly body: string
  readonly contentType: string
}

export interface MetricsServer {
  /** Where it listens (the port the system chose, for port 0). */
  readonly address: ListenAddress
  close(): Promise<void>
}

export async function serveMetrics(
  at: ListenAddress,
  expose: () => Promise<Exposition>,
  log: Logger,
): Promise<MetricsServer> {
  const server = createServer((req, res) => void answer(req, res, expose, log))
  // No request may hold the daemon up: a scraper that sends nothing is dropped.
  server.requestTimeout = 10_000
  server.headersTimeout = 10_000
  await new Promise<void>((resolve, reject) => {
    const failed = (err: NodeJS.ErrnoException) => reject(listenError(at, err))
    server.once('error', failed)
    server.listen({ host: at.host, port: at.port }, () => {
      server.off('error', failed)
      resolve()
    })
  })
  server.on('error', (err) => log.warn(`metrics server on ${formatListen(at)}: ${err.message}`))
  const bound = server.address() as AddressInfo
  const address = { host: at.host, port: bound.port }
  log.info(`metrics: serving http://${formatListen(address)}/metrics`)
  let closed: Promise<void> | null = null
  return {
    address,
    close() {
      closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections() // keep-alive scrapers would hold close() up
      })
      return closed
    },
  }
}

async function answer(
  req: IncomingMessage,
  res: ServerResponse,
  expose: () => Promise<Exposition>,
  log: Logger,
): Promise<void> {
  const path = (req.url ?? '/').split('?')[0]
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain' })
    res.end('logmerge: only GET and HEAD\n')
    return
  }
  if (path !== '/metrics') {
    res.writeHead(404, { 'Content-Type': 'text/plain' })
    res.end('logmerge: the metrics are at /metrics\n')
    return
  }
  try {
    const { body, contentType } = await expose()
    res.writeHead(200, { 'Content-Type': contentType })
    res.end(req.method === 'HEAD' ? undefined : body)
    log.forget('metrics-serve')
  } catch (err) {
    log.warnOnce('metrics-serve', `metrics: ${(err as Error).message}`)
    res.writeHead(500, { 'Content-Type': 'text/plain' })
    res.end('logmerge: could not collect the metrics (see its log)\n')
  }
}

/** Why `at` cannot be listened on, in one line, with what to do (exit 2). */
export function listenError(at: ListenAddress, err: NodeJS.ErrnoException): LogmergeError {
  const where = formatListen(at)
  const [problem, hint] = ((): [string, string] => {
    switch (err.code) {
      case 'EADDRINUSE':
        return [
          'the address is already in use',
          `choose another port, or stop what listens there (ss -ltnp 'sport = :${at.port}')`,
        ]
      case 'EADDRNOTAVAIL':
        return [
          'no interface of this machine has that address',
          'use 127.0.0.1, or an address `ip -brief address` lists',
        ]
      case 'EACCES':
        return [
          `permission denied (EACCES)${at.port < 1024 ? ': ports below 1024 need privileges' : ''}`,
          'use a port from 1024 up',
        ]
      case 'EAFNOSUPPORT':
      case 'EPERM':
        return [
          `sockets of this kind are not allowed here (${err.code})`,
          'under the shipped systemd unit, add the drop-in deploy/logmerge.service.d/metrics-listen.conf (docs/service.md, "Monitoring"), or use --metrics-file',
        ]
      case 'ENOTFOUND':
      case 'EAI_AGAIN':
      case 'EAI_FAIL':
        return [`cannot resolve ${at.host} (${err.code})`, 'give an IP address, like 127.0.0.1']
      default:
        return [describeErrno(err), 'see the message, or choose another address']
    }
  })()
  return new LogmergeError('EMETRICS', `cannot listen on ${where} (--metrics-listen): ${problem}`, {
    cause: err,
    hint,
  })
}
