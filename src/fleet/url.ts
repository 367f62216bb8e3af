/**
 * A fleet URL: `nats://[user[:password]@|token@]host[:port][,host[:port]...]/STREAM` (or
 * `tls://`, which requires TLS). As an output it says "publish to this stream"; as an input,
 * "merge what this stream holds". Parsed and checked once here; the credentials never leave
 * the parsed value (what is printed is `display`, without them).
 */
import { errors } from '../errors.js'

export const DEFAULT_PORT = 4222

export interface FleetUrl {
  readonly scheme: 'nats' | 'tls'
  /** host:port of each server, in the order given. */
  readonly servers: readonly string[]
  /** The JetStream stream: its subjects are `<stream>.<host token>`. */
  readonly stream: string
  readonly user?: string
  readonly pass?: string
  readonly token?: string
  /** The URL without credentials, for messages, `check-config` and the state file. */
  readonly display: string
}

/** True when `text` is meant as a fleet URL (so it is not taken for a file name). */
export const isFleetUrl = (text: string | undefined): text is string =>
  text !== undefined && /^(nats|tls):\/\//i.test(text)

/** Stream names: what JetStream allows in a subject token and a file name. */
const STREAM = /^[A-Za-z0-9_-]{1,64}$/
const HOST = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$/

/** Parses `text` (`what` names it in errors: `--output`, `input`). */
export function parseFleetUrl(text: string, what: string): FleetUrl {
  const bad = (why: string) =>
    errors.usage(
      `${what} ${redact(text)}: ${why}`,
      'write it as nats://host:4222/STREAM (several servers: nats://n1:4222,n2:4222/STREAM)',
    )
  const m = /^(nats|tls):\/\/([^/]*)\/(.*)$/i.exec(text)
  if (m === null) throw bad('no stream: the URL must end in /STREAM')
  const scheme = (m[1] as string).toLowerCase() as 'nats' | 'tls'
  let authority = m[2] as string
  const stream = m[3] as string
  if (!STREAM.test(stream)) {
    throw bad(
      `\`${stream}\` is not a stream name (1 to 64 letters, digits, "_" or "-"; no "." or "/")`,
    )
  }
  const at = authority.lastIndexOf('@')
  let user: string | undefined
  let pass: string | undefined
  let token: string | undefined
  if (at >= 0) {
    const info = authority.slice(0, at)
    authority = authority.slice(at + 1)
    const colon = info.indexOf(':')
    try {
      if (colon >= 0) {
        user = decodeURIComponent(info.slice(0, colon))
        pass = decodeURIComponent(info.slice(colon + 1))
      } else token = decodeURIComponent(info)
    } catch {
      throw bad('bad %-escape in the credentials')
    }
    if ((user ?? token) === '') throw bad('empty user name or token before "@"')
  }
  const hosts = authority.split(',')
  const servers: string[] = []
  for (const host of hosts) {
    if (!HOST.test(host)) throw bad(`\`${host}\` is not host or host:port`)
    const port = /:(\d+)$/.exec(host.replace(/^\[[^\]]*\]/, ''))
    if (port && (Number(port[1]) < 1 || Number(port[1]) > 65535)) {
      throw bad(`port ${port[1]} is out of range`)
    }
    servers.push(port ? host : `${host}:${DEFAULT_PORT}`)
  }
  const display = `${scheme}://${servers.join(',')}/${stream}`
  return {
    scheme,
    servers,
    stream,
    display,
    ...(user !== undefined && { user }),
    ...(pass !== undefined && { pass }),
    ...(token !== undefined && { token }),
  }
}

/** The URL with any credentials replaced by `***` (for a message about a bad URL). */
export function redact(text: string): string {
  return text.replace(/^((?:nats|tls):\/\/)[^/@]*@/i, '$1***@')
}

/** The subject token of a host id: what NATS allows in one token of a subject. */
export const hostToken = (hostId: string): string => hostId.replace(/[^A-Za-z0-9_-]/g, '_')
