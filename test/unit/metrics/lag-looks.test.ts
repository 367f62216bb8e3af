/**
 * The lag looks on real files: a bounded number of stats a round, the names behind and the
 * ones the writer moved first, every name in turn, and sums per label.
 */
import { appendFileSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { LAG_LOOKS, LagLooks } from '../../../src/metrics/lag-looks.js'
import { identityKey } from '../../../src/tail/cursor.js'

const dir = mkdtempSync(join(tmpdir(), 'logmerge-lag-looks-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('LagLooks', () => {
  it('finds a file behind among more names than a round looks at, then watches it every round', () => {
    const n = LAG_LOOKS * 2 + 10
    const names = Array.from({ length: n }, (_, i) => join(dir, `f${i}.log`))
    for (const p of names) writeFileSync(p, 'a line\n')
    // The writer has every file to its end but the last one, which it has not read at all.
    const offsets = new Map(names.map((p) => [identityKey(statSync(p)), 7]))
    const last = names[n - 1] as string
    offsets.set(identityKey(statSync(last)), 0)
    const looks = new LagLooks()
    for (const [i, p] of names.entries()) looks.add(p, i === n - 1 ? '/late' : '/others')
    const rounds: Map<string, { bytes: number; seconds: number }>[] = []
    for (let r = 0; r < 3; r++) rounds.push(looks.look(1000 * (r + 1), offsets))
    expect(rounds.map((c) => c.get('/late')?.bytes)).toEqual([undefined, undefined, 7])
    // From now on it is looked at first, whatever the round: more bytes and time show at once.
    appendFileSync(last, 'more\n')
    expect(looks.look(9000, offsets).get('/late')).toEqual({ bytes: 12, seconds: 6 })
    expect(looks.look(10_000, offsets).get('/late')).toEqual({ bytes: 12, seconds: 7 })
    // Read to its end: back to 0, said once.
    offsets.set(identityKey(statSync(last)), 12)
    expect(looks.look(11_000, offsets).get('/late')).toEqual({ bytes: 0, seconds: 0 })
    expect(looks.look(12_000, offsets).has('/late')).toBe(false)
  })

  it('looks first at a name the writer moved; sums bytes per label, the longest wait', () => {
    const a = join(dir, 'a.log')
    const b = join(dir, 'b.log')
    const fillers = Array.from({ length: LAG_LOOKS }, (_, i) => join(dir, `g${i}.log`))
    for (const p of [a, b, ...fillers]) writeFileSync(p, '')
    const offsets = new Map<string, number>()
    const looks = new LagLooks()
    for (const p of [...fillers, a, b]) looks.add(p, p === a || p === b ? '/ab' : '/g')
    expect(looks.look(0, offsets).size).toBe(0) // the fillers take the whole round
    writeFileSync(a, '0123456789\n')
    writeFileSync(b, '01234\n')
    looks.moved(a)
    looks.moved(b)
    expect(looks.look(1000, offsets).get('/ab')).toEqual({ bytes: 17, seconds: 0 })
    expect(looks.look(4000, offsets).get('/ab')).toEqual({ bytes: 17, seconds: 3 })
  })
})
