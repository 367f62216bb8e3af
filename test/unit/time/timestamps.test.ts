import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { formatRfc3339, parseZone } from '../../../src/time/calendar.js'
import {
  createLineParser,
  createScanner,
  DETECTION_ORDER,
  detectFormat,
  type LineFormat,
  LineTimes,
  parseTimestampFormat,
  SAMPLE_LINES,
  TIMESTAMP_FORMATS,
  type TimestampOptions,
} from '../../../src/time/timestamps.js'

const RUNS = { numRuns: 500 }

/** Parses one line (no newline) with a fresh parser. */
const parseLine = (format: LineFormat, line: string, options: TimestampOptions = {}) => {
  const buf = Buffer.from(`${line}\n`, 'utf8')
  return createLineParser(format, options)(buf, 0, buf.length - 1)
}

/** The oracle: Date.parse of a hand-written ISO string with a `Z` (whole milliseconds). */
const utc = (iso: string): number => {
  const t = Date.parse(iso)
  if (Number.isNaN(t)) throw new Error(`bad oracle ${iso}`)
  return t
}

const REF_2026 = utc('2026-11-25T00:00:00Z')

describe('format names', () => {
  it('lists auto and every format detection knows', () => {
    expect(TIMESTAMP_FORMATS[0]).toBe('auto')
    expect([...TIMESTAMP_FORMATS].slice(1).sort()).toEqual([...DETECTION_ORDER].sort())
  })

  it('accepts each name and names the flag when a value is wrong', () => {
    for (const name of TIMESTAMP_FORMATS) expect(parseTimestampFormat(name)).toBe(name)
    expect(() => parseTimestampFormat('isox')).toThrow(/--timestamp-format.*iso.*got `isox`/)
  })
})

