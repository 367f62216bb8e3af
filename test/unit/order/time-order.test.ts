import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { type MergedRecord, TimeOrder } from '../../../src/order/time-order.js'
import {
  BASE_MS,
  blocksOf,
  driveOnce,
  driveOnceLimited,
  driveOnceRuns,
  type ModelRecord,
  naiveHeadMerge,
  outputText,
  recordText,
  sourceArb,
  sourcesArb,
  sourceText,
} from './model.js'

const RUNS = { numRuns: 300 }
const b = (text: string): Buffer => Buffer.from(text)
const iso = (offsetMs: number): string => new Date(BASE_MS + offsetMs).toISOString()
const line = (offsetMs: number, text: string): string => `${iso(offsetMs)} ${text}\n`
const texts = (out: readonly MergedRecord<string>[]): string[] =>
  out.map((r) => r.block.toString('utf8', r.start, r.end))

describe('--once: a stable k-way merge', () => {
  it('merges by time and writes a record only when every source has one to compare', () => {
    const order = new TimeOrder<string>({ windowMs: Number.POSITIVE_INFINITY })
    order.open('a')
    order.open('b')
    order.push('a', b(line(10, 'a1') + line(30, 'a2')), 0)
    // b has nothing yet: nothing can be written.
    expect(order.release(0)).toEqual([])
    order.push('b', b(line(20, 'b1') + line(40, 'b2')), 0)
    // a2 and b2 may still grow continuation lines, and a's next record is unknown: a1, b1 only.
    expect(texts(order.release(0))).toEqual([line(10, 'a1'), line(20, 'b1')])
    order.end('a')
    expect(texts(order.release(0))).toEqual([line(30, 'a2')])
    order.end('b')
    expect(texts(order.release(0))).toEqual([line(40, 'b2')])
    expect(order.has('a')).toBe(false)
    expect(order.has('b')).toBe(false)
    expect(order.stats).toEqual({ written: 4, late: 0, bufferedBytes: 0 })
  })

  it('breaks ties by the order the sources were opened', () => {
    const order = new TimeOrder<string>({ windowMs: Number.POSITIVE_INFINITY })
    order.open('first')
    order.open('second')
    order.push('second', b(line(5, 'second')), 0)
    order.push('first', b(line(5, 'first')), 0)
    order.end('second')
    order.end('first')
    expect(texts(order.release(0))).toEqual([line(5, 'first'), line(5, 'second')])
  })

  it('keeps continuation lines with their leader, also when they arrive in the next block', () => {
    const order = new TimeOrder<string>({ windowMs: Number.POSITIVE_INFINITY })
    order.open('java')
    order.open('web')
    order.push('java', b(`${line(10, 'ERROR boom')}java.lang.X: y\n`), 0)
    order.push('web', b(line(15, 'GET /')), 0)
    order.push('java', b(`\tat A.b(A.java:1)\n\tat C.d(C.java:2)\n${line(20, 'INFO ok')}`), 0)
    order.end('java')
    order.end('web')
    const out = order.release(0)
    expect(texts(out)).toEqual([
      `${line(10, 'ERROR boom')}java.lang.X: y\n\tat A.b(A.java:1)\n\tat C.d(C.java:2)\n`,
      line(15, 'GET /'),
      line(20, 'INFO ok'),
    ])
    expect(out.map((r) => r.continuation)).toEqual([false, false, false])
  })

  it('gives lines before the first timestamp -Infinity: first out, not late', () => {
    const order = new TimeOrder<string>({ windowMs: Number.POSITIVE_INFINITY })
    order.open('a')
    order.open('b')
    order.push('a', b(line(0, 'a1')), 0)
    order.push('b', b(`banner\nmore banner\n${line(-5, 'b1')}`), 0)
    order.end('a')
    order.end('b')
    const out = order.release(0)
    expect(texts(out)).toEqual(['banner\nmore banner\n', line(-5, 'b1'), line(0, 'a1')])
    expect(out[0]?.time).toBe(Number.NEGATIVE_INFINITY)
    expect(out[0]?.continuation).toBe(true)
    expect(out.some((r) => r.late)).toBe(false)
  })

  it('keeps a source whose own times go backwards in file order, and counts those late', () => {
    const order = new TimeOrder<string>({ windowMs: Number.POSITIVE_INFINITY })
    order.open('a')
    order.open('b')
    order.push('a', b(line(10, 'a1') + line(5, 'a2-earlier') + line(30, 'a3')), 0)
    order.push('b', b(line(20, 'b1')), 0)
    order.end('a')
    order.end('b')
    const out = order.release(0)
    expect(texts(out)).toEqual([
      line(10, 'a1'),
      line(5, 'a2-earlier'),
      line(20, 'b1'),
      line(30, 'a3'),
    ])
    expect(out.map((r) => r.late)).toEqual([false, true, false, false])
    expect(order.stats.late).toBe(1)
  })

  it('reports offsets in the caller terms, and where a joined record ends', () => {
    const order = new TimeOrder<string>({ windowMs: Number.POSITIVE_INFINITY })
    order.open('a')
    const first = b(line(1, 'x') + line(2, 'y'))
    const second = b(`\tat z\n${line(3, 'w')}`)
    order.push('a', first, 0, 1000)
    order.push('a', second, 0, 5000) // not contiguous: as after a truncation
    order.end('a')
    const out = order.release(0)
    const xLength = line(1, 'x').length
    expect(out.map((r) => [r.offset, r.endOffset])).toEqual([
      [1000, 1000 + xLength],
      [1000 + xLength, 5000 + '\tat z\n'.length],
      [5000 + '\tat z\n'.length, 5000 + second.length],
    ])
  })

  it('counts offsets from 0 in bytes pushed when the caller gives none', () => {
    const order = new TimeOrder<string>({ windowMs: Number.POSITIVE_INFINITY })
    order.open('a')
    const blocks = [b(line(1, 'x')), b(line(2, 'yy')), b(line(3, 'zzz'))]
    for (const block of blocks) order.push('a', block, 0)
    order.end('a')
    const ends = order.release(0).map((r) => r.endOffset)
    expect(ends).toEqual([
      blocks[0]?.length,
      (blocks[0]?.length ?? 0) + (blocks[1]?.length ?? 0),
      Buffer.concat(blocks).length,
    ])
  })

  it("writes a full source's last record before it is complete, so the merge never stalls", () => {
    const order = new TimeOrder<string>({
      windowMs: Number.POSITIVE_INFINITY,
      maxBufferedBytes: 64,
    })
    order.open('a')
    order.open('b')
    order.push('b', b(line(50, 'b1')), 0)
    order.push('a', b(`${line(10, 'a1')}${'\tat frame\n'.repeat(5)}`), 0)
    expect(order.isFull('a')).toBe(true)
    const out = order.release(0)
    expect(texts(out)).toEqual([`${line(10, 'a1')}${'\tat frame\n'.repeat(5)}`])
    expect(order.isFull('a')).toBe(false)
    // More of the same record: written right after, as a continuation with the leader's time.
    order.push('a', b(`\tat more\n${line(60, 'a2')}`), 0)
    order.end('a')
    order.end('b')
    const rest = order.release(0)
    expect(texts(rest)).toEqual(['\tat more\n', line(50, 'b1'), line(60, 'a2')])
    expect(rest[0]?.continuation).toBe(true)
    expect(rest[0]?.time).toBe(BASE_MS + 10)
    expect(rest.some((r) => r.late)).toBe(false)
  })

  it('reports buffered bytes per source and in total', () => {
    const order = new TimeOrder<string>({ windowMs: Number.POSITIVE_INFINITY })
    order.open('a')
    order.open('b')
    const block = b(line(1, 'x') + line(2, 'y'))
    order.push('a', block, 0)
    expect(order.bufferedBytes('a')).toBe(block.length)
    expect(order.bufferedBytes('b')).toBe(0)
    expect(order.stats.bufferedBytes).toBe(block.length)
  })

  it('refuses misuse with a clear message', () => {
    const order = new TimeOrder<string>({ windowMs: Number.POSITIVE_INFINITY })
    order.open('a')
    expect(() => order.open('a')).toThrow(/source a is already open/)
    expect(() => order.push('nope', b('x\n'), 0)).toThrow(/cannot push to source nope/)
    expect(() => order.push('a', b('no newline'), 0)).toThrow(/must end in a newline/)
    order.push('a', b(line(1, 'x')), 0)
    order.end('a')
    expect(() => order.push('a', b('x\n'), 0)).toThrow(/source a has ended/)
    expect(() => new TimeOrder({ windowMs: -1 })).toThrow(/windowMs/)
    expect(() => new TimeOrder({ maxBufferedBytes: 0.5 })).toThrow(/maxBufferedBytes/)
  })

  it('uses the named format and reports the detected one', () => {
    const order = new TimeOrder<string>({ windowMs: Number.POSITIVE_INFINITY })
    order.open('auto')
    order.open('clf', { format: 'clf' })
    expect(order.format('auto')).toBeNull()
    order.push('auto', b('{"ts":1795939621,"m":"x"}\n'), 0)
    expect(order.format('auto')).toBe('json')
    expect(order.format('clf')).toBe('clf')
  })
})

