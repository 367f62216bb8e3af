import { describe, expect, test } from 'vitest'
import { Generations } from '../../../src/fleet/generations.js'

const head = (s: string) => Buffer.from(s)

describe('generations', () => {
  test('a file resumes in the generation its checkpoint was in', () => {
    const g = new Generations('r1')
    const a = g.begin('1:1', 0, head('2026-01-01 first line'), '/a.log', 'a.log')
    expect(a.fresh).toBe(true)
    const saved = g.save(new Map([['1:1', a.gen.id]]))
    const back = new Generations('r2', saved)
    expect(back.resumed('1:1', head('2026-01-01 first line'))?.id).toBe(a.gen.id)
  })

  test('a generation begun after the checkpoint is found again by start and head', () => {
    const g = new Generations('r1')
    const old = g.begin('1:1', 0, head('old content'), '/a.log', 'a.log')
    const after = g.begin('1:1', 0, head('new content after a truncation'), '/a.log', 'a.log')
    // The checkpoint had the file in `old`; `after` was published in part, then SIGKILL.
    const back = new Generations('r2', g.save(new Map([['1:1', old.gen.id]])))
    expect(back.resumed('1:1', head('old content'))?.id).toBe(old.gen.id)
    const again = back.begin(
      '1:1',
      0,
      head('new content after a truncation, longer now'),
      '/a.log',
      'a.log',
    )
    expect(again).toEqual({ gen: expect.objectContaining({ id: after.gen.id }), fresh: false })
  })

  test('a copy read again from its start under its own key takes the generation it had', () => {
    const g = new Generations('r1')
    const old = g.begin('1:1', 0, head('C0'), '/a.log', 'a.log')
    const c1 = g.begin('1:1', 0, head('C1 published before the crash'), '/a.log', 'a.log')
    const back = new Generations('r2', g.save(new Map([['1:1', old.gen.id]])))
    back.resumed('1:1', head('C0'))
    // Truncated again while down: a.log holds C2 (fresh), the copy 1:2 holds C1.
    expect(back.begin('1:1', 0, head('C2 after the restart'), '/a.log', 'a.log').fresh).toBe(true)
    expect(
      back.begin('1:2', 0, head('C1 published before the crash'), '/a.log.1', 'a.log').gen.id,
    ).toBe(c1.gen.id)
  })

  test('every generation begun after the checkpointed one is kept, however many: copies read again take their ids', () => {
    // Publishing held (a full stream) while a.log was copied and truncated 10 times: the
    // checkpoint still has a.log in C0, C1..C10 were published, then SIGKILL.
    const g = new Generations('r1')
    const c0 = g.begin('1:1', 0, head('C0'), '/a.log', 'a.log')
    const later = Array.from({ length: 10 }, (_, i) =>
      g.begin('1:1', 0, head(`C${i + 1} published before the crash`), '/a.log', 'a.log'),
    )
    const back = new Generations('r2', g.save(new Map([['1:1', c0.gen.id]])))
    back.resumed('1:1', head('C0'))
    // After the restart the readers read each copy (a.log.1 .. a.log.10) from its start.
    for (const [i, c] of later.entries()) {
      const copy = back.begin(
        `1:${i + 2}`,
        0,
        head(`C${i + 1} published before the crash`),
        '/a.log.1',
        'a.log.1',
      )
      expect(copy).toEqual({ gen: expect.objectContaining({ id: c.gen.id }), fresh: false })
    }
  })

  test('of the generations begun before the checkpointed one, 4 are kept', () => {
    const g = new Generations('r1')
    const all = Array.from({ length: 10 }, (_, i) =>
      g.begin('1:1', 0, head(`C${i}`), '/a.log', 'a.log'),
    )
    const last = all[9]?.gen.id as string
    const saved = g.save(new Map([['1:1', last]]))
    expect(saved.map((s) => s.id)).toEqual(all.slice(5).map((a) => a.gen.id))
  })

  test('a new file with other first bytes, or another start, gets a fresh id', () => {
    const g = new Generations('r1')
    const a = g.begin('1:1', 0, head('banner'), '/a.log', 'a.log')
    const back = new Generations('r2', g.save(new Map([['1:1', null]])))
    expect(back.begin('1:3', 0, head('other'), '/b.log', 'b.log').fresh).toBe(true)
    expect(back.begin('1:3', 100, head('banner'), '/b.log', 'b.log').fresh).toBe(true)
    expect(back.begin('1:1', 0, head('banner and more'), '/a.log', 'a.log').gen.id).toBe(a.gen.id)
  })
})

describe('a copy read on from an offset (copytruncate)', () => {
  const first = head(`${'x'.repeat(60)} the first 64 bytes of C1, and more`)

  test('continues the generation whose head it has, when that one was current at the checkpoint', () => {
    const g = new Generations('r1')
    const c1 = g.begin('1:1', 0, first, '/a.log', 'a.log')
    // Checkpoint: a.log (1:1) at some offset of C1. Then SIGKILL; while down a.log is copied
    // to a.log.1 (1:2) and truncated; the readers read the copy on from a.log's offset 300.
    const back = new Generations('r2', g.save(new Map([['1:1', c1.gen.id]])))
    const copy = back.begin('1:2', 300, first, '/a.log.1', 'a.log')
    expect(copy).toEqual({ gen: expect.objectContaining({ id: c1.gen.id }), fresh: false })
  })

  test('while running: the rest of the copy is the same generation', () => {
    const g = new Generations('r1')
    const c1 = g.begin('1:1', 0, first, '/a.log', 'a.log')
    g.begin('1:1', 0, head('C2 after the truncation'), '/a.log', 'a.log')
    expect(g.begin('1:2', 500, first, '/a.log.1', 'a.log').gen.id).toBe(c1.gen.id)
  })

  test('a short head, other first bytes, or a generation starting later: a fresh id', () => {
    const g = new Generations('r1')
    g.begin('1:1', 0, first, '/a.log', 'a.log')
    g.begin('1:5', 400, head(`${'y'.repeat(64)}`), '/b.log', 'b.log')
    expect(g.begin('1:2', 300, first.subarray(0, 40), '/c.log', 'c.log').fresh).toBe(true)
    expect(g.begin('1:3', 300, head('z'.repeat(64)), '/c.log', 'c.log').fresh).toBe(true)
    expect(g.begin('1:4', 300, head('y'.repeat(64)), '/c.log', 'c.log').fresh).toBe(true)
    expect(g.begin('1:6', 0, first, '/d.log', 'd.log').fresh).toBe(true)
  })
})