describe('iso', () => {
  const cases: [string, string | null][] = [
    ['2026-11-24T08:07:01Z hello', '2026-11-24T08:07:01.000Z'],
    ['2026-11-24T08:07:01.123Z INFO x', '2026-11-24T08:07:01.123Z'],
    ['2026-11-24 08:07:01.5 INFO x', '2026-11-24T08:07:01.500Z'],
    ['2026-11-24t08:07:01z', '2026-11-24T08:07:01.000Z'],
    ['2026-11-24T08:07:01+01:00 x', '2026-11-24T07:07:01.000Z'],
    ['2026-11-24T08:07:01.250-0530 x', '2026-11-24T13:37:01.250Z'],
    ['2026-11-24T08:07:01+02 x', '2026-11-24T06:07:01.000Z'],
    ['2026-11-24 08:07:01 +0100 x', '2026-11-24T07:07:01.000Z'],
    ['2026-11-24 08:07:01,999 - app - INFO', '2026-11-24T08:07:01.999Z'],
    ['[2026-11-24 08:07:01.001] [info] x', '2026-11-24T08:07:01.001Z'],
    ['2026-11-24T23:30:00-01:00', '2026-11-25T00:30:00.000Z'],
    ['2024-02-29T12:00:00Z', '2024-02-29T12:00:00.000Z'],
    ['2026-11-24 08:07:01 +12 retries', '2026-11-24T08:07:01.000Z'], // +12 is not a zone
    ['2025-02-29T12:00:00Z', null], // no such day
    ['2026-13-01T00:00:00Z', null],
    ['2026-11-24T24:00:00Z', null],
    ['2026-11-24T08:60:00Z', null],
    ['2026-11-24', null],
    ['2026/11/24 08:07:01', null],
    ['\tat com.example.Foo.bar(Foo.java:12)', null],
    ['', null],
    ['Caused by: java.io.IOException 2026-11-24T08:07:01Z', null],
  ]
  it.each(cases)('%s', (line, expected) => {
    expect(parseLine('iso', line)).toBe(expected === null ? null : utc(expected))
  })

  it('keeps microseconds and drops finer digits', () => {
    const base = utc('2026-12-31T23:59:59.999Z')
    expect(parseLine('iso', '2026-12-31T23:59:59.999999999Z')).toBeCloseTo(base + 0.999, 6)
    expect(parseLine('iso', '2026-12-31T23:59:59.999999Z')).toBe(
      parseLine('iso', '2026-12-31T23:59:59.9999994Z'),
    )
    expect(parseLine('iso', '2026-11-24T08:07:01.000001Z')).toBeGreaterThan(
      utc('2026-11-24T08:07:01Z'),
    )
  })

  it('reads times without an offset in the zone it is given', () => {
    const line = '2026-11-24T08:07:01 x'
    expect(parseLine('iso', line)).toBe(utc('2026-11-24T08:07:01Z'))
    expect(parseLine('iso', line, { zone: 60 })).toBe(utc('2026-11-24T07:07:01Z'))
    expect(parseLine('iso', line, { zone: -300 })).toBe(utc('2026-11-24T13:07:01Z'))
    // 'local' uses the host zone (TZ); Date's own local reading is the oracle.
    expect(parseLine('iso', line, { zone: 'local' })).toBe(
      new Date(2026, 10, 24, 8, 7, 1).getTime(),
    )
    // An explicit offset always wins over the default zone.
    expect(parseLine('iso', '2026-11-24T08:07:01Z', { zone: 60 })).toBe(utc('2026-11-24T08:07:01Z'))
  })

  it('reads any instant written in any offset, fraction length and separator', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: utc('1971-01-01T00:00:00Z'), max: utc('2200-01-01T00:00:00Z') }),
        fc.integer({ min: 0, max: 999 }),
        fc.integer({ min: -14 * 60, max: 14 * 60 }),
        fc.integer({ min: 0, max: 9 }),
        fc.constantFrom('T', ' ', 't'),
        fc.constantFrom('colon', 'compact'),
        (ms, extraMicros, offsetMin, fractionDigits, sep, offsetStyle) => {
          const exactMicros = ms * 1000 + extraMicros
          const line = isoLine(exactMicros, offsetMin, fractionDigits, sep, offsetStyle)
          const keptMicros = Math.min(fractionDigits, 6)
          const micros = Number(
            String(exactMicros % 1_000_000)
              .padStart(6, '0')
              .slice(0, keptMicros)
              .padEnd(6, '0'),
          )
          const expected = Math.floor(exactMicros / 1_000_000) * 1000 + micros / 1000
          const got = parseLine('iso', line)
          expect(got).not.toBeNull()
          expect(Math.abs((got ?? 0) - expected)).toBeLessThan(0.0005)
        },
      ),
      RUNS,
    )
  })
})

/** The test's own writer of an ISO line (Date for the calendar, string ops for the rest). */
function isoLine(
  exactMicros: number,
  offsetMin: number,
  fractionDigits: number,
  sep: string,
  offsetStyle: 'colon' | 'compact',
): string {
  const seconds = Math.floor(exactMicros / 1_000_000)
  const wall = new Date((seconds + offsetMin * 60) * 1000).toISOString().slice(0, 19)
  const fraction = String(exactMicros % 1_000_000)
    .padStart(6, '0')
    .padEnd(9, '7')
    .slice(0, fractionDigits)
  const abs = Math.abs(offsetMin)
  const hh = String(Math.floor(abs / 60)).padStart(2, '0')
  const mm = String(abs % 60).padStart(2, '0')
  const zone = `${offsetMin < 0 ? '-' : '+'}${hh}${offsetStyle === 'colon' ? ':' : ''}${mm}`
  return `${wall.replace('T', sep)}${fractionDigits > 0 ? `.${fraction}` : ''}${zone} msg`
}

