/**
 * The reader thread's feed (ThreadFeed), with a real thread: it copies blocks into the main
 * thread's arena slots in shared memory while the merge still uses earlier ones. A block must
 * stay as delivered until the merge has asked for the next one after it (it may hold a record
 * there), whatever the thread does meanwhile. The thread loads the compiled dist/ (npm test
 * builds first), so the feed is imported from there too.
 */
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { pathToFileURL } from 'node:url'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type * as ArenaModule from '../../../src/batch/arena.js'
import type * as FeedModule from '../../../src/batch/feed.js'
import type { ReaderInit, ReadResult } from '../../../src/batch/source-reader.js'

const dist = (p: string) => pathToFileURL(join(import.meta.dirname, '../../../dist', p)).href
const { ThreadFeed, THREAD_SLOTS } = (await import(dist('batch/feed.js'))) as typeof FeedModule
const { CopyArena } = (await import(dist('batch/arena.js'))) as typeof ArenaModule

const SLACK = 1024

describe('ThreadFeed (the reader thread fills the arena slots)', () => {
  let dir: string
  let fds: number[]
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'logmerge-once-feed-'))
    fds = []
  })
  afterEach(() => {
    for (const fd of fds) closeSync(fd)
    rmSync(dir, { recursive: true, force: true })
  })

  /**
   * A file of `lines` timestamped lines; its bytes. With `long`, every 97th line is 2.8-3.5 KB:
   * longer than a read of 700 bytes, so some reads finish no line.
   */
  function logFile(
    name: string,
    lines: number,
    seed: number,
    long = false,
  ): { path: string; bytes: Buffer } {
    const base = Date.parse('2026-11-24T08:00:00.000Z')
    let text = ''
    for (let i = 0; i < lines; i++) {
      const pad = 'x'.repeat(long && i % 97 === 5 ? 2800 + ((i * seed) % 700) : (i * seed) % 90)
      text += `${new Date(base + i * 10).toISOString()} file ${name} line ${i} ${pad}\n`
    }
    const path = join(dir, name)
    writeFileSync(path, text)
    return { path, bytes: Buffer.from(text) }
  }

  function readerOf(path: string, readBytes: number): ReaderInit {
    const fd = openSync(path, 'r')
    fds.push(fd)
    return { fd, offset: 0, maxLineBytes: 1 << 20, readBytes, format: 'iso', timestamps: {} }
  }

  // Long lines: reads that finish no line must not take a slot of their own (until session 6
  // they did, and the block after them overwrote the one the merge still held).
  it.each([
    { lines: 'short lines', long: false, slack: SLACK },
    { lines: 'lines longer than a read', long: true, slack: 4096 },
  ])(
    '$lines: every block as in the file, none overwritten before the merge is past it',
    async ({ long, slack }) => {
      const readBytes = 700
      const files = [logFile('a.log', 900, 7, long), logFile('b.log', 600, 13, long)]
      const arena = new CopyArena(readBytes + slack, THREAD_SLOTS * files.length, 64, () => {}, {
        shared: true,
      })
      const feed = new ThreadFeed(
        arena,
        files.map((f) => readerOf(f.path, readBytes)),
      )
      try {
        const got = files.map(() => [] as Buffer[])
        // Per source: the block delivered last, with a copy of its bytes then.
        const last = files.map(() => null as { view: Buffer; copy: Buffer } | null)
        const ended = files.map(() => false)
        let blocks = 0
        while (!ended.every(Boolean)) {
          for (let i = 0; i < files.length; i++) {
            if (ended[i]) continue
            const next = feed.next(i)
            const r: ReadResult = next instanceof Promise ? await next : next
            // The previous block may still hold a record of the merge's: still as delivered.
            const before = last[i]
            if (before) expect(before.view.equals(before.copy)).toBe(true)
            const file = files[i] as { bytes: Buffer }
            if (r.block !== null) {
              const expected = file.bytes.subarray(r.fileStart, r.fileStart + r.block.length)
              expect(r.block.equals(expected)).toBe(true)
              got[i]?.push(Buffer.from(r.block))
              last[i] = { view: r.block, copy: Buffer.from(r.block) }
              blocks++
            }
            if (r.end) ended[i] = true
            // Now and then let the thread run ahead as far as it may.
            if (blocks % 3 === 0) await sleep(2)
          }
        }
        expect(blocks).toBeGreaterThan(4 * THREAD_SLOTS)
        files.forEach((f, i) => {
          expect(Buffer.concat(got[i] ?? []).equals(f.bytes)).toBe(true)
        })
        // The blocks were in the arena's slots (not sent apart).
        expect(last.every((l) => l?.view.buffer === arena.memory.bytes.buffer)).toBe(true)
      } finally {
        await feed.close()
      }
    },
  )

  it('refuses an arena that is not shared, or has too few slots', () => {
    const file = logFile('a.log', 10, 3)
    const plain = new CopyArena(100, THREAD_SLOTS, 64, () => {})
    expect(() => new ThreadFeed(plain, [readerOf(file.path, 64)])).toThrow(/shared memory/)
    const few = new CopyArena(100, THREAD_SLOTS - 1, 64, () => {}, { shared: true })
    expect(() => new ThreadFeed(few, [readerOf(file.path, 64)])).toThrow(/shared memory/)
    expect(readFileSync(file.path).length).toBeGreaterThan(0)
  })
})
