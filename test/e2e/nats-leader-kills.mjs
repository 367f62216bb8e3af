/**
 * Not a test: a stand-alone check of the servers themselves (docs/fleet.md, "The 200-kill soak's
 * exit 9"). A 3-node nats-server cluster is used the way the fleet soak uses it: a stream with
 * replicas 3, three publishers waiting for each acknowledgement, a reader dropping messages
 * 300 behind the end every 300 ms, and the stream's leader SIGKILLed every 0.5-2.5 s and started
 * again 0.3-1 s later. It stops at the first message lost: the stream beginning past what was
 * dropped.
 *
 *   node test/e2e/nats-leader-kills.mjs DIR [KILLS=60] [SEED=1] [purge|delete]
 *
 * `purge` drops messages with a purge up to a sequence (what the centre did before 2026-12-07),
 * `delete` deletes each by itself (what it does now). The servers' logs go to DIR.
 */
import { spawn } from 'node:child_process'
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  DiscardPolicy,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
} from '@nats-io/jetstream'
import { connect } from '@nats-io/transport-node'

const dir = process.argv[2] ?? ''
if (!dir) {
  console.error('usage: node test/e2e/nats-leader-kills.mjs DIR [KILLS] [SEED] [purge|delete]')
  process.exit(2)
}
const KILLS = Number(process.argv[3] ?? 60)
const seedArg = Number(process.argv[4] ?? 1)
const MODE = process.argv[5] ?? 'purge'
/** @type {{ upTo: number, lastBefore: number }[]} */
const purges = []
let deletedTo = 0
let a = seedArg >>> 0
const random = () => {
  a = (a + 0x6d2b79f5) >>> 0
  let t = a
  t = Math.imul(t ^ (t >>> 15), t | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}
mkdirSync(dir, { recursive: true })
/** @returns {Promise<number>} */
const freePort = () =>
  new Promise((r) => {
    const s = createServer()
    s.listen(0, '127.0.0.1', () => {
      const { port } = /** @type {import('node:net').AddressInfo} */ (s.address())
      s.close(() => r(port))
    })
  })
const ports = [await freePort(), await freePort(), await freePort()]
const routes = [await freePort(), await freePort(), await freePort()]
const t0 = Date.now()
/** @param {string} m */
const say = (m) => {
  const l = `${new Date().toISOString()} ${m}`
  console.log(l)
  appendFileSync(join(dir, 'stress.log'), `${l}\n`)
}
const nodes = ports.map((port, i) => {
  const name = `n${i + 1}`
  const conf = join(dir, `${name}.conf`)
  const others = routes.filter((_, j) => j !== i).map((p) => `nats-route://127.0.0.1:${p}`)
  writeFileSync(
    conf,
    [
      `server_name: ${name}`,
      `listen: 127.0.0.1:${port}`,
      `jetstream { store_dir: "${join(dir, name)}", max_mem: 64MB, max_file: 4GB }`,
      `cluster { name: st, listen: 127.0.0.1:${routes[i]}, routes: [${others.join(', ')}] }`,
      '',
    ].join('\n'),
  )
  const n = {
    name,
    port,
    /** @type {import('node:child_process').ChildProcess | null} */
    proc: null,
    async start() {
      const p = spawn('/usr/sbin/nats-server', ['-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] })
      n.proc = p
      let out = ''
      await /** @type {Promise<void>} */ (
        new Promise((res) => {
          /** @param {Buffer} b */
          const on = (b) => {
            const t = b.toString()
            appendFileSync(join(dir, `${name}.log`), t)
            out += t
            if (/Server is ready/.test(out)) res()
          }
          p.stdout.on('data', on)
          p.stderr.on('data', on)
        })
      )
    },
    async kill() {
      const p = n.proc
      if (!p || p.exitCode !== null) return
      const e = new Promise((r) => p.once('exit', r))
      p.kill('SIGKILL')
      await e
      appendFileSync(join(dir, `${name}.log`), `--- killed ${new Date().toISOString()}\n`)
    },
  }
  return n
})
await Promise.all(nodes.map((n) => n.start()))
const servers = ports.map((p) => `127.0.0.1:${p}`)
const nc = await connect({ servers, maxReconnectAttempts: -1, reconnectTimeWait: 100 })
let jsm
for (;;) {
  try {
    jsm = await jetstreamManager(nc, { timeout: 3000 })
    await jsm.getAccountInfo()
    break
  } catch {
    await sleep(200)
  }
}
for (;;) {
  try {
    await jsm.streams.add({
      name: 'LOGS',
      subjects: ['LOGS.>'],
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      discard: DiscardPolicy.New,
      num_replicas: 3,
      max_msgs: 4096,
      max_msg_size: 266240,
      duplicate_window: 120e9,
    })
    break
  } catch (e) {
    if (/already in use/.test(/** @type {Error} */ (e).message)) break
    await sleep(200)
  }
}
say('stream created')
let stopping = false
let floor = 1 // every message below this was purged by us
let acked = 0
const body = Buffer.alloc(16 * 1024, 'x')
const js = jetstream(nc, { timeout: 5000 })
/** @param {number} h */
const pub = async (h) => {
  while (!stopping) {
    try {
      const ack = await js.publish(`LOGS.h${h}`, body)
      acked = Math.max(acked, ack.seq)
    } catch {
      await sleep(100)
    }
  }
}
const pubs = [0, 1, 2].map(pub)
let lost = null
const watch = (async () => {
  while (!stopping) {
    await sleep(300)
    try {
      const info = await jsm.streams.info('LOGS')
      const { first_seq, last_seq } = info.state
      if (info.cluster?.leader && first_seq > floor) {
        lost = `stream first ${first_seq} past our purge floor ${floor} (last ${last_seq}, leader ${info.cluster?.leader}, replicas ${JSON.stringify(info.cluster?.replicas)})`
        say(`LOST: ${lost}; purges (upTo, last before): ${JSON.stringify(purges.slice(-8))}`)
        stopping = true
        break
      }
      const upTo = last_seq - 300
      if (upTo > floor + 50) {
        floor = upTo
        if (MODE === 'purge') {
          purges.push({ upTo, lastBefore: last_seq })
          await jsm.streams.purge('LOGS', { seq: upTo })
        } else {
          let next = Math.max(deletedTo + 1, first_seq)
          let bad = false
          const done = new Set()
          const w = async () => {
            while (!bad && next < upTo) {
              const s2 = next++
              try {
                await jsm.streams.deleteMessage('LOGS', s2, false)
                done.add(s2)
              } catch (e) {
                if (/not found/i.test(/** @type {Error} */ (e).message)) done.add(s2)
                else bad = true
              }
            }
          }
          const start = next
          await Promise.all(Array.from({ length: 32 }, w))
          let d = start - 1
          while (done.has(d + 1)) d++
          deletedTo = d
        }
      }
    } catch {}
  }
})()
for (let k = 0; k < KILLS && !stopping; k++) {
  await sleep(500 + random() * 2000)
  let leader = null
  for (let i = 0; i < 100 && !leader; i++) {
    try {
      const info = await jsm.streams.info('LOGS')
      leader = nodes.find((n) => n.name === info.cluster?.leader)
    } catch {}
    if (!leader) await sleep(200)
  }
  if (!leader) {
    say('no leader')
    continue
  }
  await leader.kill()
  say(`kill ${k}: ${leader.name} (acked ${acked}, floor ${floor})`)
  await sleep(300 + random() * 700)
  await leader.start()
}
stopping = true
await Promise.allSettled([watch, ...pubs])
say(
  lost
    ? `LOSS after ${((Date.now() - t0) / 1000).toFixed(0)} s`
    : `no loss after ${KILLS} kills, ${((Date.now() - t0) / 1000).toFixed(0)} s, acked ${acked}`,
)
await nc.close().catch(() => {})
for (const n of nodes) await n.kill()
process.exit(0)
