import { describe, expect, test } from 'vitest'
import { Generations } from '../../../src/fleet/generations.js'
import { HostFiles } from '../../../src/fleet/host-files.js'

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

describe('after a restart whose checkpoint is behind (acknowledgements lost)', () => {
  const h = (s: string) => head(`${s} ${'.'.repeat(64)}`).subarray(0, 64)

  test("the start-up checkpoint keeps the last run's generations the files hold: each resumes in its own", () => {
    // Run 1: a.log (1:1) checkpointed at 850 in C0; C0 was published to its end, copied to
    // a.log.1 and truncated, and C1..C7 were published and copied in turn (a.log.2 ..), none
    // of it acknowledged; then SIGKILL.
    const g = new Generations('r1')
    const c0 = g.begin('1:1', 0, h('C0'), '/a.log', 'a.log').gen
    const later = [1, 2, 3, 4, 5, 6, 7].map(
      (i) => g.begin('1:1', 0, h(`C${i}`), '/a.log', 'a.log').gen,
    )
    const saved = g.save(new Map([['1:1', c0.id]]))
    // Run 2: the readers resume a.log (now C8) at 0, the copy of C0 at 850 (the copied file's
    // checkpoint) and the copies of C1..C6 at 0; C7 is a.log.7. The start-up checkpoint comes
    // before anything is read.
    const back = new Generations('r2', saved)
    const files = new HostFiles(back)
    const notes: [string, number, Buffer][] = [
      ['1:1', 0, h('C8')],
      ['1:10', 850, h('C0')],
      ...later.map((_, i): [string, number, Buffer] => [`1:1${i + 1}`, 0, h(`C${i + 1}`)]),
    ]
    const currentOf = new Map<string, string | null>()
    for (const [key, offset, first] of notes) {
      currentOf.set(key, files.note({ key, offset, head: first })?.id ?? null)
    }
    const again = new Generations('r3', back.save(currentOf))
    expect(again.get(c0.id)).toBeDefined()
    for (const c of later) expect(again.get(c.id)).toBeDefined()
    // And the bytes read next go out under the last run's ids.
    expect(files.place({ key: '1:10', offset: 1000, head: h('C0') }, 150)).toMatchObject({
      gen: { id: c0.id },
      start: 850,
      fresh: false,
    })
    for (const [i, c] of later.entries()) {
      expect(
        files.place({ key: `1:1${i + 1}`, offset: 700, head: h(`C${i + 1}`) }, 700).gen.id,
      ).toBe(c.id)
    }
  })

  test('generations begun after the checkpointed one stay when a copy took it to its own key', () => {
    // a.log (1:1) checkpointed in C0; the rest of C0 read from its copy (1:2), which takes C0
    // to the copy's key; C1..C7 begun on a.log since.
    const g = new Generations('r1')
    const c0 = g.begin('1:1', 0, h('C0'), '/a.log', 'a.log').gen
    expect(g.begin('1:2', 300, h('C0'), '/a.log.1', 'a.log').gen.id).toBe(c0.id)
    const later = [1, 2, 3, 4, 5, 6, 7].map(
      (i) => g.begin('1:1', 0, h(`C${i}`), '/a.log', 'a.log').gen,
    )
    const saved = g.save(new Map([['1:1', c0.id]]))
    for (const c of later) expect(saved.map((s) => s.id)).toContain(c.id)
  })
})
