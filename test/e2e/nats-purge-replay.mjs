/**
 * Not a test: shows a defect of nats-server before 2.9.18 (Debian 12's 2.9.10; docs/fleet.md,
 * "The 200-kill soak's exit 9"). A purge up to a sequence, replayed from a restarted server's
 * log, removes every message the stream held when the purge was made. 100 messages, a purge up
 * to 50 (or, with `delete`, messages 1-49 deleted one by one), 10 more, all three servers
 * SIGKILLed and started again; prints the stream's state before and after.
 *
 *   node test/e2e/nats-purge-replay.mjs DIR [purge|delete]
 */
import { spawn } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { jetstream, jetstreamManager, StorageType } from '@nats-io/jetstream'
import { connect } from '@nats-io/transport-node'

const dir = process.argv[2] ?? ''
const mode = process.argv[3] ?? 'purge'
if (!dir) {
  console.error('usage: node test/e2e/nats-purge-replay.mjs DIR [purge|delete]')
  process.exit(2)
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
/** @type {import('node:child_process').ChildProcess[]} */
const procs = []
/** @param {number} i */
const start = (i) =>
  /** @type {Promise<void>} */ (
    new Promise((res) => {
      const name = `n${i + 1}`
      const conf = join(dir, `${name}.conf`)
      writeFileSync(
        conf,
        [
          `server_name: ${name}`,
          `listen: 127.0.0.1:${ports[i]}`,
          `jetstream { store_dir: "${join(dir, name)}" }`,
          `cluster { name: pr, listen: 127.0.0.1:${routes[i]}, routes: [${routes
            .filter((_, j) => j !== i)
            .map((p) => `nats-route://127.0.0.1:${p}`)
            .join(', ')}] }`,
        ].join('\n'),
      )
      const p = spawn('/usr/sbin/nats-server', ['-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] })
      procs[i] = p
      let out = ''
      /** @param {Buffer} b */
      const on = (b) => {
        out += b
        if (/Server is ready/.test(out)) res()
      }
      p.stdout.on('data', on)
      p.stderr.on('data', on)
    })
  )
await Promise.all([0, 1, 2].map(start))
const servers = ports.map((p) => `127.0.0.1:${p}`)
const nc = await connect({ servers, maxReconnectAttempts: -1, reconnectTimeWait: 100 })
let jsm
for (;;) {
  try {
    jsm = await jetstreamManager(nc, { timeout: 3000 })
    await jsm.streams.add({
      name: 'S',
      subjects: ['S.>'],
      storage: StorageType.File,
      num_replicas: 3,
    })
    break
  } catch {
    await sleep(200)
  }
}
const js = jetstream(nc)
for (let i = 0; i < 100; i++) await js.publish('S.x', new Uint8Array(10))
if (mode === 'purge') await jsm.streams.purge('S', { seq: 50 })
else for (let s = 1; s < 50; s++) await jsm.streams.deleteMessage('S', s, false)
for (let i = 0; i < 10; i++) await js.publish('S.x', new Uint8Array(10))
console.log(
  mode,
  'before the restart:',
  JSON.stringify((await jsm.streams.info('S')).state).slice(0, 80),
)
for (const p of procs) {
  const e = new Promise((r) => p.once('exit', r))
  p.kill('SIGKILL')
  await e
}
await Promise.all([0, 1, 2].map(start))
for (;;) {
  try {
    const i = await jsm.streams.info('S')
    if (i.cluster?.leader) {
      console.log(
        mode,
        'after SIGKILL of all three and a restart:',
        JSON.stringify(i.state).slice(0, 80),
      )
      break
    }
  } catch {}
  await sleep(200)
}
await nc.close()
for (const p of procs) p.kill('SIGKILL')
