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

  test('a new file with other first bytes, or another start, gets a fresh id', () => {
    const g = new Generations('r1')
    const a = g.begin('1:1', 0, head('banner'), '/a.log', 'a.log')
    const back = new Generations('r2', g.save(new Map([['1:1', null]])))
    expect(back.begin('1:3', 0, head('other'), '/b.log', 'b.log').fresh).toBe(true)
    expect(back.begin('1:3', 100, head('banner'), '/b.log', 'b.log').fresh).toBe(true)
    expect(back.begin('1:1', 0, head('banner and more'), '/a.log', 'a.log').gen.id).toBe(a.gen.id)
  })
})
