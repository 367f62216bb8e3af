/**
 * The heap of a following daemon (src/gc.ts): GarbageWatch collects what the heap grew by since
 * the end of start-up, not the start-up's live objects; the young generation of a follow run
 * stays within its cap, also when reader threads start (each new heap sets V8's growth factor
 * back). The cap runs in a child process: V8's flags are the process's, and the test runner's
 * own heap must keep V8's sizing.
 */
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { GarbageWatch } from '../../src/gc.js'

const MiB = 1024 * 1024

describe('GarbageWatch', () => {
  /** A watch over a heap whose used bytes the test sets; counts its collections. */
  function watched(start: number) {
    const heap = { usedBytes: start, collections: 0 }
    const watch = new GarbageWatch({
      used: () => heap.usedBytes,
      collect: () => {
        heap.collections++
        heap.usedBytes = Math.min(heap.usedBytes, 20 * MiB)
      },
    })
    return { heap, watch }
  }

  it('counts from the end of start-up: the live heap start-up built is not collected again', () => {
    const { heap, watch } = watched(5 * MiB)
    heap.usedBytes = 20 * MiB // start-up built 15 MiB that stay
    watch.settled(heap.usedBytes)
    watch.check(Date.now() + 60_000)
    expect(heap.collections).toBe(0)
  })

  it('collects when the heap grew by 8 MiB since, and counts from there', () => {
    const { heap, watch } = watched(20 * MiB)
    watch.settled(20 * MiB)
    heap.usedBytes = 27 * MiB
    watch.check(Date.now() + 60_000)
    expect(heap.collections).toBe(0)
    heap.usedBytes = 29 * MiB
    watch.check(Date.now() + 120_000)
    expect(heap.collections).toBe(1)
    heap.usedBytes = 25 * MiB
    watch.check(Date.now() + 180_000)
    expect(heap.collections).toBe(1)
  })

  it('looks right after the first checkpoint after start-up (its garbage just made), then every 10 s', () => {
    const { heap, watch } = watched(20 * MiB)
    const t0 = Date.now()
    watch.settled(20 * MiB)
    heap.usedBytes = 40 * MiB // the checkpoint's records, in use while it is written
    watch.check(t0 + 2_500)
    expect(heap.collections).toBe(0)
    watch.checkpointSaved(t0 + 3_000)
    watch.check(t0 + 3_000)
    expect(heap.collections).toBe(1)
    // Later checkpoints do not bring a look forward: the next is 10 s after this one.
    heap.usedBytes = 40 * MiB
    watch.checkpointSaved(t0 + 5_000)
    watch.check(t0 + 5_000)
    expect(heap.collections).toBe(1)
    watch.check(t0 + 13_100)
    expect(heap.collections).toBe(2)
  })

  it('with no checkpoint after start-up (nothing written), the first look is 10 s after it', () => {
    const { heap, watch } = watched(20 * MiB)
    const t0 = Date.now()
    watch.settled(20 * MiB)
    heap.usedBytes = 40 * MiB
    watch.check(t0 + 9_000)
    expect(heap.collections).toBe(0)
    watch.check(t0 + 10_100)
    expect(heap.collections).toBe(1)
  })
})

describe('the young generation of a follow run', () => {
  const gc = pathToFileURL(join(import.meta.dirname, '../../dist/gc.js')).href
  /** Runs `body` in a new Node process with dist/gc.js as `gc`; returns what it printed. */
  async function inChild(body: string): Promise<string> {
    const code = `
      import * as gc from ${JSON.stringify(gc)}
      import { getHeapSpaceStatistics } from 'node:v8'
      import { Worker } from 'node:worker_threads'
      const young = () => getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size
      /**
       * The young generation at rest: two readings 300 ms apart that agree (at most 10 tries).
       * Node 24's V8 lets it pass its capacity while an incremental marking is under way (4.75
       * to 10.5 MiB seen with the cap at 4, in a third of the runs) and gives that back when the
       * marking ends; Node 20 and 22 do not. A cap that does not hold stays large at rest (32
       * MiB on Node 20 and 22, 128 on 24: V8 gives it back only after some seconds of idling).
       */
      async function youngAtRest() {
        let last = young()
        for (let i = 0; i < 10; i++) {
          await new Promise((r) => setTimeout(r, 300))
          const now = young()
          if (now === last) break
          last = now
        }
        return last
      }
      /**
       * Allocates objects that survive a while, as a start-up's tables do, returning to the
       * event loop now and then as a start-up does (the cap looks after young collections,
       * from the event loop).
       */
      async function allocate() {
        let keep = []
        for (let i = 0; i < 2_000_000; i++) {
          keep.push({ n: i, s: 'x' + i })
          if (keep.length > 200_000) keep = []
          if (i % 10_000 === 0) await new Promise((r) => setImmediate(r))
        }
      }
      /** The same without a return to the event loop: no look of the cap's in between. */
      function allocateSync() {
        let keep = []
        for (let i = 0; i < 2_000_000; i++) {
          keep.push({ n: i, s: 'x' + i })
          if (keep.length > 200_000) keep = []
        }
      }
      ${body}
    `
    const { stdout } = await promisify(execFile)(process.execPath, [
      '--input-type=module',
      '-e',
      code,
    ])
    return stdout.trim()
  }

  it('grows to 32 MiB or more without the cap (what the cap is for)', async () => {
    const out = await inChild('await allocate(); console.log(await youngAtRest())')
    expect(Number(out), out).toBeGreaterThanOrEqual(32 * MiB)
  })

  it('stays within 4 MiB with the cap', async () => {
    const out = await inChild(
      'const stop = gc.capYoungGeneration(); await allocate(); console.log(await youngAtRest()); stop()',
    )
    expect(Number(out), out).toBeLessThanOrEqual(4 * MiB)
  })

  /**
   * Capped, then a thread starts; `again` says whether capYoungAgain is called once it is
   * online. A new thread's heap can set V8's growth factor back (Node 20: the thread engines'
   * main thread grew its young generation to 16 MiB while its threads started, and a script
   * that set the factor, started a thread and allocated grew it to 32 MiB); when that happens
   * relative to 'online' was not pinned down, so this checks the cap holds with the call the
   * engines make, not that it would fail without.
   */
  const threadStarts = (again: boolean) => `
    const stop = gc.capYoungGeneration()
    await allocate()
    const before = await youngAtRest()
    const w = new Worker('setTimeout(() => {}, 200)', { eval: true })
    await new Promise((r) => w.once('online', r))
    ${again ? 'gc.capYoungAgain()' : ''}
    allocateSync()
    console.log(before, await youngAtRest())
    stop()
  `

  it('stays within 4 MiB when a thread starts, with capYoungAgain once it is online', async () => {
    const out = await inChild(threadStarts(true))
    const [before, after] = out.split(' ').map(Number)
    expect(before, out).toBeLessThanOrEqual(4 * MiB)
    expect(after, out).toBeLessThanOrEqual(4 * MiB)
  })
})