describe('--once properties', () => {
  const cutsArb = fc.array(fc.nat(), { maxLength: 12 })
  const scheduleArb = fc.array(fc.nat(), { minLength: 1, maxLength: 30 })
  const limitArb = fc.constantFrom(16, 100, 400, 1 << 20)

  /** Blocks per source with the source's own random cuts. */
  const cutSources = (sources: ModelRecord[][], cuts: number[][]) =>
    sources.map((records, s) => blocksOf(sourceText(records), cuts[s] ?? []))

  const setupArb = (sorted: boolean) =>
    sourcesArb(sorted).chain((sources) =>
      fc.record({
        sources: fc.constant(sources),
        cuts: fc.array(cutsArb, { minLength: sources.length, maxLength: sources.length }),
        schedule: scheduleArb,
        limit: limitArb,
      }),
    )

  it('sorted inputs: the output is the stable sort of all records, whatever the chunking, read order and buffer limit', () => {
    fc.assert(
      fc.property(setupArb(true), ({ sources, cuts, schedule, limit }) => {
        const order = new TimeOrder<number>({
          windowMs: Number.POSITIVE_INFINITY,
          maxBufferedBytes: limit,
        })
        const out = driveOnce(order, cutSources(sources, cuts), schedule)
        // Oracle: Array.prototype.sort is stable; sources are listed in opening order.
        const expected = sources.flat().sort((x, y) => x.time - y.time)
        expect(outputText(out)).toBe(expected.map(recordText).join(''))
        expect(sources.every((_, s) => !order.has(s))).toBe(true)
        expect(order.stats.late).toBe(0)
        expect(order.stats.bufferedBytes).toBe(0)
      }),
      RUNS,
    )
  })

  it("any inputs: the output is the merge of the sources' heads, and late records are counted", () => {
    fc.assert(
      fc.property(setupArb(false), ({ sources, cuts, schedule, limit }) => {
        const order = new TimeOrder<number>({
          windowMs: Number.POSITIVE_INFINITY,
          maxBufferedBytes: limit,
        })
        const out = driveOnce(order, cutSources(sources, cuts), schedule)
        const expected = naiveHeadMerge(sources)
        expect(outputText(out)).toBe(expected.map(recordText).join(''))
        let max = Number.NEGATIVE_INFINITY
        let late = 0
        for (const r of expected) {
          if (r.time < max) late++
          max = Math.max(max, r.time)
        }
        expect(order.stats.late).toBe(late)
        expect(out.filter((r) => r.late).length).toBe(late)
      }),
      RUNS,
    )
  })

  it('each record comes out whole, with its own leader time, when the buffer limit allows', () => {
    fc.assert(
      fc.property(setupArb(true), ({ sources, cuts, schedule }) => {
        const order = new TimeOrder<number>({ windowMs: Number.POSITIVE_INFINITY })
        const out = driveOnce(order, cutSources(sources, cuts), schedule)
        const expected = sources.flat().sort((x, y) => x.time - y.time)
        expect(out.map((r) => r.block.toString('utf8', r.start, r.end))).toEqual(
          expected.map(recordText),
        )
        expect(out.map((r) => [r.key, r.time])).toEqual(expected.map((r) => [r.source, r.time]))
        expect(out.some((r) => r.continuation)).toBe(false)
      }),
      RUNS,
    )
  })

  it('runs (releaseRuns): the same bytes and late count as release(), end offsets exact', () => {
    fc.assert(
      fc.property(setupArb(false), ({ sources, cuts, schedule, limit }) => {
        const blocks = cutSources(sources, cuts)
        const options = { windowMs: Number.POSITIVE_INFINITY, maxBufferedBytes: limit }
        const byRecord = new TimeOrder<number>(options)
        const records = driveOnce(byRecord, blocks, schedule)
        const byRun = new TimeOrder<number>(options)
        const runs = driveOnceRuns(byRun, blocks, schedule)
        expect(runs.map((r) => r.text).join('')).toBe(outputText(records))
        expect(byRun.stats).toEqual(byRecord.stats)
        const written = sources.map(() => 0)
        for (const r of runs) {
          written[r.key] = (written[r.key] ?? 0) + Buffer.byteLength(r.text)
          expect(r.endOffset).toBe(written[r.key])
        }
        expect(runs.every((r) => r.text.length > 0)).toBe(true)
      }),
      RUNS,
    )
  })

  it('a byte limit only cuts a release into steps: the same records, each step about the limit', () => {
    fc.assert(
      fc.property(
        setupArb(false),
        fc.integer({ min: 1, max: 200 }),
        ({ sources, cuts, schedule, limit }, step) => {
          const blocks = cutSources(sources, cuts)
          const options = { windowMs: Number.POSITIVE_INFINITY, maxBufferedBytes: limit }
          const whole = driveOnce(new TimeOrder<number>(options), blocks, schedule)
          const inSteps = driveOnceLimited(new TimeOrder<number>(options), blocks, schedule, step)
          expect(outputText(inSteps)).toBe(outputText(whole))
          expect(inSteps.map((r) => [r.key, r.endOffset, r.late])).toEqual(
            whole.map((r) => [r.key, r.endOffset, r.late]),
          )
          const runs = driveOnceRuns(new TimeOrder<number>(options), blocks, schedule, step)
          expect(runs.map((r) => r.text).join('')).toBe(outputText(whole))
        },
      ),
      RUNS,
    )
  })

  it('a step stops at the run that reaches the limit', () => {
    const order = new TimeOrder<string>({ windowMs: Number.POSITIVE_INFINITY })
    order.open('a')
    order.open('b')
    order.push('a', b(line(1, 'a1') + line(3, 'a3') + line(5, 'a5')), 0)
    order.push('b', b(line(2, 'b2') + line(4, 'b4') + line(6, 'b6')), 0)
    order.end('a')
    order.end('b')
    const step = (limit: number) => texts(order.release(0, limit)).join('')
    expect(step(1)).toBe(line(1, 'a1'))
    expect(step(line(2, 'b2').length + 1)).toBe(line(2, 'b2') + line(3, 'a3'))
    const runs: string[] = []
    order.releaseRuns(
      0,
      (_k, block, start, end) => runs.push(block.toString('utf8', start, end)),
      1,
    )
    expect(runs).toEqual([line(4, 'b4')])
    expect(texts(order.flush(Number.POSITIVE_INFINITY)).join('')).toBe(
      line(5, 'a5') + line(6, 'b6'),
    )
  })

  it('end offsets: after each record, the source is written exactly up to its end offset', () => {
    fc.assert(
      fc.property(setupArb(false), ({ sources, cuts, schedule, limit }) => {
        const order = new TimeOrder<number>({
          windowMs: Number.POSITIVE_INFINITY,
          maxBufferedBytes: limit,
        })
        const out = driveOnce(order, cutSources(sources, cuts), schedule)
        const written = sources.map(() => '')
        for (const r of out) {
          written[r.key] += r.block.toString('utf8', r.start, r.end)
          expect(r.offset).toBe(Buffer.byteLength(written[r.key] ?? '') - (r.end - r.start))
          expect(r.endOffset).toBe(Buffer.byteLength(written[r.key] ?? ''))
        }
        expect(written).toEqual(sources.map(sourceText))
      }),
      RUNS,
    )
  })
})

