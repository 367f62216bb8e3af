/**
 * The pacer: the first change after a quiet spell is read at once; while changes keep coming,
 * they fold into one read every foldMs; a read made for any reason takes a read put off.
 */
import fc from 'fast-check'
import { describe, expect, test } from 'vitest'
import { Pacer } from '../../../src/tail/pacer.js'

const f = { name: 'a.log' }
const g = { name: 'b.log' }

describe('Pacer', () => {
  test('a first change, and one after a quiet spell, are read at once', () => {
    const p = new Pacer<object>(5)
    expect(p.changed(f, 100)).toBe(true)
    p.reading(f, 100)
    expect(p.changed(f, 106)).toBe(true)
    expect(p.nextIn(106)).toBeNull()
  })

  test('changes within foldMs of a read wait for one read, due foldMs after it', () => {
    const p = new Pacer<object>(5)
    p.reading(f, 100)
    expect(p.changed(f, 101)).toBe(false)
    expect(p.changed(f, 102)).toBe(false) // folded into the same read
    expect(p.pending).toBe(1)
    expect(p.nextIn(102)).toBe(3)
    expect(p.takeDue(104)).toEqual([])
    expect(p.takeDue(105)).toEqual([f])
    expect(p.pending).toBe(0)
  })

  test('a read made meanwhile (a look at the name, the drain) takes the read put off', () => {
    const p = new Pacer<object>(5)
    p.reading(f, 100)
    p.changed(f, 101)
    p.reading(f, 103)
    expect(p.takeDue(200)).toEqual([])
  })

  test('files are paced apart; forget drops a read put off', () => {
    const p = new Pacer<object>(5)
    p.reading(f, 100)
    p.reading(g, 102)
    p.changed(f, 101)
    p.changed(g, 103)
    expect(p.nextIn(103)).toBe(2)
    p.forget(f)
    expect(p.takeDue(110)).toEqual([g])
  })

  test('foldMs 0 reads every change at once', () => {
    const p = new Pacer<object>(0)
    p.reading(f, 100)
    expect(p.changed(f, 100)).toBe(true)
  })

  test('property: reads are at least foldMs apart, and none is put off longer than foldMs', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 20 }), { maxLength: 200 }), (gaps) => {
        const foldMs = 5
        const p = new Pacer<object>(foldMs)
        const reads: number[] = []
        let now = 0
        const read = (at: number) => {
          p.reading(f, at)
          reads.push(at)
        }
        for (const gap of gaps) {
          // The owner's timer: every read due before this change is made first.
          const next = p.nextIn(now)
          if (next !== null && now + next <= now + gap) {
            const at = now + next
            expect(p.takeDue(at)).toEqual([f])
            read(at)
          }
          now += gap
          if (p.changed(f, now)) read(now)
          // A change is read at once or by a read due within foldMs.
          const due = p.nextIn(now)
          if (due !== null) expect(due).toBeLessThanOrEqual(foldMs)
        }
        for (let i = 1; i < reads.length; i++)
          expect((reads[i] as number) - (reads[i - 1] as number)).toBeGreaterThanOrEqual(foldMs)
      }),
    )
  })
})
