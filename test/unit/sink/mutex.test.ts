/**
 * The notes' BetterWay54 counter, with real worker threads: several threads do a non-atomic
 * read-modify-write of a shared counter under the Mutex; the total must be exact. And many
 * threads writing large blocks through the LockedWriter never interleave.
 * Workers load the compiled dist/ (npm test builds first), as the engines do.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { Worker } from 'node:worker_threads'
import { afterEach, describe, expect, it } from 'vitest'
import { LockedWriter } from '../../../src/sink/locked-writer.js'
import { Mutex } from '../../../src/sink/mutex.js'

const dist = (p: string) => pathToFileURL(join(import.meta.dirname, '../../../dist', p)).href
const workers = new Set<Worker>()
afterEach(async () => {
  await Promise.all([...workers].map((w) => w.terminate()))
  workers.clear()
})

/** Runs `body` (an async function body with `data` in scope) in a real worker thread. */
function inWorker(body: string, data: unknown): Promise<void> {
  const code = `
    const { workerData: data, parentPort } = require('node:worker_threads');
    (async () => { ${body} })().then(() => parentPort.postMessage('ok'), (e) => { throw e });
  `
  const w = new Worker(code, { eval: true, workerData: data })
  workers.add(w)
  return new Promise((resolve, reject) => {
    w.once('message', () => resolve())
    w.once('error', reject)
    w.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`worker exited ${code}`))))
  })
}

describe('Mutex', () => {
  it('keeps a shared read-modify-write counter exact across 4 threads (1,000,000 increments)', async () => {
    const mutex = Mutex.create()
    const counter = new SharedArrayBuffer(8)
    const threads = 4
    const each = 250_000
    const body = `
      const { Mutex } = await import(data.mutexUrl);
      const m = new Mutex(data.lock);
      const c = new Float64Array(data.counter);
      for (let i = 0; i < data.each; i++) {
        m.lock();
        const v = c[0];          // read
        c[0] = v + 1;            // modify-write: racy without the lock
        m.unlock();
      }`
    await Promise.all(
      Array.from({ length: threads }, () =>
        inWorker(body, { mutexUrl: dist('sink/mutex.js'), lock: mutex.buffer, counter, each }),
      ),
    )
    expect(new Float64Array(counter)[0]).toBe(threads * each)
  })

  it('works from the main thread too, and tryLock reports a held lock', () => {
    const m = Mutex.create()
    expect(m.tryLock()).toBe(true)
    expect(m.tryLock()).toBe(false)
    m.unlock()
    expect(m.withLock(() => 42)).toBe(42)
    expect(m.tryLock()).toBe(true)
    m.unlock()
  })
})

describe('LockedWriter', () => {
  let dir: string
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true })
  })

  it('never interleaves large blocks written by 6 threads at once', async () => {
    dir = await mkdtemp(join(tmpdir(), 'logmerge-locked-'))
    const out = join(dir, 'out.log')
    const threads = 6
    const writer = LockedWriter.open(out, threads, () => {})
    const blocks = 40
    const blockBytes = 256 * 1024 + 17 // not a page multiple: a torn write would show
    const body = `
      const { LockedWriter } = await import(data.url);
      const w = LockedWriter.attach(data.share, data.id, () => {});
      const block = Buffer.alloc(data.blockBytes, 65 + data.id);
      block[block.length - 1] = 10;
      for (let i = 0; i < data.blocks; i++) w.write(block);`
    await Promise.all(
      Array.from({ length: threads }, (_, id) =>
        inWorker(body, {
          url: dist('sink/locked-writer.js'),
          share: writer.share,
          id,
          blocks,
          blockBytes,
        }),
      ),
    )
    expect(writer.size).toBe(threads * blocks * blockBytes)
    writer.close()
    const bytes = await readFile(out)
    expect(bytes.length).toBe(threads * blocks * blockBytes)
    const counts = new Map<number, number>()
    for (let at = 0; at < bytes.length; at += blockBytes) {
      const block = bytes.subarray(at, at + blockBytes)
      const letter = block[0] as number
      // Every block is one thread's bytes from start to newline: nothing from another inside.
      expect(block.subarray(0, -1).every((b) => b === letter)).toBe(true)
      expect(block.at(-1)).toBe(10)
      counts.set(letter, (counts.get(letter) ?? 0) + 1)
    }
    expect([...counts.values()]).toEqual(Array(threads).fill(blocks))
  })
})
