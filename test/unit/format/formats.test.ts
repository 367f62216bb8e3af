import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  type FormatRecord,
  formatJson,
  formatPrefix,
  formatRaw,
  formatRecord,
  labelPrefix,
  OUTPUT_FORMATS,
  parseOutputFormat,
} from '../../../src/format/formats.js'

const RUNS = { numRuns: 500 }
const T = Date.parse('2026-11-24T08:07:01.123Z')
const SOURCE = { label: 'web', path: '/var/log/nginx/access.log' }

const record = (text: string | Buffer, extra: Partial<FormatRecord> = {}): FormatRecord => {
  const block = typeof text === 'string' ? Buffer.from(text) : text
  return { block, start: 0, end: block.length, time: T, offset: 0, continuation: false, ...extra }
}

/** Any bytes, the interesting ones (invalid UTF-8, NUL, CR, quotes) over-represented. */
const bytesArb = fc
  .array(
    fc.oneof(
      { weight: 10, arbitrary: fc.integer({ min: 0, max: 255 }) },
      {
        weight: 4,
        arbitrary: fc.constantFrom(
          0x00,
          0x0d,
          0x22,
          0x5c,
          0xc3,
          0xa9,
          0xe2,
          0x82,
          0xac,
          0xff,
          0xed,
          0xa0,
          0x80,
        ),
      },
    ),
    { maxLength: 60 },
  )
  .map((bytes) => Buffer.from(bytes.filter((b) => b !== 0x0a)))

describe('names', () => {
  it('validates --format and names the flag', () => {
    for (const f of OUTPUT_FORMATS) expect(parseOutputFormat(f)).toBe(f)
    expect(() => parseOutputFormat('yaml')).toThrow(/--format.*raw, prefix, json.*`yaml`/)
  })
})

describe('raw', () => {
  it('is the bytes as they are', () => {
    const block = Buffer.from('a\r\nb\0\xff\n', 'latin1')
    expect(formatRaw(block, 1, block.length).equals(block.subarray(1))).toBe(true)
  })
})

describe('prefix', () => {
  it('puts the label before every line of a record, continuation lines included', () => {
    const text = '2026-11-24T08:07:01Z ERROR boom\n\tat A.b(A.java:1)\n\tat C.d(C.java:2)\n'
    expect(formatPrefix(Buffer.from(text), 0, text.length, labelPrefix('api')).toString()).toBe(
      'api: 2026-11-24T08:07:01Z ERROR boom\napi: \tat A.b(A.java:1)\napi: \tat C.d(C.java:2)\n',
    )
  })

  it('keeps every byte of every line: removing the prefixes gives the input back', () => {
    fc.assert(
      fc.property(
        fc.array(bytesArb, { minLength: 1, maxLength: 6 }),
        fc.string(),
        (lines, label) => {
          const input = Buffer.concat(lines.map((l) => Buffer.concat([l, Buffer.from('\n')])))
          const prefix = labelPrefix(label)
          const out = formatPrefix(input, 0, input.length, prefix)
          const back: Buffer[] = []
          let p = 0
          for (const l of lines) {
            expect(out.subarray(p, p + prefix.length).equals(prefix)).toBe(true)
            p += prefix.length
            back.push(out.subarray(p, p + l.length + 1))
            p += l.length + 1
          }
          expect(p).toBe(out.length)
          expect(Buffer.concat(back).equals(input)).toBe(true)
        },
      ),
      RUNS,
    )
  })
})

describe('json', () => {
  const parse = (buf: Buffer) => {
    expect(buf[buf.length - 1]).toBe(0x0a)
    expect(buf.subarray(0, -1).includes(0x0a)).toBe(false)
    return JSON.parse(buf.toString('utf8'))
  }

  it('writes source, path, offset, time and the line, one object a record', () => {
    const text = '2026-11-24T08:07:01.123Z ERROR "quoted" boom\n\tat A.b(A.java:1)\n'
    const out = parse(formatJson(record(text, { offset: 4096 }), SOURCE))
    expect(out).toEqual({
      source: 'web',
      path: '/var/log/nginx/access.log',
      offset: 4096,
      time: '2026-11-24T08:07:01.123Z',
      line: '2026-11-24T08:07:01.123Z ERROR "quoted" boom\n\tat A.b(A.java:1)',
    })
    expect(Object.keys(out)).toEqual(['source', 'path', 'offset', 'time', 'line'])
  })

  it("gives microseconds when the time has them, null before a source's first time", () => {
    expect(parse(formatJson(record('x\n', { time: T + 0.456 }), SOURCE)).time).toBe(
      '2026-11-24T08:07:01.123456Z',
    )
    const headless = parse(
      formatJson(
        record('banner\n', { time: Number.NEGATIVE_INFINITY, continuation: true }),
        SOURCE,
      ),
    )
    expect(headless.time).toBeNull()
    expect(headless.continuation).toBe(true)
  })

  it('keeps invalid UTF-8 exactly in line_base64 and readable in line', () => {
    const bytes = Buffer.from([0x61, 0xff, 0x62, 0xc3, 0x0a])
    const out = parse(formatJson(record(bytes), SOURCE))
    expect(out.line).toBe('a\uFFFDb\uFFFD')
    expect(Buffer.from(out.line_base64, 'base64').equals(bytes.subarray(0, 4))).toBe(true)
    expect(parse(formatJson(record('caf\u00e9\n'), SOURCE)).line_base64).toBeUndefined()
  })

  it('is valid JSON for any bytes, and the bytes can always be recovered', () => {
    fc.assert(
      fc.property(bytesArb, fc.nat({ max: 1e9 }), (bytes, offset) => {
        const block = Buffer.concat([bytes, Buffer.from('\n')])
        const out = parse(formatJson(record(block, { offset }), SOURCE))
        const exact =
          out.line_base64 === undefined
            ? Buffer.from(out.line, 'utf8')
            : Buffer.from(out.line_base64, 'base64')
        expect(exact.equals(bytes)).toBe(true)
        expect(out.offset).toBe(offset)
        expect(out.line).toBe(bytes.toString('utf8'))
      }),
      RUNS,
    )
  })

  it('formats a record inside a bigger block by its range', () => {
    const block = Buffer.from('first\nsecond\nthird\n')
    const out = parse(formatJson({ ...record(block), start: 6, end: 13 }, SOURCE))
    expect(out.line).toBe('second')
  })
})

describe('formatRecord', () => {
  it('dispatches on the format name', () => {
    const r = record('2026-11-24T08:07:01Z x\n')
    expect(formatRecord('raw', r, SOURCE).toString()).toBe('2026-11-24T08:07:01Z x\n')
    expect(formatRecord('prefix', r, SOURCE).toString()).toBe('web: 2026-11-24T08:07:01Z x\n')
    expect(JSON.parse(formatRecord('json', r, SOURCE).toString()).source).toBe('web')
  })
})
