import { describe, expect, test } from 'vitest'
import { Applier, FORGET_ENDED_MS, genKey, newerRun } from '../../../src/fleet/applier.js'
import type { BatchMeta } from '../../../src/fleet/frame.js'

/** A message of `host` run `run` number `c` carrying lines [s, s + text.length) of gen g1. */
function msg(
  c: number,
  s: number,
  text: string,
  run = '0000000a',
  host = 'h',
): [BatchMeta, Buffer] {
  const data = Buffer.from(text)
  return [
    {
      v: 1,
      h: host,
      r: run,
      c,
      g: { g1: { p: '/a.log', l: 'a.log', o: 0 } },
      s: [{ g: 'g1', s, e: s + data.length, n: data.length }],
    },
    data,
  ]
}

/** What the applier writes of a sequence of messages, as text. */
function written(applier: Applier, messages: [BatchMeta, Buffer][]): string {
  let out = ''
  let seq = 1
  for (const [meta, data] of messages) {
    const v = applier.take(seq++, 0, meta, data)
    if (v.kind === 'apply') {
      for (const a of v.actions) if (a.kind === 'write') out += a.bytes.toString()
    }
  }
  return out
}

describe('applier', () => {
  test('a replay after a host restart is skipped or trimmed at the applied offset', () => {
    const a = new Applier(null)
    const out = written(a, [
      msg(0, 0, 'l1\nl2\n'),
      msg(1, 6, 'l3\n'),
      // The host restarted from its checkpoint at 3: a new run sends 3.. again, then more.
      msg(0, 3, 'l2\nl3\nl4\n', '0000000b'),
      msg(1, 12, 'l5\n', '0000000b'),
    ])
    expect(out).toBe('l1\nl2\nl3\nl4\nl5\n')
    expect(a.gens.get(genKey('h', 'g1'))?.applied).toBe(15)
  })

  test('a message ahead of one that failed is skipped; the resend in order is written', () => {
    const a = new Applier(null)
    const out = written(a, [
      msg(0, 0, 'l1\n'),
      msg(2, 6, 'l3\n'), // stored before 1 (a leader changed): skipped
      msg(1, 3, 'l2\n'),
      msg(2, 6, 'l3\n'), // sent again in order
    ])
    expect(out).toBe('l1\nl2\nl3\n')
  })

  test("a new run starts from its first message; the old run's late messages only dedupe", () => {
    const a = new Applier(null)
    a.stopAdopting()
    const out = written(a, [
      msg(0, 0, 'l1\n', '0000000a'),
      msg(3, 9, 'l4\n', '0000000b'), // a new run's later message before its first: skipped
      msg(0, 3, 'l2\n', '0000000b'),
      msg(1, 0, 'l1\nl2\n', '0000000a'), // the old run, stored late: nothing new
      msg(1, 6, 'l3\n', '0000000b'),
    ])
    expect(out).toBe('l1\nl2\nl3\n')
  })

  test('a centre without state adopts what the stream shows; with state it waits for number 0', () => {
    const adopting = new Applier(null)
    expect(written(adopting, [msg(5, 100, 'x\n')])).toBe('x\n')
    const known = new Applier({ hosts: new Map(), gens: new Map() })
    expect(written(known, [msg(5, 100, 'x\n')])).toBe('')
    // A state saved before the start-up replay was over goes on adopting.
    const resumed = new Applier({ hosts: new Map(), gens: new Map() }, undefined, true)
    expect(written(resumed, [msg(5, 100, 'x\n')])).toBe('x\n')
  })

  describe('a gap in a generation followed from its start is a loss, never silence', () => {
    /** A message of run `run` with segments of generation `id` (end marker: text null). */
    const seg = (run: string, c: number, id: string, s: number, text: string | null) => {
      const data = Buffer.from(text ?? '')
      const meta: BatchMeta = {
        v: 1,
        h: 'h',
        r: run,
        c,
        g: { [id]: { p: '/a.log', l: 'a.log', o: 0 } },
        s: [
          text === null
            ? { g: id, s, e: s, n: 0, x: 1 }
            : { g: id, s, e: s + data.length, n: data.length },
        ],
      }
      return [meta, data] as [BatchMeta, Buffer]
    }
    const A = 'mxchif850af4c2'
    const B = 'mxchj1ghf8a7c0'

    test("the soak's loss: a message that never came, the rest of its run skipped as early, the next run ending the generation past it", () => {
      const a = new Applier({ hosts: new Map(), gens: new Map() })
      const verdicts = [
        seg(A, 0, `${A}.0`, 0, 'l1\n'),
        // Number 1 (bytes 3-6), acknowledged to the host, never reaches the centre.
        seg(A, 2, `${A}.0`, 6, 'l3\n'),
        seg(A, 3, `${A}.1`, 0, 'm1\n'),
        // The host restarts at its checkpoint (every byte acknowledged): it lets A.0 go at 9
        // and goes on with A.1 from 3.
        seg(B, 0, `${A}.0`, 9, null),
        seg(B, 1, `${A}.1`, 3, 'm2\n'),
      ].map(([meta, data], i) => a.take(i + 1, 0, meta, data))
      expect(verdicts.map((v) => v.kind)).toEqual(['apply', 'early', 'early', 'lost', 'early'])
      const lost = verdicts[3]
      expect(lost?.kind === 'lost' && lost.gap).toEqual({
        host: 'h',
        id: `${A}.0`,
        path: '/a.log',
        from: 3,
        to: 9,
        early: { run: A, expected: 1, count: 2, firstSeq: 2, lastSeq: 3 },
      })
      // Nothing of the lost message was taken: the host is still at run A.
      expect(a.hosts.get('h')).toMatchObject({ run: A, next: 1 })
      expect(a.gens.get(genKey('h', `${A}.0`))).toMatchObject({ applied: 3, ended: false })
    })

    test('an end marker of a generation the centre never saw: a loss if its run began within the half hour, else perhaps one it forgot', () => {
      const began = Number.parseInt(A.slice(0, 8), 36)
      const at = (ms: number) =>
        new Applier({ hosts: new Map(), gens: new Map() }, undefined, false, false, () => ms)
      const take = (a: Applier) => {
        a.take(1, 0, ...seg(A, 0, `${A}.0`, 0, 'l1\n'))
        // Generation A.1 was published whole by run A, none of it came; B ends it at 7.
        return a.take(2, 0, ...seg(B, 0, `${A}.1`, 7, null)).kind
      }
      expect(take(at(began + 60_000))).toBe('lost')
      // Later the centre may have forgotten it (ended an hour ago, FORGET_ENDED_MS, give or take
      // the clocks): not a loss.
      expect(take(at(began + FORGET_ENDED_MS / 2 + 1))).toBe('apply')
    })

    test('bytes past the applied offset of a known generation', () => {
      const a = new Applier({ hosts: new Map(), gens: new Map() })
      expect(a.take(1, 0, ...seg(A, 0, `${A}.0`, 0, 'l1\n')).kind).toBe('apply')
      expect(a.take(2, 0, ...seg(B, 0, `${A}.0`, 6, 'l3\n')).kind).toBe('lost')
    })

    test("an older run's late message past a gap is skipped: the newer run fills the gap", () => {
      const a = new Applier({ hosts: new Map(), gens: new Map() })
      let out = ''
      const kinds = [
        seg(A, 0, `${A}.0`, 0, 'l1\n'),
        // A's number 1 (3-6) failed, its number 2 (6-9) was stored, late, after B's first.
        seg(B, 0, `${A}.1`, 0, 'm1\n'),
        seg(A, 2, `${A}.0`, 6, 'l3\n'),
        seg(B, 1, `${A}.0`, 3, 'l2\nl3\n'),
      ].map(([meta, data], i) => {
        const v = a.take(i + 1, 0, meta, data)
        if (v.kind === 'apply') for (const x of v.actions) if (x.kind === 'write') out += x.bytes
        return v.kind
      })
      // Not a loss (exit 9): the gap is the newer run's to fill, and it does.
      expect(kinds).toEqual(['apply', 'apply', 'stale', 'apply'])
      expect(out).toBe('l1\nm1\nl2\nl3\n')
    })

    test('with --nats-skip-lost it is said as a loss and the rest is written', () => {
      const said: [number, number, boolean][] = []
      const a = new Applier(
        { hosts: new Map(), gens: new Map() },
        (gap, lost) => said.push([gap.from, gap.to, lost]),
        false,
        true,
      )
      const out = written(a, [seg(A, 0, `${A}.0`, 0, 'l1\n'), seg(B, 0, `${A}.0`, 6, 'l3\n')])
      expect(out).toBe('l1\nl3\n')
      expect(said).toEqual([[3, 6, true]])
    })

    /** Run A's messages 0..n-1, a line each of generation A.0; `gone` never reach the centre. */
    const run = (n: number, gone: number[]) =>
      Array.from({ length: n }, (_, c) => c)
        .filter((c) => !gone.includes(c))
        .map((c) => seg(A, c, `${A}.0`, c * 3, `${String(c).padStart(2, '0')}\n`))

    test('number n of the run while n - 32 is still awaited: that one was acknowledged and is gone (missing), not skipped as early for ever', () => {
      const a = new Applier({ hosts: new Map(), gens: new Map() })
      const verdicts = run(40, [1]).map(([meta, data], i) => a.take(i + 1, 0, meta, data))
      // Numbers 2-32 may come before a resent number 1 (the host sends 33 only once 1 is
      // acknowledged): skipped as early. Number 33 proves 1 was stored and lost.
      expect(verdicts.slice(0, 32).map((v) => v.kind)).toEqual([
        'apply',
        ...Array(31).fill('early'),
      ])
      const v = verdicts[32]
      expect(v?.kind === 'missing' && v.missing).toEqual({
        host: 'h',
        run: A,
        expected: 1,
        got: 33,
        early: { run: A, expected: 1, count: 31, firstSeq: 2, lastSeq: 32 },
      })
      // Nothing of it taken: a centre started again meets it again.
      expect(a.hosts.get('h')).toMatchObject({ run: A, next: 1 })
    })

    test('numbers up to 31 past the awaited one are only early (a resend may still bring it)', () => {
      const a = new Applier({ hosts: new Map(), gens: new Map() })
      const kinds = run(33, [1]).map(([meta, data], i) => a.take(i + 1, 0, meta, data).kind)
      expect(kinds).not.toContain('missing')
      // The resend comes, then every later number again: all written once, in order.
      let out = ''
      for (const [meta, data] of run(33, []).slice(1)) {
        const v = a.take(100 + meta.c, 0, meta, data)
        if (v.kind === 'apply') for (const x of v.actions) if (x.kind === 'write') out += x.bytes
      }
      expect(out.split('\n').length - 1).toBe(32)
      expect(out.startsWith('01\n02\n')).toBe(true)
    })

    test('with --nats-skip-lost the wait is given up: said, and the gap it leaves said as a loss', () => {
      const missing: [number, number][] = []
      const gaps: [number, number, boolean][] = []
      const a = new Applier(
        { hosts: new Map(), gens: new Map() },
        (gap, lost) => gaps.push([gap.from, gap.to, lost]),
        false,
        true,
        Date.now,
        (m) => missing.push([m.expected, m.got]),
      )
      const out = written(a, run(40, [1]))
      expect(missing).toEqual([[1, 33]])
      expect(gaps).toEqual([[3, 99, true]])
      expect(out).toBe('00\n33\n34\n35\n36\n37\n38\n39\n')
    })

    test('a centre adopting a stream (no state) does not apply the rule', () => {
      const a = new Applier(null)
      const kinds = run(40, [1]).map(([meta, data], i) => a.take(i + 1, 0, meta, data).kind)
      expect(kinds).not.toContain('missing')
    })

    test('a generation begun before the centre took the host (no state, stream purged before) is not a loss', () => {
      const said: [number, number, boolean][] = []
      const a = new Applier(null, (gap, lost) => said.push([gap.from, gap.to, lost]))
      expect(written(a, [seg(B, 0, `${B}.0`, 0, 'x\n')])).toBe('x\n')
      a.stopAdopting()
      // Generation A.0 (an earlier run's) shows up only now, its first bytes purged long ago.
      expect(written(a, [seg(B, 1, `${A}.0`, 100, 'y\n')])).toBe('y\n')
      expect(said).toEqual([[0, 100, false]])
    })
  })

  test('run ids order by their start time', () => {
    expect(newerRun('mabc1234ff', 'mabc1233zz')).toBe(true)
    expect(newerRun('mabc1233zz', 'mabc1234ff')).toBe(false)
  })
})