describe('rfc5424', () => {
  it.each([
    ['<34>1 2026-11-24T08:07:01.123Z host app 123 ID47 - msg', '2026-11-24T08:07:01.123Z'],
    ['<165>1 2026-11-24T08:07:01.5+01:00 host app - - [x@1 a="b"] msg', '2026-11-24T07:07:01.500Z'],
    ['<13>2026-11-24T08:07:01Z host app: msg', '2026-11-24T08:07:01.000Z'],
    ['<34>1 - host app - - - no time', null],
    ['34>1 2026-11-24T08:07:01Z', null],
    ['<1234>1 2026-11-24T08:07:01Z', null],
    ['2026-11-24T08:07:01Z plain iso', null],
  ])('%s', (line, expected) => {
    expect(parseLine('rfc5424', line)).toBe(expected === null ? null : utc(expected))
  })
})

describe('rfc3164', () => {
  it.each([
    ['Nov 24 08:07:01 host sshd[1]: x', '2026-11-24T08:07:01.000Z'],
    ['<13>Nov 24 08:07:01 host app: x', '2026-11-24T08:07:01.000Z'],
    ['Nov  4 08:07:01 host app: x', '2026-11-04T08:07:01.000Z'],
    ['Nov 04 08:07:01 host app: x', '2026-11-04T08:07:01.000Z'],
    ['Nov 4 08:07:01 host app: x', '2026-11-04T08:07:01.000Z'],
    ['Nov 24 08:07:01.250 host app: x', '2026-11-24T08:07:01.250Z'],
    ['Mar  1 00:00:00 host app: x', '2026-03-01T00:00:00.000Z'],
    ['nov 24 08:07:01 host', null],
    ['Nov 32 08:07:01 host', null],
    ['Nov 24 8:07:01 host', null],
    ['Foo 24 08:07:01 host', null],
  ])('%s (reference 2026-11-25)', (line, expected) => {
    expect(parseLine('rfc3164', line, { referenceMs: REF_2026 })).toBe(
      expected === null ? null : utc(expected),
    )
  })

  it('puts a date later than the reference in the year before', () => {
    const ref = utc('2027-01-02T10:00:00Z')
    expect(parseLine('rfc3164', 'Dec 31 23:59:59 h a: x', { referenceMs: ref })).toBe(
      utc('2026-12-31T23:59:59Z'),
    )
    expect(parseLine('rfc3164', 'Jan  2 09:00:00 h a: x', { referenceMs: ref })).toBe(
      utc('2027-01-02T09:00:00Z'),
    )
    // A little ahead of the reference (another host's clock) is still this year...
    expect(parseLine('rfc3164', 'Jan  2 20:00:00 h a: x', { referenceMs: ref })).toBe(
      utc('2027-01-02T20:00:00Z'),
    )
    // ...and just after New Year's midnight on a fast clock, the coming year.
    const eve = utc('2026-12-31T23:59:58Z')
    expect(parseLine('rfc3164', 'Jan  1 00:00:03 h a: x', { referenceMs: eve })).toBe(
      utc('2027-01-01T00:00:03Z'),
    )
  })

  it('finds a year with Feb 29 for a leap day', () => {
    const ref = utc('2027-06-01T00:00:00Z')
    expect(parseLine('rfc3164', 'Feb 29 12:00:00 h a: x', { referenceMs: ref })).toBe(
      utc('2024-02-29T12:00:00Z'),
    )
  })

  it('moves to the next year when a file crosses New Year, and back for a late line', () => {
    const parse = createLineParser('rfc3164', { referenceMs: utc('2026-12-31T12:00:00Z') })
    const at = (line: string) => {
      const b = Buffer.from(`${line}\n`)
      return parse(b, 0, b.length - 1)
    }
    expect(at('Dec 31 23:59:58 h a: x')).toBe(utc('2026-12-31T23:59:58Z'))
    expect(at('Jan  1 00:00:01 h a: x')).toBe(utc('2027-01-01T00:00:01Z'))
    expect(at('Dec 31 23:59:59 h a: late')).toBe(utc('2026-12-31T23:59:59Z'))
    expect(at('Jan  1 00:00:02 h a: x')).toBe(utc('2027-01-01T00:00:02Z'))
    expect(at('Feb  3 10:00:00 h a: x')).toBe(utc('2027-02-03T10:00:00Z'))
  })

  it('reads syslog wall-clock time in the zone it is given', () => {
    expect(
      parseLine('rfc3164', 'Nov 24 08:07:01 h a: x', { referenceMs: REF_2026, zone: 60 }),
    ).toBe(utc('2026-11-24T07:07:01Z'))
  })
})

