/**
 * Real NATS servers for the fleet tests: Debian's nats-server (installed by .ci/run), started on
 * free loopback ports with their own store directories, one node or a 3-node JetStream
 * cluster, and killed after each test. A node can be SIGKILLed and started again with the same
 * store (the stream leader, for the fault tests).
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { appendFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { createConnection, createServer, type Socket } from 'node:net'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { jetstreamManager } from '@nats-io/jetstream'
import { connect } from '@nats-io/transport-node'
import { afterEach } from 'vitest'

export const NATS_SERVER = ['/usr/sbin/nats-server', '/usr/bin/nats-server'].find(existsSync)

/** CI installs nats-server (.ci/run): only a machine without it may skip, and says why. */
export function needNats(skip: (note: string) => void): void {
  if (NATS_SERVER) return
  if (process.env.CI) throw new Error('nats-server is missing: .ci/run installs it')
  skip('nats-server is not installed here (apt-get install nats-server); CI runs this')
}

/** A port nothing listens on now (the kernel's pick; free when this returns). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port
      srv.close(() => resolve(port))
    })
  })
}

export interface NatsNode {
  readonly name: string
  readonly port: number
  /** host:port for URLs. */
  readonly address: string
  readonly running: boolean
  log(): string
  /** SIGKILL (or another signal); resolves once it has exited. */
  kill(signal?: NodeJS.Signals): Promise<void>
  /** Starts it again with the same config and store; resolves once it is ready. */
  start(): Promise<void>
}

const nodes = new Set<NatsNode>()

afterEach(async () => {
  const all = [...nodes]
  nodes.clear()
  await Promise.all(all.map((n) => n.kill('SIGKILL')))
})

/**
 * A node started from `config` (`DIR/nats-NAME.conf`). Everything it says goes to
 * `DIR/nats-NAME.log` too, across its restarts, so a failing test's kept directory holds the
 * servers' own account (catch-ups, leader changes, resets of a stream's first message).
 */
function node(name: string, port: number, config: string): NatsNode {
  const logFile = config.replace(/\.conf$/, '.log')
  // The test's directory may be gone already when a node's last words come.
  const keep = (text: string) => {
    try {
      appendFileSync(logFile, text)
    } catch {}
  }
  let proc: ChildProcess | null = null
  let exited: Promise<void> = Promise.resolve()
  let out = ''
  const self: NatsNode = {
    name,
    port,
    address: `127.0.0.1:${port}`,
    get running() {
      return proc !== null && proc.exitCode === null && proc.signalCode === null
    },
    log: () => out,
    async kill(signal = 'SIGKILL') {
      if (self.running) proc?.kill(signal)
      await exited
    },
    async start() {
      if (!NATS_SERVER) throw new Error('nats-server is not installed')
      const p = spawn(NATS_SERVER, ['-c', config], { stdio: ['ignore', 'pipe', 'pipe'] })
      proc = p
      const ready = new Promise<void>((resolve, reject) => {
        const onData = (b: Buffer) => {
          const text = b.toString('utf8')
          keep(text)
          out += text
          if (out.length > 200_000) out = out.slice(-100_000)
          if (/Server is ready/.test(out)) resolve()
        }
        p.stdout?.on('data', onData)
        p.stderr?.on('data', onData)
        p.once('exit', (code, sig) => reject(new Error(`${name} exited (${code ?? sig}):\n${out}`)))
      })
      exited = new Promise((resolve) =>
        p.once('exit', (code, sig) => {
          keep(`--- ${name} exited (${code ?? sig}) at ${new Date().toISOString()}\n`)
          resolve()
        }),
      )
      out = ''
      await Promise.race([
        ready,
        sleep(15_000).then(() => Promise.reject(new Error(`${name} not ready:\n${out}`))),
      ])
    },
  }
  nodes.add(self)
  return self
}

export type Auth =
  | { readonly user: string; readonly pass: string }
  | { readonly token: string }
  /** Operator mode: the config lines of nats-jwt.ts's decentralized(). */
  | { readonly config: readonly string[] }

/** The server's TLS: its certificate and key, and with `verify` the CA of client certificates. */
export interface ServerTls {
  readonly cert: string
  readonly key: string
  readonly verify?: { readonly ca: string }
}

