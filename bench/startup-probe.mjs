// @ts-check
/**
 * One measurement for bench/startup.mjs, in a fresh process, printed as JSON {ms, cpuMs}:
 *
 *   node bench/startup-probe.mjs cli PRESTART CLI   # import both (as bin/logmerge does)
 *   node bench/startup-probe.mjs thread ENTRY       # start a worker thread that imports what
 *                                                   # ENTRY imports; ENTRY '-' imports nothing
 *
 * `cli`: wall and CPU time of the two imports alone (Node's own start is not in it). `thread`:
 * the process's CPU from `new Worker` until the thread says its imports are done, the main
 * thread idle meanwhile: the thread's start-up (an isolate, Node's bootstrap) and its module
 * loading. The thread imports ENTRY's static imports rather than ENTRY itself, which would run
 * its main loop.
 */

import { readFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { Worker } from 'node:worker_threads'

const [what, a, b] = process.argv.slice(2)
const c0 = process.cpuUsage()
const t0 = performance.now()
/** @returns {string} */
const done = () => {
  const cpu = process.cpuUsage(c0)
  return JSON.stringify({ ms: performance.now() - t0, cpuMs: (cpu.user + cpu.system) / 1000 })
}
if (what === 'cli' && a !== undefined && b !== undefined) {
  await import(pathToFileURL(a).href)
  await import(pathToFileURL(b).href)
  console.log(done())
} else if (what === 'thread' && a !== undefined) {
  const imports =
    a === '-'
      ? []
      : [...readFileSync(a, 'utf8').matchAll(/^import\s[^;]*?from\s+["'](\.[^"']+)["']/gm)].map(
          (m) => pathToFileURL(resolve(dirname(a), /** @type {string} */ (m[1]))).href,
        )
  const code = `import('node:worker_threads').then(async ({ parentPort }) => {
    await Promise.all(${JSON.stringify(imports)}.map((u) => import(u)))
    parentPort.postMessage('done')
  })`
  const worker = new Worker(code, { eval: true })
  await new Promise((res, rej) => {
    worker.once('message', res)
    worker.once('error', rej)
  })
  console.log(done())
  await worker.terminate()
} else {
  throw new Error('usage: startup-probe.mjs cli PRESTART CLI | thread ENTRY')
}
