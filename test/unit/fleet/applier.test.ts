import { describe, expect, test } from 'vitest'
import { Applier, genKey, newerRun } from '../../../src/fleet/applier.js'
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

  test('run ids order by their start time', () => {
    expect(newerRun('mabc1234ff', 'mabc1233zz')).toBe(true)
    expect(newerRun('mabc1233zz', 'mabc1234ff')).toBe(false)
  })
})