describe('clf', () => {
  it.each([
    [
      '10.0.0.1 - - [24/Nov/2026:08:07:01 +0000] "GET / HTTP/1.1" 200 5',
      '2026-11-24T08:07:01.000Z',
    ],
    [
      '10.0.0.1 - bob [24/Nov/2026:08:07:01 -0500] "GET / HTTP/1.1" 200 5',
      '2026-11-24T13:07:01.000Z',
    ],
    ['::1 - - [01/Jan/2027:00:00:00 +0130] "GET /[x] HTTP/1.1" 200 5', '2026-12-31T22:30:00.000Z'],
    ['h - [user] [24/Nov/2026:08:07:01.250 +0000] "GET /"', '2026-11-24T08:07:01.250Z'],
    ['h - - [24/Nov/2026:08:07:01] "GET /"', '2026-11-24T08:07:01.000Z'],
    ['h - - [24/Xyz/2026:08:07:01 +0000]', null],
    ['h - - [31/Nov/2026:08:07:01 +0000]', null],
    ['h - - 24/Nov/2026:08:07:01 +0000', null],
  ])('%s', (line, expected) => {
    expect(parseLine('clf', line)).toBe(expected === null ? null : utc(expected))
  })

  it('does not look past the end of the line it was given', () => {
    const buf = Buffer.from('no bracket here\nh - - [24/Nov/2026:08:07:01 +0000] "GET /"\n')
    const parse = createLineParser('clf')
    expect(parse(buf, 0, 15)).toBeNull()
    expect(parse(buf, 16, buf.length - 1)).toBe(utc('2026-11-24T08:07:01Z'))
  })
})

describe('json', () => {
  const T = '2026-11-24T08:07:01.123Z'
  it.each([
    [`{"time":"${T}","msg":"x"}`, T],
    [`{"level":30,"timestamp":"2026-11-24T09:07:01.123+01:00","msg":"x"}`, T],
    [`{ "msg" : "a \\"time\\": 1" , "ts" : 1795939621.123 }`, '2026-11-29T08:07:01.123Z'],
    [`{"ts":1795939621123,"msg":"x"}`, '2026-11-29T08:07:01.123Z'],
    [`{"ts":"1795939621","msg":"x"}`, '2026-11-29T08:07:01.000Z'],
    [`{"@timestamp":"${T}","message":"x"}`, T],
    [`{"req":{"ts":1},"arr":[1,{"time":2}],"time":"${T}"}`, T],
    [`{"time":"yesterday","ts":1795939621}`, '2026-11-29T08:07:01.000Z'],
    [`{"msg":"no time"}`, null],
    [`{"Time":"${T}"}`, null],
    [`{"times":"${T}"}`, null],
    [`not json ${T}`, null],
    [`{"time":"${T}`, null],
    [`["time","${T}"]`, null],
  ])('%s', (line, expected) => {
    const got = parseLine('json', line)
    if (expected === null) expect(got).toBeNull()
    else expect(got).toBeCloseTo(utc(expected), 3)
  })

  it('reads microseconds and nanoseconds to the microsecond', () => {
    const ms = utc('2026-11-29T08:07:01.123Z')
    expect(parseLine('json', '{"ts":1795939621123456}')).toBeCloseTo(ms + 0.456, 4)
    expect(parseLine('json', '{"ts":1795939621123456789}')).toBeCloseTo(ms + 0.456, 4)
  })

  it('tells seconds from milliseconds by magnitude', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: utc('2001-09-10T00:00:00Z'), max: utc('2200-01-01T00:00:00Z') }),
        (ms) => {
          const seconds = Math.floor(ms / 1000)
          expect(parseLine('json', `{"ts":${ms}}`)).toBe(ms)
          expect(parseLine('json', `{"ts":${seconds}}`)).toBe(seconds * 1000)
          expect(parseLine('json', `{"ts":${(ms / 1000).toFixed(3)}}`)).toBeCloseTo(ms, 3)
        },
      ),
      RUNS,
    )
  })
})

