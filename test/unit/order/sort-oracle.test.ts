/**
 * --once time order against `LC_ALL=C sort -m -s` run as a real process. For inputs that are
 * each sorted, the merge must equal sort's stable merge on a normalised key: each line of each
 * input is written again as `<key>\t<line>`, the key being the line's UTC time at microsecond
 * precision in fixed width (so byte order is time order), continuation lines taking their
 * leader's key and lines before the first timestamp the empty key. The keys come from the
 * times the test chose when it wrote the lines, not from the parser under test.
 */

import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { TimeOrder } from '../../../src/order/time-order.js'
import type { LineFormat } from '../../../src/time/timestamps.js'

const START_US = Date.parse('2026-11-24T08:00:00Z') * 1000
const REFERENCE_MS = Date.parse('2026-11-26T00:00:00Z')
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']

/** The finest time each format can write, in µs. */
const RESOLUTION_US: Record<LineFormat, number> = {
  iso: 1,
  rfc5424: 1000,
  rfc3164: 1_000_000,
  clf: 1_000_000,
  json: 1000,
  epoch: 1000,
}

/** A time step: a quarter second (a second for the formats that only write seconds). */
const STEP_US = 250_000

const pad = (n: number, width = 2) => String(n).padStart(width, '0')

/** The sort key: `2026-11-24T08:00:01.123456Z` (fixed width, so bytes sort as times). */
function keyOf(us: number): string {
  const seconds = Math.floor(us / 1_000_000)
  return `${new Date(seconds * 1000).toISOString().slice(0, 19)}.${pad(us % 1_000_000, 6)}Z`
}

/** Wall-clock fields of an instant seen at `offsetMin` east of UTC. */
function wall(us: number, offsetMin: number) {
  const d = new Date(Math.floor(us / 1000) + offsetMin * 60_000)
  return {
    date: d.toISOString().slice(0, 10),
    time: d.toISOString().slice(11, 19),
    year: d.getUTCFullYear(),
    month: d.getUTCMonth(),
    day: d.getUTCDate(),
  }
}

function offsetText(offsetMin: number, colon: boolean): string {
  const abs = Math.abs(offsetMin)
  return `${offsetMin < 0 ? '-' : '+'}${pad(Math.floor(abs / 60))}${colon ? ':' : ''}${pad(abs % 60)}`
}

/** One line in `format` for the instant `us` (the test's own writers). */
function writeLine(format: LineFormat, us: number, offsetMin: number, n: number): string {
  const micros = us % 1_000_000
  const ms = Math.floor(us / 1000)
  switch (format) {
    case 'iso': {
      const w = wall(us, offsetMin)
      return `${w.date}T${w.time}.${pad(micros, 6)}${offsetText(offsetMin, true)} INFO event ${n}`
    }
    case 'rfc5424':
      return `<34>1 ${keyOf(us).replace(/\d{3}Z$/, 'Z')} host app - - - event ${n}`
    case 'rfc3164': {
      const w = wall(us, 0)
      return `${MONTHS[w.month]} ${String(w.day).padStart(2, ' ')} ${w.time} host app[1]: event ${n}`
    }
    case 'clf': {
      const w = wall(us, offsetMin)
      return `10.0.0.1 - - [${pad(w.day)}/${MONTHS[w.month]}/${w.year}:${w.time} ${offsetText(offsetMin, false)}] "GET /${n} HTTP/1.1" 200 1`
    }
    case 'json':
      return n % 2 === 0
        ? `{"ts":${ms},"msg":"event ${n}"}`
        : `{"msg":"event ${n}","time":"${keyOf(us).replace(/\d{3}Z$/, 'Z')}"}`
    case 'epoch':
      return `${Math.floor(ms / 1000)}.${pad(ms % 1000, 3)} 1 10.0.0.1 TCP_MISS/200 1 GET http://x/${n}`
  }
}

interface Input {
  readonly format: LineFormat
  readonly offsetMin: number
  readonly banner: boolean
  /** Each record: its time step (in the format's resolution) and continuation lines. */
  readonly records: ReadonlyArray<{ readonly step: number; readonly continuations: number }>
}

const FORMATS = Object.keys(RESOLUTION_US) as LineFormat[]

const inputArb: fc.Arbitrary<Input> = fc.record({
  format: fc.constantFrom(...FORMATS),
  offsetMin: fc.constantFrom(0, 60, -300, 330, 540),
  banner: fc.boolean(),
  records: fc.array(fc.record({ step: fc.nat({ max: 3 }), continuations: fc.nat({ max: 2 }) }), {
    minLength: 1,
    maxLength: 25,
  }),
})

/** The input's text and its keyed twin (`<key>\t<line>` a line) for sort. */
function render(input: Input, index: number): { text: string; keyed: string } {
  const resolution = RESOLUTION_US[input.format]
  let text = ''
  let keyed = ''
  const add = (key: string, line: string) => {
    text += `${line}\n`
    keyed += `${key}\t${line}\n`
  }
  if (input.banner) add('', `starting source ${index} (no time here)`)
  let us = START_US
  input.records.forEach((r, n) => {
    // Steps of 0 give equal times within and across inputs: ties are the interesting part.
    // ISO lines also move by a few microseconds (after a real step, to stay sorted).
    const jitter = resolution === 1 && r.step > 0 ? n % 7 : 0
    us += r.step * Math.max(resolution, STEP_US) + jitter
    const key = keyOf(us)
    add(key, writeLine(input.format, us, input.offsetMin, n))
    for (let c = 0; c < r.continuations; c++) add(key, `\tat frame ${index}.${n}.${c}`)
  })
  return { text, keyed }
}

let dir = ''
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'logmerge-sort-oracle-'))
})
afterAll(() => {
  rmSync(dir, { recursive: true, force: true })
})

function sortMerge(keyedFiles: string[]): string {
  const r = spawnSync('sort', ['-m', '-s', '-t', '\t', '-k1,1', ...keyedFiles], {
    env: { ...process.env, LC_ALL: 'C' },
    encoding: 'utf8',
  })
  if (r.status !== 0) throw new Error(`sort failed (${r.status}): ${r.stderr}`)
  return r.stdout
    .split('\n')
    .slice(0, -1)
    .map((line) => `${line.slice(line.indexOf('\t') + 1)}\n`)
    .join('')
}

function timeOrderMerge(texts: string[]): string {
  const order = new TimeOrder<number>({
    windowMs: Number.POSITIVE_INFINITY,
    timestamps: { referenceMs: REFERENCE_MS },
  })
  texts.forEach((_, i) => {
    order.open(i)
  })
  texts.forEach((text, i) => {
    if (text.length > 0) order.push(i, Buffer.from(text), 0)
    order.end(i)
  })
  return order
    .release(0)
    .map((r) => r.block.toString('utf8', r.start, r.end))
    .join('')
}

describe('--once equals LC_ALL=C sort -m -s on normalised keys', () => {
  it('for sorted inputs in every format, with ties, offsets, banners and continuation lines', () => {
    let runs = 0
    fc.assert(
      fc.property(fc.array(inputArb, { minLength: 1, maxLength: 5 }), (inputs) => {
        const rendered = inputs.map(render)
        const keyedFiles = rendered.map((r, i) => {
          const path = join(dir, `in-${i}.keyed`)
          writeFileSync(path, r.keyed)
          return path
        })
        const expected = sortMerge(keyedFiles)
        expect(timeOrderMerge(rendered.map((r) => r.text))).toBe(expected)
        runs++
      }),
      { numRuns: 60 },
    )
    expect(runs).toBe(60)
  })
})
