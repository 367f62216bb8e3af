/** How many inputs a reader may hold open, from the process's limit on open files. */
import { describe, expect, it } from 'vitest'
import { inputFileBudget, openFileLimit } from '../../../src/tail/fd-budget.js'

const limits = (soft: string) =>
  [
    'Limit                     Soft Limit           Hard Limit           Units     ',
    'Max processes             63451                63451                processes ',
    `Max open files            ${soft}                 1048576              files     `,
  ].join('\n')

describe('openFileLimit', () => {
  it('reads the soft limit from /proc/self/limits', () => {
    expect(openFileLimit(() => limits('64'))).toBe(64)
    expect(openFileLimit(() => limits('unlimited'))).toBe(Number.POSITIVE_INFINITY)
    expect(openFileLimit(() => 'nothing here')).toBe(Number.POSITIVE_INFINITY)
    expect(
      openFileLimit(() => {
        throw new Error('no /proc')
      }),
    ).toBe(Number.POSITIVE_INFINITY)
  })

  it('is this process’s limit here', () => {
    expect(openFileLimit()).toBeGreaterThan(0)
  })
})

describe('inputFileBudget', () => {
  it('leaves a reserve for the rest of the process and splits the remainder between readers', () => {
    expect(inputFileBudget(1, 64)).toBe(19) // 64 - (32 + 6 + 7)
    expect(inputFileBudget(2, 64)).toBe(6) // (64 - (32 + 12 + 7)) / 2
    expect(inputFileBudget(1, 1024)).toBe(883)
    expect(inputFileBudget(8, 1024)).toBe(105) // (1024 - (32 + 48 + 103)) / 8
    // The total stays under the limit for any number of readers.
    for (const readers of [1, 2, 4, 8, 16]) {
      for (const limit of [256, 1024, 65536]) {
        expect(readers * inputFileBudget(readers, limit)).toBeLessThan(limit)
      }
    }
  })

  it('never below a few per reader, and unbounded when the limit is', () => {
    expect(inputFileBudget(4, 20)).toBe(4)
    expect(inputFileBudget(1, Number.POSITIVE_INFINITY)).toBe(Number.POSITIVE_INFINITY)
  })
})
