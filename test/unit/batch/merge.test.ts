/**
 * OnceTimeMerge with the main-thread reader (the reader thread runs from dist/ and is tested
 * end to end in test/e2e/time-order.test.ts): output areas far smaller than the blocks, and a
 * writer that holds each write for a while, so that the merge releases in many small steps,
 * waits for room and spills. Oracle: the lines sorted by (time, file, line) here, and each
 * write's marks checked against the bytes of each file written so far.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setImmediate as tick } from 'node:timers/promises'
import fc from 'fast-check'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { OnceTimeMerge, type OnceWriter } from '../../../src/batch/merge.js'
import { THREAD_MIN_BYTES, wantsReaderThread } from '../../../src/batch/prestart.js'
import { Labels } from '../../../src/format/labels.js'
import { silentLogger } from '../../../src/log.js'
import type { SourceMark } from '../../../src/sink/sink.js'

/** Holds each write until `settle()`; records it with its marks. */
class SlowWriter implements OnceWriter {
  readonly writes: { bytes: Buffer; marks: readonly SourceMark[] }[] = []
  readonly noted = new Map<string, number>()
  #queued: Buffer[] = []

  write(block: Buffer, marks: readonly SourceMark[] = []): undefined {
    this.#queued.push(block)
    this.writes.push({ bytes: block, marks })
    return undefined
  }

  note(mark: SourceMark): void {
    this.noted.set(mark.key, mark.offset)
  }

  get queuedBytes(): number {
    return this.#queued.reduce((n, b) => n + b.length, 0)
  }

  /** Writes the oldest queued block: from now on its memory is not the writer's. */
  settleOne(): void {
    const block = this.#queued.shift()
    if (block === undefined) return
    const write = this.writes.find((w) => w.bytes === block)
    if (write) write.bytes = Buffer.from(block) // what was written, kept before it is reused
  }

  async drain(): Promise<void> {
    await this.drainTo(0)
  }

  async drainTo(bytes: number): Promise<void> {
    while (this.queuedBytes > bytes) {
      await tick()
      this.settleOne()
    }
  }
}

interface Line {
  readonly file: number
  readonly index: number
  readonly time: number
  readonly text: string
}

const BASE = Date.parse('2026-11-24T08:00:00.000Z')

describe('OnceTimeMerge (main-thread reader)', () => {
  let dir: string
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'logmerge-once-time-'))
  })
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true })
  })

  it('merges in time order, file order on ties, with exact marks, whatever the room for output', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.array(fc.record({ step: fc.nat({ max: 3 }), pad: fc.nat({ max: 120 }) }), {
            maxLength: 150,
          }),
          { minLength: 1, maxLength: 4 },
        ),
        fc.integer({ min: 1, max: 300 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 64, max: 2048 }),
        async (files, outBytes, outAreas, readChunkBytes) => {
          const lines: Line[] = []
          const paths = files.map((specs, file) => {
            let time = BASE
            const text = specs.map(({ step, pad }, index) => {
              time += step
              const line = `${new Date(time).toISOString()} f${file} l${index} ${'x'.repeat(pad)}\n`
              lines.push({ file, index, time, text: line })
              return line
            })
            const path = join(dir, `f${file}-${Math.random().toString(36).slice(2)}.log`)
            writeFileSync(path, text.join(''))
            return path
          })
          const writer = new SlowWriter()
          const merge = new OnceTimeMerge({
            paths,
            from: 'start',
            maxLineBytes: 1024 * 1024,
            readChunkBytes,
            format: 'raw',
            labels: new Labels(),
            resume: [],
            log: silentLogger,
            readerThread: false,
            outBytes,
            outAreas,
          })
          merge.open(writer)
          // The writer finishes a write now and then while the merge runs.
          let running = true
          const settler = (async () => {
            while (running) {
              await tick()
              writer.settleOne()
            }
          })()
          try {
            await merge.run(writer)
          } finally {
            running = false
            await settler
            await merge.close()
          }
          await writer.drain()
          const expected = [...lines].sort(
            (a, b) => a.time - b.time || a.file - b.file || a.index - b.index,
          )
          const output = Buffer.concat(writer.writes.map((w) => w.bytes)).toString('latin1')
          expect(output).toBe(expected.map((l) => l.text).join(''))
          // After each write, each marked file's bytes in the output so far are exactly its
          // first `offset` bytes (a checkpoint taken then resumes exactly).
          const contents = paths.map((p) => readFileSync(p, 'latin1'))
          const keyOf = [...writer.noted.keys()]
          const writtenOf = paths.map(() => '')
          for (const w of writer.writes) {
            for (const line of w.bytes.toString('latin1').split(/(?<=\n)/)) {
              const file = Number(/ f(\d+) /.exec(line)?.[1])
              writtenOf[file] += line
            }
            for (const mark of w.marks) {
              const file = keyOf.indexOf(mark.key)
              expect(mark.offset).toBe(writtenOf[file]?.length)
              expect(contents[file]?.slice(0, mark.offset)).toBe(writtenOf[file])
            }
          }
        },
      ),
      { numRuns: 40 },
    )
  })
})

