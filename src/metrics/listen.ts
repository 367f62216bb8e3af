/**
 * `--metrics-listen ADDRESS:PORT`: where the /metrics server binds. Checked once, at the edge:
 * an IPv4 address, a bracketed IPv6 one (`[::1]:9775`) or a host name, and a port. No default
 * address: a metrics endpoint open to the network should be a choice someone made (the docs
 * recommend 127.0.0.1).
 */

export interface ListenAddress {
  /** As Node's server.listen takes it: an IP address (IPv6 without brackets) or a host name. */
  readonly host: string
  /** 0: any free port (logged at info level). */
  readonly port: number
}

const EXPECTED = 'ADDRESS:PORT, like 127.0.0.1:9775, [::1]:9775 or localhost:9775'
const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/
const HOST_NAME =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/

/** The address in `text`, or what is wrong with it (a sentence for the usage error). */
export function parseListen(text: string): ListenAddress | { readonly problem: string } {
  const bracketed = /^\[([^\]]*)\]:(.*)$/.exec(text)
  const colon = text.lastIndexOf(':')
  const [host, portText] = bracketed
    ? [bracketed[1] as string, bracketed[2] as string]
    : colon < 0
      ? [text, '']
      : [text.slice(0, colon), text.slice(colon + 1)]
  if (portText === '') return { problem: `expected ${EXPECTED} (no port)` }
  if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) {
    return { problem: `expected ${EXPECTED}; the port must be 0 to 65535, got "${portText}"` }
  }
  if (host === '') {
    return {
      problem: `expected ${EXPECTED}; the address is missing (0.0.0.0 or [::] listen on every interface: say so)`,
    }
  }
  if (bracketed) {
    if (!/^[0-9A-Fa-f:.]+$/.test(host) || !host.includes(':')) {
      return { problem: `expected ${EXPECTED}; "[${host}]" is not an IPv6 address` }
    }
  } else if (host.includes(':')) {
    return {
      problem: `expected ${EXPECTED}; put an IPv6 address in brackets: [${host}]:${portText}`,
    }
  } else {
    const v4 = IPV4.exec(host)
    if (
      v4 ? v4.slice(1).some((n) => Number(n) > 255) : !HOST_NAME.test(host) || /^[\d.]+$/.test(host)
    ) {
      return { problem: `expected ${EXPECTED}; "${host}" is neither an IP address nor a host name` }
    }
  }
  return { host, port: Number(portText) }
}

/** The address as the user would write it back: `[::1]:9775`, `127.0.0.1:9775`. */
export const formatListen = ({ host, port }: ListenAddress): string =>
  host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
