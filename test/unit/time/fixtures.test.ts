/**
 * The committed samples in fixtures/time/, one per timestamp format, merged. The oracle is the
 * table below: the UTC time of every timestamped line, written by hand (not by the parser);
 * the expected output is a stable sort of the samples' records by those times. Each
 * timestamped line also carries `seq=NN`, its place in the merged output, so the table and
 * the samples check each other.
 */

import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { TimeOrder } from '../../../src/order/time-order.js'
import { createLineParser, detectFormat, type LineFormat } from '../../../src/time/timestamps.js'

const DIR = join(import.meta.dirname, '../../../fixtures/time')

interface Sample {
  readonly file: string
  readonly format: LineFormat
  /** UTC time of each line that has one, in file order. */
  readonly utc: readonly string[]
}

/** In the order they are merged: equal times go to the earlier sample. */
const SAMPLES: readonly Sample[] = [
  {
    file: 'app.log',
    format: 'iso',
    utc: [
      '2026-11-24T08:00:00.250Z',
      '2026-11-24T08:00:01.500Z',
      '2026-11-24T08:00:04.000Z',
      '2026-11-24T08:00:07.777Z',
      '2026-11-24T08:00:10.000Z',
      '2026-11-24T08:00:15.123456Z',
      '2026-11-24T08:00:21.000Z',
    ],
  },
  {
    file: 'syslog5424.log',
    format: 'rfc5424',
    utc: [
      '2026-11-24T08:00:00.800Z',
      '2026-11-24T08:00:03.100Z',
      '2026-11-24T08:00:06.400Z',
      '2026-11-24T08:00:09.999Z',
      '2026-11-24T08:00:14.000Z',
      '2026-11-24T08:00:19.000Z',
      '2026-11-24T08:00:25.500Z',
    ],
  },
  {
    file: 'syslog3164.log',
    format: 'rfc3164',
    utc: [
      '2026-11-24T08:00:02Z',
      '2026-11-24T08:00:05Z',
      '2026-11-24T08:00:10Z',
      '2026-11-24T08:00:13Z',
      '2026-11-24T08:00:18Z',
      '2026-11-24T08:00:22Z',
      '2026-11-24T08:00:27Z',
    ],
  },
  {
    file: 'access.log',
    format: 'clf',
    utc: [
      '2026-11-24T08:00:01Z',
      '2026-11-24T08:00:06Z',
      '2026-11-24T08:00:10Z',
      '2026-11-24T08:00:12Z',
      '2026-11-24T08:00:17Z',
      '2026-11-24T08:00:23Z',
      '2026-11-24T08:00:29Z',
    ],
  },
  {
    file: 'events.jsonl',
    format: 'json',
    utc: [
      '2026-11-24T08:00:00.300Z',
      '2026-11-24T08:00:02.500Z',
      '2026-11-24T08:00:04.000Z',
      '2026-11-24T08:00:08.200Z',
      '2026-11-24T08:00:11.111Z',
      '2026-11-24T08:00:16.000Z',
      '2026-11-24T08:00:24.000Z',
    ],
  },
  {
    file: 'squid.log',
    format: 'epoch',
    utc: [
      '2026-11-24T08:00:00.100Z',
      '2026-11-24T08:00:03.700Z',
      '2026-11-24T08:00:07.000Z',
      '2026-11-24T08:00:12.500Z',
      '2026-11-24T08:00:15.500Z',
      '2026-11-24T08:00:20.000Z',
      '2026-11-24T08:00:28.000Z',
    ],
  },
]

/** Crossing New Year, read on 2 January: the syslog dates have no year. */
const NEW_YEAR: readonly Sample[] = [
  {
    file: 'newyear-syslog.log',
    format: 'rfc3164',
    utc: [
      '2026-12-31T23:59:57Z',
      '2026-12-31T23:59:59Z',
      '2027-01-01T00:00:01Z',
      '2027-01-01T00:00:04Z',
    ],
  },
  {
    file: 'newyear-app.log',
    format: 'iso',
    utc: [
      '2026-12-31T23:59:58.500Z',
      '2027-01-01T00:00:00.000Z',
      '2027-01-01T00:00:02.250Z',
      '2027-01-01T00:00:05.000Z',
    ],
  },
]

const REFERENCE = Date.parse('2026-11-25T00:00:00Z')
const NEW_YEAR_REFERENCE = Date.parse('2027-01-02T12:00:00Z')

/** Milliseconds (with microseconds) from the table: Date.parse keeps ms, the rest by hand. */
function tableMs(utc: string): number {
  const micros = /\.\d{3}(\d{3})Z$/.exec(utc)?.[1]
  const ms = Date.parse(micros === undefined ? utc : utc.replace(/(\.\d{3})\d{3}Z$/, '$1Z'))
  return micros === undefined ? ms : ms + Number(micros) / 1000
}

