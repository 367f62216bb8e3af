/**
 * The selftest's judge on crafted outputs: the expected counts below are worked out by hand from
 * the output each test builds, not computed by the code under test.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { checkOutput, outOfPlace, type WrittenStream } from '../../../src/selftest/check.js'
import { lineFor, parseLine } from '../../../src/selftest/lines.js'

/** Output text from [writer, seq, generation] triples, one line each. */
const output = (lines: readonly (readonly [number, number, number])[], extra = ''): Buffer =>
  Buffer.from(lines.map(([w, s, g]) => `${lineFor(w, s, g)}\n`).join('') + extra, 'latin1')

/** w0: lines 0-9, generation 1 from line 5 (a rename). */
const W0: WrittenStream = { writer: 0, count: 10, generationStarts: [0, 5], race: [] }
/**
 * w1: lines 0-5, generation 1 from line 5 (a copytruncate); lines 3 and 4 were written between
 * the copy and the truncate; line 2 went into the old file after a rename-like late write.
 */
const W1: WrittenStream = {
  writer: 1,
  count: 6,
  generationStarts: [0, 5],
  race: [{ from: 3, to: 5 }],
  late: [{ from: 2, to: 3 }],
}

describe('checkOutput', () => {
  it('finds nothing wrong in a complete, ordered output, whatever the interleaving of writers', () => {
    const out = output([
      [0, 0, 0],
      [1, 0, 0],
      [0, 1, 0],
      [0, 2, 0],
      [1, 1, 0],
      [1, 2, 0],
      [0, 3, 0],
      [0, 4, 0],
      [1, 5, 1],
      [0, 5, 1],
      [0, 6, 1],
      [0, 7, 1],
      [0, 8, 1],
      [0, 9, 1],
    ])
    const r = checkOutput(out, [W0, W1])
    expect(r).toMatchObject({
      outputLines: 14,
      written: 16,
      delivered: 14,
      lost: 0,
      duplicated: 0,
      outOfOrder: { withinGeneration: 0, acrossGenerations: 0, lateWritesAcrossGenerations: 0 },
      corrupt: 0,
      // Lines 3 and 4 of w1 were in neither file: missing, but not lost by logmerge.
      copytruncateRace: { written: 2, lost: 2, delivered: 0 },
      held: true,
    })
  })

  it('counts one lost, one duplicated, one out of order in each sense, and corrupt lines', () => {
    const out = output(
      [
        [0, 0, 0],
        [0, 1, 0],
        [0, 3, 0],
        [0, 2, 0], // out of order within w0's generation 0 (one line out of place)
        [0, 4, 0],
        [0, 5, 1],
        [0, 6, 1],
        // w0 line 7 lost
        [0, 8, 1],
        [0, 9, 1],
        [0, 6, 1], // duplicated
        [1, 0, 0],
        [1, 1, 0],
        [1, 5, 1],
        [1, 2, 0], // generation 0 after generation 1: out of order across generations (late)
        [1, 3, 0], // the same; a race line logmerge read before the truncate; race line 4 lost
        [0, 3, 1], // w0 line 3 was written into generation 0, not 1: corrupt
        [7, 0, 0], // no writer 7: corrupt
      ],
      `${lineFor(0, 1, 0).slice(0, -1)}x\nselftest w0 9 g1 `, // a torn line, and no final newline
    )
    const r = checkOutput(out, [W0, W1])
    expect(r).toMatchObject({
      outputLines: 19,
      written: 16,
      lost: 1,
      duplicated: 1,
      outOfOrder: { withinGeneration: 1, acrossGenerations: 2, lateWritesAcrossGenerations: 1 },
      corrupt: 4,
      copytruncateRace: { written: 2, lost: 1, delivered: 1 },
      held: false,
    })
    expect(r.incidents).toEqual({
      lost: 1,
      duplicated: 1,
      withinGeneration: 1,
      acrossGenerations: 1,
    })
    expect(r.examples.lost).toEqual([{ writer: 0, generation: 1, from: 7, to: 7 }])
    expect(r.examples.duplicated).toEqual([{ writer: 0, generation: 1, from: 6, to: 6 }])
    expect(r.examples.acrossGenerations).toEqual([{ writer: 1, generation: 0, from: 2, to: 3 }])
    expect(r.examples.corrupt.at(-1)).toMatch(/no newline at the end of the output/)
    expect(r.streams.map((s) => [s.writer, s.lost, s.duplicated])).toEqual([
      [0, 1, 1],
      [1, 0, 0],
    ])
  })

  it('counts every extra copy of a line, and a missing run of lines line by line', () => {
    const lines: [number, number, number][] = [0, 1, 2, 3, 4].map((s) => [0, s, 0])
    lines.push([0, 2, 0], [0, 2, 0], [0, 8, 1], [0, 9, 1])
    const r = checkOutput(output(lines), [W0])
    expect(r.duplicated).toBe(2)
    expect(r.lost).toBe(3) // 5, 6, 7
    expect(r.examples.lost).toEqual([{ writer: 0, generation: 1, from: 5, to: 7 }])
    expect(r.incidents).toMatchObject({ lost: 1, duplicated: 1 })
    // Repeats are duplicates, not disorder.
    expect(r.outOfOrder.withinGeneration).toBe(0)
  })

  it('calls an empty output of a run that wrote lines all lost', () => {
    const r = checkOutput(Buffer.alloc(0), [W0])
    expect(r).toMatchObject({ outputLines: 0, lost: 10, held: false })
  })
})

describe('outOfPlace', () => {
  it('names the fewest lines whose removal leaves the rest increasing', () => {
    expect(outOfPlace([])).toEqual([])
    expect(outOfPlace([1, 2, 3])).toEqual([])
    expect(outOfPlace([1, 2, 5, 3, 4, 6])).toEqual([5])
    expect(outOfPlace([3, 2, 1])).toHaveLength(2)
    expect(outOfPlace([10, 1, 2, 3])).toEqual([10])
  })

  it('leaves an increasing sequence whose length is the longest possible (brute force)', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 0, max: 50 }), { maxLength: 9 }), (seqs) => {
        const out = new Set(outOfPlace(seqs))
        const kept = seqs.filter((s) => !out.has(s))
        expect(kept).toEqual([...kept].sort((a, b) => a - b))
        expect(kept.length).toBe(longestIncreasing(seqs))
      }),
    )
  })
})

describe('lines', () => {
  it('reads back what it writes, and rejects a line with one letter changed', () => {
    const line = lineFor(3, 12345, 7)
    expect(parseLine(line)).toEqual({ writer: 3, seq: 12345, generation: 7 })
    const changed = `${line.slice(0, -1)}${line.endsWith('a') ? 'b' : 'a'}`
    expect(parseLine(changed)).toBeNull()
    expect(parseLine(line.replace(' g7 ', ' g8 '))).toBeNull()
    expect(parseLine(`${line}${line}`)).toBeNull()
  })
})

/** Longest strictly increasing subsequence by trying every subset (small inputs only). */
function longestIncreasing(seqs: readonly number[]): number {
  let best = 0
  for (let mask = 0; mask < 1 << seqs.length; mask++) {
    const picked = seqs.filter((_, i) => mask & (1 << i))
    if (picked.every((v, i) => i === 0 || v > (picked[i - 1] as number)))
      best = Math.max(best, picked.length)
  }
  return best
}