describe('epoch', () => {
  it.each([
    [
      '1795939621.123    5 10.0.0.1 TCP_MISS/200 0 GET http://x - DIRECT/1.2.3.4 -',
      '2026-11-29T08:07:01.123Z',
    ],
    ['1795939621 x', '2026-11-29T08:07:01.000Z'],
    ['1795939621123\tx', '2026-11-29T08:07:01.123Z'],
    ['179593962 x', null], // nine digits: too short to be a time we expect
    ['1795939621x', null],
    ['12345 lines', null],
  ])('%s', (line, expected) => {
    const got = parseLine('epoch', line)
    if (expected === null) expect(got).toBeNull()
    else expect(got).toBeCloseTo(utc(expected), 3)
  })
})

describe('detection', () => {
  const samples: Record<LineFormat, string[]> = {
    iso: ['2026-11-24T08:07:01.123Z INFO a', '\tat x.y(Z.java:1)', '2026-11-24T08:07:02Z INFO b'],
    rfc5424: [
      '<34>1 2026-11-24T08:07:01.123Z h a - - - x',
      '<34>1 2026-11-24T08:07:02Z h a - - - y',
    ],
    rfc3164: ['Nov 24 08:07:01 h a: x', '<13>Nov 24 08:07:02 h a: y'],
    clf: [
      '1.2.3.4 - - [24/Nov/2026:08:07:01 +0000] "GET / HTTP/1.1" 200 1',
      '1.2.3.4 - - [24/Nov/2026:08:07:02 +0000] "GET / HTTP/1.1" 200 1',
    ],
    json: [
      '{"time":"2026-11-24T08:07:01Z","msg":"[24/Nov/2026:08:07:01 +0000]"}',
      '{"time":"2026-11-24T08:07:02Z","msg":"x"}',
    ],
    epoch: ['1795939621.123 x', '1795939622.123 y'],
  }

  it.each(Object.entries(samples))('detects %s', (format, lines) => {
    const buf = Buffer.from(`${lines.join('\n')}\n`)
    expect(detectFormat(buf, { referenceMs: REF_2026 })).toBe(format)
  })

  it('picks the format that reads the most of the sample, and null when none reads any', () => {
    const mixed = ['Nov 24 08:07:01 h a: x', '2026-11-24T08:07:01Z a', '2026-11-24T08:07:02Z b']
    expect(detectFormat(Buffer.from(`${mixed.join('\n')}\n`))).toBe('iso')
    expect(detectFormat(Buffer.from('no\ntimes\nhere\n'))).toBeNull()
    expect(detectFormat(Buffer.alloc(0))).toBeNull()
  })

  it(`looks at the first ${SAMPLE_LINES} lines only`, () => {
    const banner = Array.from({ length: SAMPLE_LINES }, (_, i) => `banner ${i}`)
    const buf = Buffer.from(`${banner.join('\n')}\n2026-11-24T08:07:01Z a\n`)
    expect(detectFormat(buf)).toBeNull()
    expect(detectFormat(buf, {}, buf.indexOf('banner 1'))).toBe('iso')
  })

  it('LineTimes settles on the first block with a readable line and keeps that format', () => {
    const times = new LineTimes('auto', { referenceMs: REF_2026 })
    const banner = Buffer.from('starting up\n')
    expect(times.learn(banner)).toBeNull()
    expect(times.parse(banner, 0, banner.length - 1)).toBeNull()
    const syslog = Buffer.from('Nov 24 08:07:01 h a: x\n')
    expect(times.learn(syslog)).toBe('rfc3164')
    const iso = Buffer.from('2026-11-24T08:07:01Z a\n')
    expect(times.learn(iso)).toBe('rfc3164')
    expect(times.parse(iso, 0, iso.length - 1)).toBeNull()
    expect(times.parse(syslog, 0, syslog.length - 1)).toBe(utc('2026-11-24T08:07:01Z'))
  })

  it('LineTimes with a named format never detects', () => {
    const times = new LineTimes('clf')
    const iso = Buffer.from('2026-11-24T08:07:01Z a\n')
    expect(times.learn(iso)).toBe('clf')
    expect(times.parse(iso, 0, iso.length - 1)).toBeNull()
  })
})

