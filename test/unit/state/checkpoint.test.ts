/**
 * The state file's format: what encodeState writes decodeState reads back unchanged, every file
 * that is not a whole, valid state of this version is refused with a reason (the reason is
 * what the warning of docs/failure-modes.md, case 13, quotes), and planOutput's choice for the
 * output at start.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import {
  decodeState,
  defaultStatePath,
  encodeState,
  loadState,
  type OutputState,
  planOutput,
  quarantine,
  removeLeftTemps,
  STATE_FORMAT,
  STATE_VERSION,
  saveState,
} from '../../../src/state/checkpoint.js'
import type { SourceState } from '../../../src/tail/source-state.js'

const count = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER })
const stats = fc.record(
  {
    lines: count,
    linesSplit: count,
    truncations: count,
    pendingBytes: count,
    lastActivity: count,
    late: count,
  },
  { requiredKeys: ['lines', 'linesSplit', 'truncations', 'pendingBytes', 'lastActivity'] },
)
const source: fc.Arbitrary<SourceState> = fc.record(
  {
    path: fc.string(),
    dev: count,
    ino: count,
    head: fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b).toString('base64')),
    offset: count,
    stats,
  },
  { requiredKeys: ['path', 'dev', 'ino', 'head', 'offset'] },
)
const output: fc.Arbitrary<OutputState | null> = fc.option(
  fc.record({ path: fc.string(), dev: count, ino: count, size: count }),
)
const instant = fc.date({
  min: new Date('2000-01-01T00:00:00Z'),
  max: new Date('2100-01-01T00:00:00Z'),
  noInvalidDate: true,
})

describe('encodeState / decodeState', () => {
  test('property: a round trip gives back every field', () => {
    fc.assert(
      fc.property(
        output,
        fc.array(source, { maxLength: 5 }),
        instant,
        instant,
        fc.integer({ min: 1, max: 4_194_304 }),
        (out, sources, startedAt, now, pid) => {
          const state = decodeState(encodeState(out, sources, startedAt, now, pid))
          expect(state).toEqual({
            format: STATE_FORMAT,
            version: STATE_VERSION,
            savedAt: now.toISOString(),
            startedAt: startedAt.toISOString(),
            output: out,
            sources,
            pid,
          })
        },
      ),
    )
  })

  test('property: a torn file (any proper prefix of one) is refused as not valid JSON', () => {
    fc.assert(
      fc.property(output, fc.array(source, { maxLength: 3 }), fc.nat(), (out, sources, cut) => {
        const text = encodeState(out, sources, new Date(0), new Date(0), 1).trimEnd()
        const prefix = text.slice(0, cut % text.length)
        expect(() => decodeState(prefix)).toThrow('not valid JSON (a torn or corrupted file)')
      }),
    )
  })

  const valid = () =>
    JSON.parse(
      encodeState(
        { path: '/o', dev: 1, ino: 2, size: 3 },
        [{ path: '/a', dev: 1, ino: 5, head: 'YQ==', offset: 2 }],
        new Date(0),
      ),
    )
  const refused: [string, (o: Record<string, unknown>) => unknown, string][] = [
    ['not an object', () => 42, 'not a logmerge state file (no "format": "logmerge-state")'],
    ['another format', (o) => ({ ...o, format: 'x' }), 'not a logmerge state file'],
    ['no version', (o) => ({ ...o, version: undefined }), 'no integer "version"'],
    ['a fractional version', (o) => ({ ...o, version: 1.5 }), 'no integer "version"'],
    [
      'a newer version',
      (o) => ({ ...o, version: 99 }),
      'written by a newer logmerge (state version 99, this one reads 1)',
    ],
    ['an older, unknown version', (o) => ({ ...o, version: 0 }), 'unknown state version 0'],
    ['sources not a list', (o) => ({ ...o, sources: {} }), '"sources" is not a list'],
    [
      'an output without size',
      (o) => ({ ...o, output: { path: '/o', dev: 1, ino: 2 } }),
      '"output" needs path, dev, ino and size',
    ],
    [
      'a source without head',
      (o) => ({ ...o, sources: [{ path: '/a', dev: 1, ino: 5, offset: 0 }] }),
      'source 0 needs path, dev, ino, head and offset',
    ],
    [
      'a negative offset',
      (o) => ({ ...o, sources: [{ path: '/a', dev: 1, ino: 5, head: '', offset: -1 }] }),
      'source 0 needs',
    ],
    [
      'a fractional offset',
      (o) => ({ ...o, sources: [{ path: '/a', dev: 1, ino: 5, head: '', offset: 0.5 }] }),
      'source 0 needs',
    ],
    [
      'an offset past 2^53',
      (o) => ({ ...o, sources: [{ path: '/a', dev: 1, ino: 5, head: '', offset: 2 ** 53 }] }),
      'source 0 needs',
    ],
  ]
  test.each(refused)('refused: %s', (_, change, reason) => {
    expect(() => decodeState(JSON.stringify(change(valid())))).toThrow(reason)
  })

  test('older files of this version are read: no pid, stats without `lines` or `late`', () => {
    const o = valid()
    delete o.pid
    o.sources[0].stats = { linesSplit: 1, truncations: 2, pendingBytes: 3, lastActivity: 4 }
    const state = decodeState(JSON.stringify(o))
    expect(state.pid).toBeUndefined()
    expect(state.sources[0]?.stats).toEqual({
      lines: 0,
      linesSplit: 1,
      truncations: 2,
      pendingBytes: 3,
      lastActivity: 4,
    })
  })

  test('the birth time of a source is kept; one no stat gives (0, negative, not a number) is dropped, the source kept', () => {
    const o = valid()
    o.sources[0].born = 1_796_586_486_895.3994
    expect(decodeState(JSON.stringify(o)).sources[0]?.born).toBe(1_796_586_486_895.3994)
    for (const bad of [0, -5, '12', null]) {
      o.sources[0].born = bad
      const [source] = decodeState(JSON.stringify(o)).sources
      expect(source).toBeDefined()
      expect(source && 'born' in source).toBe(false)
    }
  })

  test('stats that are not all counts are dropped, the source kept', () => {
    const o = valid()
    o.sources[0].stats = {
      lines: 1,
      linesSplit: -1,
      truncations: 0,
      pendingBytes: 0,
      lastActivity: 0,
    }
    expect(decodeState(JSON.stringify(o)).sources[0]).toEqual({
      path: '/a',
      dev: 1,
      ino: 5,
      head: 'YQ==',
      offset: 2,
    })
  })
})

describe('planOutput', () => {
  const id = fc.record({ dev: fc.integer({ min: 1, max: 3 }), ino: fc.integer({ min: 1, max: 3 }) })
  test('property: cut back only the same file, and only when at least as long as recorded', () => {
    fc.assert(
      fc.property(id, count, fc.option(fc.tuple(id, count)), (rid, rsize, now) => {
        const recorded = { path: '/o', ...rid, size: rsize }
        const plan = planOutput(recorded, now && { ...now[0], size: now[1] })
        const same = now !== null && now[0].dev === rid.dev && now[0].ino === rid.ino
        if (same && now[1] >= rsize) expect(plan).toEqual({ kind: 'truncate', size: rsize })
        else expect(plan.kind).toBe('at-least-once')
      }),
    )
  })

  test('the reasons given', () => {
    const rec = { path: '/o', dev: 1, ino: 2, size: 10 }
    expect(planOutput(null, null)).toEqual({ kind: 'fresh' })
    expect(planOutput(rec, null)).toEqual({
      kind: 'at-least-once',
      why: 'the output is gone (deleted or moved away)',
    })
    expect(planOutput(rec, { dev: 1, ino: 3, size: 10 })).toEqual({
      kind: 'at-least-once',
      why: 'the output was replaced by another file',
    })
    expect(planOutput(rec, { dev: 1, ino: 2, size: 10 })).toEqual({ kind: 'truncate', size: 10 })
    expect(planOutput(rec, { dev: 1, ino: 2, size: 9 })).toEqual({
      kind: 'at-least-once',
      why: 'the output is shorter than recorded (9 < 10 bytes)',
    })
  })
})

describe('the state file on disk', () => {
  let dir: string
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'logmerge-checkpoint-'))
  })
  afterEach(() => rmSync(dir, { recursive: true, force: true }))

  test('defaultStatePath: beside the output, hidden; in $STATE_DIRECTORY (its first entry) under systemd; none for stdout', () => {
    expect(defaultStatePath('/var/log/all.log', {})).toBe('/var/log/.all.log.logmerge-state.json')
    expect(defaultStatePath('/var/log/all.log', { STATE_DIRECTORY: '/var/lib/a:/var/lib/b' })).toBe(
      '/var/lib/a/all.log.logmerge-state.json',
    )
    expect(defaultStatePath('-', { STATE_DIRECTORY: '/x' })).toBeNull()
  })

  test('loadState: none, ok, bad (with the reason)', async () => {
    const path = join(dir, 'state.json')
    expect(loadState(path)).toEqual({ kind: 'none' })
    await saveState(path, encodeState(null, [], new Date(0)))
    expect(loadState(path).kind).toBe('ok')
    writeFileSync(path, '{"format":"logmerge-state","version":1,"sour')
    expect(loadState(path)).toEqual({
      kind: 'bad',
      reason: 'not valid JSON (a torn or corrupted file)',
    })
    expect(loadState(dir)).toMatchObject({
      kind: 'bad',
      reason: expect.stringMatching(/^cannot read it: /),
    })
  })

  test('saveState replaces the file whole and leaves no temporary file', async () => {
    const path = join(dir, 'state.json')
    for (let i = 0; i < 5; i++) await saveState(path, `${'x'.repeat(i * 1000)}\n`)
    expect(readFileSync(path, 'utf8')).toBe(`${'x'.repeat(4000)}\n`)
    expect(readdirSync(dir)).toEqual(['state.json'])
  })

  test('removeLeftTemps removes the temporary files of interrupted saves, and nothing else', async () => {
    const path = join(dir, 'state.json')
    await saveState(path, 'kept\n')
    // What replaceFile leaves when killed between its write and its rename.
    for (const name of ['state.json.1244590116', 'state.json.25934542'])
      writeFileSync(join(dir, name), 'half a state')
    const others = [
      'state.json.bad-2026-04-30T123456789Z',
      'state.json.1x',
      'statexjson.12',
      'a.12',
    ]
    for (const name of others) writeFileSync(join(dir, name), 'not ours')
    expect(removeLeftTemps(path).sort()).toEqual(['state.json.1244590116', 'state.json.25934542'])
    expect(readdirSync(dir).sort()).toEqual([...others, 'state.json'].sort())
    expect(readFileSync(path, 'utf8')).toBe('kept\n')
    expect(removeLeftTemps(join(dir, 'no-such-dir', 'state.json'))).toEqual([])
  })

  test('quarantine moves the file aside under a dated name', async () => {
    const path = join(dir, 'state.json')
    writeFileSync(path, 'garbage')
    const aside = await quarantine(path, new Date('2026-04-30T12:34:56.789Z'))
    expect(aside).toBe(`${path}.bad-2026-04-30T123456789Z`)
    expect(readdirSync(dir)).toEqual(['state.json.bad-2026-04-30T123456789Z'])
    expect(readFileSync(aside, 'utf8')).toBe('garbage')
  })
})
