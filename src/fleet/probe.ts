/**
 * Why a TLS connection timed out, asked of the server itself. A server that requires client
 * certificates (`tls { verify: true }`) ends the handshake of a client without an acceptable
 * one, and the client then only sees a timeout. The server's greeting (the INFO line it sends
 * in clear before TLS begins) says `tls_verify`, so a start-up that timed out with TLS can
 * name the cause. A look of at most PROBE_MS at each server; nothing is sent.
 */
import { connect } from 'node:net'

const PROBE_MS = 2000

interface ServerInfo {
  readonly tls_required?: boolean
  readonly tls_verify?: boolean
}

/** The INFO of the server at `hostPort` (host:port), or null if it does not say it soon. */
export function serverInfo(hostPort: string): Promise<ServerInfo | null> {
  const at = hostPort.lastIndexOf(':')
  const host = hostPort.slice(0, at).replace(/^\[|\]$/g, '')
  const port = Number(hostPort.slice(at + 1))
  return new Promise((resolve) => {
    let text = ''
    const socket = connect({ host, port })
    const done = (info: ServerInfo | null) => {
      clearTimeout(timer)
      socket.destroy()
      resolve(info)
    }
    const timer = setTimeout(() => done(null), PROBE_MS)
    timer.unref()
    socket.setEncoding('latin1')
    socket.on('data', (chunk: string) => {
      text += chunk
      const end = text.indexOf('\r\n')
      if (end < 0 && text.length < 64 * 1024) return
      const m = /^INFO\s+(\{.*\})/.exec(text.slice(0, end < 0 ? undefined : end))
      try {
        done(m ? (JSON.parse(m[1] as string) as ServerInfo) : null)
      } catch {
        done(null)
      }
    })
    socket.on('error', () => done(null))
    socket.on('close', () => done(null))
  })
}

/** The first server of `servers` whose INFO says it requires client certificates. */
export async function wantsClientCert(servers: readonly string[]): Promise<string | null> {
  const infos = await Promise.all(servers.map((s) => serverInfo(s)))
  const i = infos.findIndex((info) => info?.tls_verify === true)
  return i < 0 ? null : (servers[i] as string)
}