describe('following: the reorder window', () => {
  const W = 1000

  it('holds a record until every open source has moved past it', () => {
    const order = new TimeOrder<string>({ windowMs: W })
    order.open('a')
    order.open('b')
    order.push('a', b(line(10, 'a1')), 0)
    expect(order.release(0)).toEqual([])
    order.push('b', b(line(5, 'b1')), 1)
    expect(texts(order.release(1))).toEqual([line(5, 'b1')])
    order.push('b', b(line(10, 'b2') + line(12, 'b3')), 2)
    // a1 (10) and b2 (10): a moved to 10 and b past it; the tie goes to arrival order.
    expect(texts(order.release(2))).toEqual([line(10, 'a1'), line(10, 'b2')])
    expect(order.nextDeadline()).toBe(2 + W)
  })

  it('a quiet source holds the others back for the window, not longer', () => {
    const order = new TimeOrder<string>({ windowMs: W })
    order.open('busy')
    order.open('quiet')
    order.push('busy', b(line(1, 'x')), 100)
    order.push('busy', b(line(2, 'y')), 300)
    expect(order.release(100 + W - 1)).toEqual([])
    expect(order.nextDeadline()).toBe(100 + W)
    expect(texts(order.release(100 + W))).toEqual([line(1, 'x')])
    expect(order.nextDeadline()).toBe(300 + W)
    expect(texts(order.release(300 + W))).toEqual([line(2, 'y')])
    expect(order.nextDeadline()).toBeNull()
  })

  it('writes a record that comes later than the window, and counts it late', () => {
    const order = new TimeOrder<string>({ windowMs: W })
    order.open('a')
    order.open('b')
    order.push('a', b(line(500, 'a1')), 0)
    expect(texts(order.release(W))).toEqual([line(500, 'a1')])
    order.push('b', b(line(100, 'b-late')), W + 1)
    const out = order.release(2 * W + 1)
    expect(texts(out)).toEqual([line(100, 'b-late')])
    expect(out[0]?.late).toBe(true)
    expect(order.lateCount('b')).toBe(1)
    expect(order.lateCount('a')).toBe(0)
    expect(order.stats.late).toBe(1)
  })

  it('an ended source does not hold the others back', () => {
    const order = new TimeOrder<string>({ windowMs: W })
    order.open('a')
    order.open('gone')
    order.push('a', b(line(1, 'x')), 0)
    expect(order.release(0)).toEqual([])
    order.end('gone')
    expect(texts(order.release(0))).toEqual([line(1, 'x')])
  })

  it('continuation lines after their leader was written follow it at once, not late', () => {
    const order = new TimeOrder<string>({ windowMs: W })
    order.open('a')
    order.open('b')
    order.push('a', b(line(10, 'ERROR')), 0)
    order.push('b', b(line(20, 'b1')), 0)
    expect(texts(order.release(0))).toEqual([line(10, 'ERROR')])
    order.push('a', b('\tat X.y\n'), 5)
    const out = order.release(5)
    expect(texts(out)).toEqual(['\tat X.y\n'])
    expect(out[0]?.continuation).toBe(true)
    expect(out[0]?.late).toBe(false)
    expect(out[0]?.time).toBe(BASE_MS + 10)
  })

  it('releaseRuns joins consecutive records of one block and writes the same bytes', () => {
    const pushAll = (order: TimeOrder<string>) => {
      order.open('a')
      order.open('b')
      order.push('a', b(line(1, 'a1') + line(2, 'a2') + line(5, 'a3')), 0)
      order.push('b', b(line(3, 'b1') + line(4, 'b2')), 0)
    }
    const byRecord = new TimeOrder<string>({ windowMs: W })
    pushAll(byRecord)
    const records = texts(byRecord.release(0)).concat(texts(byRecord.flush()))
    const byRun = new TimeOrder<string>({ windowMs: W })
    pushAll(byRun)
    const runs: [string, string, number][] = []
    const sink = (key: string, block: Buffer, start: number, end: number, endOffset: number) => {
      runs.push([key, block.toString('utf8', start, end), endOffset])
    }
    expect(byRun.releaseRuns(0, sink)).toBe(4)
    expect(byRun.flushRuns(sink)).toBe(1)
    expect(runs.map((r) => r[1]).join('')).toBe(records.join(''))
    const a12 = line(1, 'a1') + line(2, 'a2')
    expect(runs).toEqual([
      ['a', a12, a12.length],
      ['b', line(3, 'b1') + line(4, 'b2'), (line(3, 'b1') + line(4, 'b2')).length],
      ['a', line(5, 'a3'), (a12 + line(5, 'a3')).length],
    ])
  })

  it('continuation lines in the next block join their leader while it is still held', () => {
    const order = new TimeOrder<string>({ windowMs: W })
    order.open('a')
    order.open('b')
    order.push('a', b(line(10, 'ERROR')), 0, 100)
    order.push('a', b('\tat X.y\n\tat Z.w\n'), 5, 500)
    const out = order.flush()
    expect(texts(out)).toEqual([`${line(10, 'ERROR')}\tat X.y\n\tat Z.w\n`])
    expect(out[0]?.continuation).toBe(false)
    expect(out[0]?.offset).toBe(100)
    expect(out[0]?.endOffset).toBe(500 + '\tat X.y\n\tat Z.w\n'.length)
    // The joined record keeps its first piece's arrival: its window runs from there.
    const again = new TimeOrder<string>({ windowMs: W })
    again.open('a')
    again.open('b')
    again.push('a', b(line(10, 'ERROR')), 0)
    again.push('a', b('\tat X.y\n'), 5)
    expect(again.nextDeadline()).toBe(W)
    expect(texts(again.release(W))).toEqual([`${line(10, 'ERROR')}\tat X.y\n`])
  })

  it('flush writes everything held, in order', () => {
    const order = new TimeOrder<string>({ windowMs: W })
    order.open('a')
    order.open('b')
    order.push('a', b(line(3, 'a1')), 0)
    order.push('b', b(line(2, 'b1') + line(4, 'b2')), 0)
    expect(texts(order.release(0))).toEqual([line(2, 'b1'), line(3, 'a1')])
    expect(texts(order.flush())).toEqual([line(4, 'b2')])
    expect(order.has('a')).toBe(true)
  })
})