describe('zones and RFC 3339 output', () => {
  it('parses --default-zone values and names the flag otherwise', () => {
    expect(parseZone('utc')).toBe(0)
    expect(parseZone('UTC')).toBe(0)
    expect(parseZone('local')).toBe('local')
    expect(parseZone('+01:00')).toBe(60)
    expect(parseZone('-0530')).toBe(-330)
    expect(parseZone('+09')).toBe(540)
    expect(() => parseZone('Europe/Paris')).toThrow(/--default-zone.*got `Europe\/Paris`/)
    expect(() => parseZone('+25:00')).toThrow(/--default-zone/)
  })

  it('formats times as RFC 3339 UTC with milliseconds, or microseconds when present', () => {
    expect(formatRfc3339(utc('2026-11-24T08:07:01.123Z'))).toBe('2026-11-24T08:07:01.123Z')
    expect(formatRfc3339(utc('2026-11-24T08:07:01.123Z') + 0.456)).toBe(
      '2026-11-24T08:07:01.123456Z',
    )
    expect(formatRfc3339(utc('2026-11-24T08:07:01.123Z') + 0.0004)).toBe('2026-11-24T08:07:01.123Z')
    expect(formatRfc3339(utc('2026-11-24T08:07:01.123Z') + 0.9996)).toBe('2026-11-24T08:07:01.124Z')
  })

  it('round-trips parse(formatRfc3339(t)) to the microsecond', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 7_000_000_000_000 }),
        fc.integer({ min: 0, max: 999 }),
        (ms, micros) => {
          const t = ms + micros / 1000
          const text = formatRfc3339(t)
          expect(Math.abs((parseLine('iso', text) ?? Number.NaN) - t)).toBeLessThan(0.0006)
        },
      ),
      RUNS,
    )
  })
})

describe('nothing at or past the end of the line is read', () => {
  // The partition planner (batch/plan.ts) scans lines inside a window of the file, where the
  // byte at `end` is the rest of a line cut at --max-line-bytes, not its newline.
  it('a zone cut by the end is no zone, whatever follows', () => {
    const cases = [
      ['iso', '2026-01-01T00:10:00 -05', '00 more'],
      ['iso', '2026-01-01T00:10:00 -05', ':00 more'],
      ['clf', '10.0.0.1 - - [01/Jan/2026:00:10:00 -05', '00] "GET / HTTP/1.1" 200 5'],
    ] as const
    for (const [format, line, rest] of cases) {
      const scan = createScanner(format)
      const buf = Buffer.from(`${line}${rest}\n`)
      const alone = Buffer.from(`${line}\n`)
      expect(scan(buf, 0, line.length), `${format}: ${line}|${rest}`).toBe(
        scan(alone, 0, line.length),
      )
      expect(scan(alone, 0, line.length)).toBe(Date.UTC(2026, 0, 1, 0, 10, 0))
    }
  })
})