/** One JetStream node on a free port, with its store under `dir`. */
export async function startNats(
  dir: string,
  opts: { auth?: Auth; tls?: ServerTls } = {},
): Promise<NatsNode> {
  const port = await freePort()
  const store = join(dir, 'nats-store')
  mkdirSync(store, { recursive: true })
  const lines = [
    'server_name: n0',
    `listen: 127.0.0.1:${port}`,
    `jetstream { store_dir: "${store}", max_mem: 64MB, max_file: 4GB }`,
  ]
  if (opts.auth && 'config' in opts.auth) {
    lines.push(...opts.auth.config)
  } else if (opts.auth && 'token' in opts.auth) {
    lines.push(`authorization { token: "${opts.auth.token}" }`)
  } else if (opts.auth) {
    lines.push(
      `authorization { users = [ { user: "${opts.auth.user}", password: "${opts.auth.pass}" } ] }`,
    )
  }
  if (opts.tls) {
    const { cert, key, verify } = opts.tls
    const client = verify ? ` ca_file: "${verify.ca}", verify: true,` : ''
    lines.push(`tls { cert_file: "${cert}", key_file: "${key}",${client} timeout: 2 }`)
  }
  const config = join(dir, 'nats-n0.conf')
  writeFileSync(config, `${lines.join('\n')}\n`)
  const n = node('n0', port, config)
  await n.start()
  return n
}

export interface Cluster {
  readonly nodes: readonly NatsNode[]
  /** nats://a,b,c/STREAM */
  url(stream: string): string
  /** The node that leads `stream` now (asked through any running node). */
  leader(stream: string): Promise<NatsNode | null>
}

/** A JetStream cluster of `size` nodes on loopback, each with its store under `dir`. */
export async function startCluster(dir: string, size = 3): Promise<Cluster> {
  const ports = await Promise.all(Array.from({ length: size }, () => freePort()))
  const routes = await Promise.all(Array.from({ length: size }, () => freePort()))
  const list: NatsNode[] = []
  for (let i = 0; i < size; i++) {
    const name = `n${i + 1}`
    const store = join(dir, `nats-${name}`)
    mkdirSync(store, { recursive: true })
    const others = routes.filter((_, j) => j !== i).map((p) => `nats-route://127.0.0.1:${p}`)
    const config = join(dir, `nats-${name}.conf`)
    writeFileSync(
      config,
      [
        `server_name: ${name}`,
        `listen: 127.0.0.1:${ports[i]}`,
        `jetstream { store_dir: "${store}", max_mem: 64MB, max_file: 4GB }`,
        `cluster { name: lmtest, listen: 127.0.0.1:${routes[i]}, routes: [${others.join(', ')}] }`,
        '',
      ].join('\n'),
    )
    list.push(node(name, ports[i] as number, config))
  }
  await Promise.all(list.map((n) => n.start()))
  const cluster: Cluster = {
    nodes: list,
    url: (stream) => `nats://${list.map((n) => n.address).join(',')}/${stream}`,
    async leader(stream) {
      const up = list.filter((n) => n.running)
      const nc = await connect({ servers: up.map((n) => n.address), timeout: 3000 })
      try {
        const jsm = await jetstreamManager(nc)
        const info = await jsm.streams.info(stream)
        return list.find((n) => n.name === info.cluster?.leader) ?? null
      } catch {
        return null
      } finally {
        await nc.close()
      }
    },
  }
  await waitForJetStream(cluster)
  return cluster
}

/** A fresh cluster answers JetStream requests only once it has elected its meta leader. */
async function waitForJetStream(cluster: Cluster): Promise<void> {
  const deadline = Date.now() + 30_000
  for (;;) {
    try {
      const nc = await connect({ servers: cluster.nodes.map((n) => n.address), timeout: 3000 })
      try {
        const jsm = await jetstreamManager(nc, { timeout: 2000 })
        await jsm.getAccountInfo()
        return
      } finally {
        await nc.close()
      }
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`the cluster has no JetStream: ${err}`)
      await sleep(200)
    }
  }
}

/**
 * A TCP relay to a node that can withhold the server's replies: while held, what the clients
 * send still reaches the server (messages are stored, and a centre reads them) but nothing the
 * server says reaches the clients (their acknowledgements are lost, as with a connection lost
 * just after a publish). Letting go drops the connections held (the bytes withheld are gone,
 * so the clients connect again), then relays as before.
 */