describe('OnceTimeMerge stopped (SIGTERM) and resumed', () => {
  let dir: string
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'logmerge-once-stop-'))
  })
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true })
  })

  it('stops after any write with marks that cover exactly its output; a resumed merge writes the rest', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(fc.nat({ max: 3 }), { minLength: 1, maxLength: 200 }), {
          minLength: 1,
          maxLength: 4,
        }),
        fc.integer({ min: 0, max: 12 }),
        fc.integer({ min: 32, max: 400 }),
        async (files, stopAfter, outBytes) => {
          const lines: Line[] = []
          const paths = files.map((steps, file) => {
            let time = BASE
            const text = steps.map((step, index) => {
              time += step
              const line = `${new Date(time).toISOString()} f${file} l${index} ${'y'.repeat(index % 50)}\n`
              lines.push({ file, index, time, text: line })
              return line
            })
            const path = join(dir, `f${file}-${Math.random().toString(36).slice(2)}.log`)
            writeFileSync(path, text.join(''))
            return path
          })
          const expected = [...lines]
            .sort((a, b) => a.time - b.time || a.file - b.file || a.index - b.index)
            .map((l) => l.text)
            .join('')
          const options = {
            paths,
            from: 'start' as const,
            maxLineBytes: 1024 * 1024,
            readChunkBytes: 256,
            format: 'raw' as const,
            labels: new Labels(),
            log: silentLogger,
            readerThread: false,
            outBytes,
            outAreas: 2,
          }
          // The first run: stopped (as the daemon's SIGTERM does) once `stopAfter` writes are out.
          const stop = new AbortController()
          const firstWriter = new SlowWriter()
          const write = firstWriter.write.bind(firstWriter)
          firstWriter.write = (block, marks) => {
            const r = write(block, marks)
            if (firstWriter.writes.length >= stopAfter) stop.abort()
            return r
          }
          const first = new OnceTimeMerge({ ...options, resume: [] })
          first.open(firstWriter)
          if (stopAfter === 0) stop.abort()
          let finished: boolean
          try {
            finished = await first.run(firstWriter, stop.signal)
          } finally {
            await first.close()
          }
          await firstWriter.drain()
          const firstOut = Buffer.concat(firstWriter.writes.map((w) => w.bytes)).toString('latin1')
          expect(expected.startsWith(firstOut)).toBe(true)
          if (!finished) expect(firstOut.length).toBeLessThan(expected.length)
          // The final checkpoint: the offsets the writer holds once everything is written.
          const offsets = new Map(firstWriter.noted)
          for (const w of firstWriter.writes) for (const m of w.marks) offsets.set(m.key, m.offset)
          const checkpoint = first.checkpoint(offsets)
          const contents = paths.map((p) => readFileSync(p, 'latin1'))
          for (const [i, s] of checkpoint.entries()) {
            const own = firstOut
              .split(/(?<=\n)/)
              .filter((line) => line.includes(` f${i} `))
              .join('')
            expect(contents[i]?.slice(0, s.offset)).toBe(own)
          }
          // The rerun with that checkpoint writes exactly the rest.
          const secondWriter = new SlowWriter()
          const second = new OnceTimeMerge({ ...options, resume: checkpoint })
          second.open(secondWriter)
          try {
            expect(await second.run(secondWriter)).toBe(true)
          } finally {
            await second.close()
          }
          await secondWriter.drain()
          const secondOut = Buffer.concat(secondWriter.writes.map((w) => w.bytes)).toString(
            'latin1',
          )
          expect(firstOut + secondOut).toBe(expected)
        },
      ),
      { numRuns: 60 },
    )
  })
})

describe('wantsReaderThread', () => {
  it('wants enough bytes and room for two threads (1.5 cores nobody else uses)', () => {
    expect(wantsReaderThread(THREAD_MIN_BYTES, 2, 0.2)).toBe(true)
    expect(wantsReaderThread(THREAD_MIN_BYTES - 1, 8, 0)).toBe(false)
    expect(wantsReaderThread(THREAD_MIN_BYTES, 2, 0.5)).toBe(true)
    expect(wantsReaderThread(THREAD_MIN_BYTES, 2, 0.6)).toBe(false)
    expect(wantsReaderThread(THREAD_MIN_BYTES, 1, 0)).toBe(false)
    expect(wantsReaderThread(THREAD_MIN_BYTES, 8, 5)).toBe(true)
  })
})