const readLines = (file: string): string[] =>
  readFileSync(join(DIR, file), 'utf8').split('\n').slice(0, -1)

/** A line with a timestamp is one that carries a seq= marker (the samples are made so). */
const isLeader = (line: string) => /seq=\d\d/.test(line)
const seqOf = (line: string) => Number(/seq=(\d\d)/.exec(line)?.[1])

interface OracleRecord {
  readonly text: string
  readonly time: number
  readonly rank: number
}

/** The samples' records with the table's times (lines before the first leader: -Infinity). */
function oracleRecords(samples: readonly Sample[]): OracleRecord[] {
  return samples.flatMap((sample, rank) => {
    const records: OracleRecord[] = []
    let leader = 0
    for (const line of readLines(sample.file)) {
      const last = records[records.length - 1]
      if (isLeader(line)) {
        const utc = sample.utc[leader++]
        if (utc === undefined) throw new Error(`${sample.file}: more leaders than table rows`)
        records.push({ text: `${line}\n`, time: tableMs(utc), rank })
      } else if (last === undefined) {
        records.push({ text: `${line}\n`, time: Number.NEGATIVE_INFINITY, rank })
      } else {
        records[records.length - 1] = { ...last, text: `${last.text}${line}\n` }
      }
    }
    expect(leader).toBe(sample.utc.length)
    return records
  })
}

/** Lines per block for each sample, cut where `cuts` say. */
function blocksOf(file: string, cuts: readonly number[]): Buffer[] {
  const lines = readLines(file).map((l) => `${l}\n`)
  const points = [...new Set(cuts.map((c) => c % (lines.length + 1)))].sort((a, b) => a - b)
  const blocks: Buffer[] = []
  let prev = 0
  for (const p of [...points, lines.length]) {
    if (p > prev) blocks.push(Buffer.from(lines.slice(prev, p).join('')))
    prev = Math.max(prev, p)
  }
  return blocks
}

/** Merges the samples with --once, pushing each sample's blocks in a round-robin. */
function mergeOnce(samples: readonly Sample[], referenceMs: number, cuts: number[][]): string {
  const order = new TimeOrder<number>({
    windowMs: Number.POSITIVE_INFINITY,
    timestamps: { referenceMs },
  })
  const blocks = samples.map((s, i) => blocksOf(s.file, cuts[i] ?? []))
  samples.forEach((_, i) => {
    order.open(i)
  })
  let out = ''
  const take = () => {
    for (const r of order.release(0)) out += r.block.toString('utf8', r.start, r.end)
  }
  const longest = Math.max(...blocks.map((b) => b.length))
  for (let step = 0; step < longest; step++) {
    blocks.forEach((list, i) => {
      const block = list[step]
      if (block !== undefined) order.push(i, block, 0)
      if (step === list.length - 1) order.end(i)
      take()
    })
  }
  return out
}

describe.each([
  ['the six formats', SAMPLES, REFERENCE],
  ['New Year, syslog without a year', NEW_YEAR, NEW_YEAR_REFERENCE],
])('fixtures/time: %s', (_name, samples, referenceMs) => {
  it('each sample is detected as its format and every timestamp reads as the table says', () => {
    for (const sample of samples) {
      const buf = readFileSync(join(DIR, sample.file))
      expect(detectFormat(buf, { referenceMs }), sample.file).toBe(sample.format)
      const parse = createLineParser(sample.format, { referenceMs })
      const got: number[] = []
      let p = 0
      for (const line of readLines(sample.file)) {
        const t = parse(buf, p, p + Buffer.byteLength(line))
        p += Buffer.byteLength(line) + 1
        expect(t !== null, `${sample.file}: ${line}`).toBe(isLeader(line))
        if (t !== null) got.push(t)
      }
      expect(got.length).toBe(sample.utc.length)
      got.forEach((t, i) => {
        expect(t, `${sample.file} line ${i}`).toBeCloseTo(tableMs(sample.utc[i] ?? ''), 4)
      })
    }
  })

  it('the table agrees with the seq= markers', () => {
    const sorted = oracleRecords(samples)
      .filter((r) => Number.isFinite(r.time))
      .sort((a, b) => a.time - b.time || a.rank - b.rank)
    expect(sorted.map((r) => seqOf(r.text))).toEqual(sorted.map((_, i) => i + 1))
  })

  it('merges into the stable sort of the records by the table, however the files are cut', () => {
    const expected = oracleRecords(samples)
      .sort((a, b) => a.time - b.time || a.rank - b.rank)
      .map((r) => r.text)
      .join('')
    fc.assert(
      fc.property(
        fc.array(fc.array(fc.nat(), { maxLength: 6 }), {
          minLength: samples.length,
          maxLength: samples.length,
        }),
        (cuts) => {
          expect(mergeOnce(samples, referenceMs, cuts)).toBe(expected)
        },
      ),
      { numRuns: 100 },
    )
  })
})
