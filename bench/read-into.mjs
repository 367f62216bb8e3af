// @ts-check
/**
 * read-into: what a read costs into memory never touched against memory used again. A loop of
 * 1 MiB `fs.read` calls (through libuv's pool, as the event-loop reader makes them) over one of
 * catchup's 128 MiB inputs in the page cache, each into a new `Buffer.allocUnsafe` or into one
 * buffer used again; alternating rounds, each in its own process (a fresh heap). Prints MiB/s
 * and the process's user and system CPU. Why it is here: docs/performance.md, catch-up's fifth
 * pass (src/tail/read-buffers.ts). Run: `node bench/read-into.mjs [rounds]`.
 */
import { spawnSync } from 'node:child_process'
import { fstatSync, openSync, read } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { ensureInputs, FULL_BYTES } from './catchup.mjs'

const CHUNK = 1024 * 1024

/**
 * One round in this process.
 * @param {string} file @param {string} mode `fresh` or `reuse`
 */
async function round(file, mode) {
  const fd = openSync(file, 'r')
  const size = fstatSync(fd).size
  const shared = Buffer.allocUnsafe(CHUNK)
  /** @type {(buf: Buffer, pos: number) => Promise<number>} */
  const pread = (buf, pos) =>
    new Promise((resolve, reject) =>
      read(fd, buf, 0, CHUNK, pos, (err, n) => (err ? reject(err) : resolve(n))),
    )
  const t0 = performance.now()
  const c0 = process.cpuUsage()
  for (let pos = 0; pos < size; ) {
    const n = await pread(mode === 'reuse' ? shared : Buffer.allocUnsafe(CHUNK), pos)
    if (n === 0) break
    pos += n
  }
  const cpu = process.cpuUsage(c0)
  const mibs = size / CHUNK / ((performance.now() - t0) / 1000)
  console.log(
    `${mode.padEnd(5)} ${Math.round(mibs)} MiB/s, user ${Math.round(cpu.user / 1000)} ms, system ${Math.round(cpu.system / 1000)} ms`,
  )
}

const [, , arg1, arg2, arg3] = process.argv
if (arg1 === '--round') {
  await round(/** @type {string} */ (arg2), /** @type {string} */ (arg3))
} else {
  const rounds = Number(arg1 ?? 3)
  const [first] = await ensureInputs(FULL_BYTES)
  const file = /** @type {{ path: string }} */ (first).path
  spawnSync('cat', [file], { stdio: ['ignore', 'ignore', 'inherit'] }) // into the page cache
  for (let i = 0; i < rounds; i++)
    for (const mode of ['fresh', 'reuse'])
      spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--round', file, mode], {
        stdio: 'inherit',
      })
}