export interface ReplyHold {
  /** host:port for URLs. */
  readonly address: string
  hold(): void
  letGo(): void
  close(): Promise<void>
}

export async function replyHold(to: NatsNode): Promise<ReplyHold> {
  let holding = false
  const relay = await tcpRelay(to, (client, upstream) => {
    client.on('data', (d) => upstream.write(d))
    upstream.on('data', (d) => {
      if (!holding) client.write(d)
    })
  })
  return {
    address: relay.address,
    hold: () => {
      holding = true
    },
    letGo: () => {
      holding = false
      relay.dropConnections()
    },
    close: relay.close,
  }
}

/**
 * A TCP relay on a free loopback port to `to`: each client connection gets its own connection
 * to the node, and `pair` decides what goes across; closing either side closes both.
 */
async function tcpRelay(
  to: NatsNode,
  pair: (client: Socket, upstream: Socket) => void,
): Promise<{ address: string; dropConnections(): void; close(): Promise<void> }> {
  const port = await freePort()
  const open = new Set<Socket>()
  const server = createServer((client) => {
    const upstream = createConnection(to.port, '127.0.0.1')
    for (const s of [client, upstream]) {
      open.add(s)
      s.on('error', () => {})
      s.on('close', () => {
        open.delete(s)
        client.destroy()
        upstream.destroy()
      })
    }
    pair(client, upstream)
  })
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
  const dropConnections = () => {
    for (const s of open) s.destroy()
  }
  return {
    address: `127.0.0.1:${port}`,
    dropConnections,
    close: async () => {
      dropConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

/**
 * A TCP relay to a node that swallows one publish of a client and answers it itself, as if
 * the stream had stored it: the client's `nth` (from 1) PUB or HPUB to a subject matching
 * `subject` never reaches the server, and the client gets a JetStream acknowledgement for it
 * on its reply subject. To the host that message is acknowledged; to the centre it is a
 * message the stream lost (a server that lost what it had acknowledged).
 */
export interface PubDrop {
  readonly address: string
  /** The subject and reply subject of the publish swallowed, once it has been. */
  readonly dropped: () => { subject: string; reply: string } | null
  close(): Promise<void>
}

export async function pubDrop(to: NatsNode, subject: RegExp, nth: number): Promise<PubDrop> {
  let seen = 0
  let dropped: { subject: string; reply: string } | null = null
  const relay = await tcpRelay(to, (client, upstream) => {
    upstream.on('data', (d) => client.write(d))
    /** The client's reply subscription (`SUB _INBOX.x.* sid`): where a forged answer goes. */
    let inboxSid: string | null = null
    let pending = Buffer.alloc(0)
    client.on('data', (d: Buffer) => {
      pending = Buffer.concat([pending, d])
      for (;;) {
        const eol = pending.indexOf('\r\n')
        if (eol < 0) return
        const line = pending.subarray(0, eol).toString('latin1')
        const words = line.split(' ')
        const verb = words[0]?.toUpperCase()
        let size = eol + 2
        if (verb === 'PUB' || verb === 'HPUB') size += Number(words[words.length - 1]) + 2
        if (pending.length < size) return // the rest of the payload is on its way
        const unit = pending.subarray(0, size)
        pending = pending.subarray(size)
        if (verb === 'SUB' && words[1]?.startsWith('_INBOX.') && words[1].endsWith('.*')) {
          inboxSid = words[words.length - 1] ?? null
        }
        const pub = verb === 'PUB' || verb === 'HPUB'
        const reply =
          verb === 'PUB' ? words.length === 4 && words[2] : words.length === 5 && words[2]
        if (pub && words[1] && subject.test(words[1]) && reply && inboxSid !== null) {
          seen++
          if (seen === nth) {
            dropped = { subject: words[1], reply }
            const ack = JSON.stringify({ stream: 'LOGS', seq: 1 })
            client.write(`MSG ${reply} ${inboxSid} ${ack.length}\r\n${ack}\r\n`)
            continue
          }
        }
        upstream.write(unit)
      }
    })
  })
  return { address: relay.address, dropped: () => dropped, close: relay.close }
}