/** One step of a simulated follow run. */
type Step =
  | { kind: 'push'; source: number; lines: number; advance: number }
  | { kind: 'release'; advance: number }
  | { kind: 'end'; source: number }

describe('following properties', () => {
  const W = 100
  const stepArb = (k: number): fc.Arbitrary<Step> =>
    fc.oneof(
      {
        weight: 6,
        arbitrary: fc.record({
          kind: fc.constant('push' as const),
          source: fc.nat({ max: k - 1 }),
          lines: fc.integer({ min: 1, max: 4 }),
          advance: fc.integer({ min: 0, max: 60 }),
        }),
      },
      {
        weight: 3,
        arbitrary: fc.record({
          kind: fc.constant('release' as const),
          advance: fc.integer({ min: 0, max: 150 }),
        }),
      },
      {
        weight: 1,
        arbitrary: fc.record({ kind: fc.constant('end' as const), source: fc.nat({ max: k - 1 }) }),
      },
    )

  const runArb = (sorted: boolean) =>
    fc.integer({ min: 1, max: 4 }).chain((k) =>
      fc.record({
        sources: fc.tuple(...Array.from({ length: k }, (_, s) => sourceArb(s, sorted, 16))),
        steps: fc.array(stepArb(k), { maxLength: 40 }),
      }),
    )

  interface Held {
    readonly record: ModelRecord
    readonly arrival: number
  }

  /**
   * Runs the steps against a TimeOrder while keeping the test's own account of what was pushed
   * when, and checks the window rules after every release. Returns the output after a flush.
   */
  function simulate(sources: ModelRecord[][], steps: Step[], checkEarly: boolean) {
    const order = new TimeOrder<number>({ windowMs: W })
    sources.forEach((_, s) => {
      order.open(s)
    })
    const next = sources.map(() => 0)
    const ended = sources.map(() => false)
    const maxPushed = sources.map(() => Number.NEGATIVE_INFINITY)
    const held: Held[] = []
    const out: MergedRecord<number>[] = []
    let now = 0
    const take = (batch: MergedRecord<number>[]) => {
      for (const r of batch) {
        const at = held.findIndex((h) => h.record.source === r.key)
        const h = held[at] as Held
        expect(r.block.toString('utf8', r.start, r.end)).toBe(recordText(h.record))
        held.splice(at, 1)
      }
      out.push(...batch)
    }
    for (const step of steps) {
      if (step.kind === 'push') {
        if (ended[step.source]) continue
        const records = sources[step.source] ?? []
        const from = next[step.source] ?? 0
        const batch = records.slice(from, from + step.lines)
        if (batch.length === 0) continue
        now += step.advance
        next[step.source] = from + batch.length
        order.push(step.source, Buffer.from(batch.map(recordText).join('')), now)
        for (const record of batch) {
          held.push({ record, arrival: now })
          maxPushed[step.source] = Math.max(maxPushed[step.source] ?? 0, record.time)
        }
      } else if (step.kind === 'end') {
        if (ended[step.source]) continue
        ended[step.source] = true
        order.end(step.source)
      } else {
        now += step.advance
        const minWatermark = Math.min(
          ...sources.map((_, s) => (ended[s] ? Number.POSITIVE_INFINITY : (maxPushed[s] ?? 0))),
        )
        const heldBefore = [...held]
        const batch = order.release(now)
        // Not early: each record was due (window over, or every open source past its time),
        // or a due record later in the same batch had to wait for it.
        if (checkEarly) {
          const due = batch.map((r) => {
            const h = heldBefore.find(
              (x) =>
                x.record.source === r.key &&
                recordText(x.record) === r.block.toString('utf8', r.start, r.end),
            ) as Held
            return h.arrival + W <= now || r.time <= minWatermark
          })
          const lastDue = due.lastIndexOf(true)
          expect(due.length === 0 || lastDue === due.length - 1).toBe(true)
        }
        take(batch)
        // Not late: nothing held whose window is over.
        for (const h of held) expect(h.arrival + W).toBeGreaterThan(now)
        const oldest = Math.min(...held.map((h) => h.arrival))
        expect(order.nextDeadline()).toBe(held.length === 0 ? null : oldest + W)
      }
    }
    take(order.flush())
    return { order, out, pushed: sources.map((records, s) => records.slice(0, next[s])) }
  }

  it('nothing is held past the window or written early, nothing is dropped, late lines are counted', () => {
    fc.assert(
      fc.property(runArb(false), ({ sources, steps }) => {
        const { order, out, pushed } = simulate(sources, steps, true)
        // Nothing dropped or repeated, and each source in its own order.
        for (const [s, records] of pushed.entries()) {
          expect(
            out.filter((r) => r.key === s).map((r) => r.block.toString('utf8', r.start, r.end)),
          ).toEqual(records.map(recordText))
        }
        // late: earlier than something written before it.
        let max = Number.NEGATIVE_INFINITY
        const late = out.map((r) => {
          const isLate = r.time < max
          max = Math.max(max, r.time)
          return isLate
        })
        expect(out.map((r) => r.late)).toEqual(late)
        expect(order.stats.late).toBe(late.filter(Boolean).length)
        for (const s of pushed.keys()) {
          if (!order.has(s)) continue // ended and drained: forgotten, with its counter
          expect(order.lateCount(s)).toBe(out.filter((r) => r.key === s && r.late).length)
        }
      }),
      RUNS,
    )
  })

  it('sorted sources released by their watermarks alone come out sorted, none late', () => {
    fc.assert(
      fc.property(runArb(true), ({ sources, steps }) => {
        // Releases at time 0 only: the window never runs out, so only watermarks release.
        const frozen = steps.map((s) => (s.kind === 'end' ? s : { ...s, advance: 0 }))
        const order = new TimeOrder<number>({ windowMs: W })
        sources.forEach((_, s) => {
          order.open(s)
        })
        const { out } = (() => {
          const result: MergedRecord<number>[] = []
          const next = sources.map(() => 0)
          const ended = sources.map(() => false)
          for (const step of frozen) {
            if (step.kind === 'push') {
              const from = next[step.source] ?? 0
              const batch = (sources[step.source] ?? []).slice(from, from + step.lines)
              if (batch.length === 0 || ended[step.source]) continue
              next[step.source] = from + batch.length
              order.push(step.source, Buffer.from(batch.map(recordText).join('')), 0)
            } else if (step.kind === 'end') {
              if (ended[step.source]) continue
              ended[step.source] = true
              order.end(step.source)
            } else result.push(...order.release(0))
          }
          return { out: result }
        })()
        const times = out.map((r) => r.time)
        expect(times).toEqual([...times].sort((x, y) => x - y))
        expect(out.some((r) => r.late)).toBe(false)
      }),
      RUNS,
    )
  })
})
