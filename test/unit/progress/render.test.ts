import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  etaSeconds,
  formatBytesPair,
  formatCount,
  formatDuration,
  type ProgressState,
  progressFraction,
  renderProgress,
} from '../../../src/progress/render.js'

const MiB = 1024 * 1024
const half: ProgressState = {
  doneBytes: 256 * MiB,
  totalBytes: 512 * MiB,
  lines: 2_410_000,
  elapsedMs: 1000,
}

describe('renderProgress', () => {
  it('shows the bar, percentage, bytes, rate and time left on a wide terminal', () => {
    const line = renderProgress(half, 80)
    expect(line).toBe(
      `[${'#'.repeat(15)}${'-'.repeat(14)}]  50.0%  256.0/512.0 MiB  2.41M lines/s  ETA 0:01`,
    )
    expect(line.length).toBe(80)
  })

  it('drops the ETA, then the rate, then the bytes, then the bar as the width shrinks', () => {
    expect(renderProgress(half, 60)).toBe(
      `[${'#'.repeat(10)}${'-'.repeat(9)}]  50.0%  256.0/512.0 MiB  2.41M lines/s`,
    )
    expect(renderProgress(half, 45)).toBe(
      `[${'#'.repeat(10)}${'-'.repeat(9)}]  50.0%  256.0/512.0 MiB`,
    )
    expect(renderProgress(half, 20)).toBe(`[${'#'.repeat(6)}${'-'.repeat(5)}]  50.0%`)
    expect(renderProgress(half, 10)).toBe(' 50.0%')
    expect(renderProgress(half, 3)).toBe('50.')
    expect(renderProgress(half, 0)).toBe('')
  })

  it('never exceeds the width, and the bar fills with the fraction done', () => {
    fc.assert(
      fc.property(
        fc.nat({ max: 2 ** 40 }),
        fc.nat({ max: 2 ** 40 }),
        fc.nat({ max: 1e9 }),
        fc.nat({ max: 1e8 }),
        fc.integer({ min: 0, max: 300 }),
        (doneBytes, totalBytes, lines, elapsedMs, width) => {
          const state = { doneBytes, totalBytes, lines, elapsedMs }
          const line = renderProgress(state, width)
          expect(line.length).toBeLessThanOrEqual(width)
          expect(line).not.toMatch(/[\r\n]/)
          const bar = /^\[(#*)(-*)\]/.exec(line)
          if (bar) {
            const cells = (bar[1]?.length ?? 0) + (bar[2]?.length ?? 0)
            expect(bar[1]?.length).toBe(Math.round(progressFraction(state) * cells))
          }
        },
      ),
      { numRuns: 1000 },
    )
  })

  it('treats nothing to do as done, and more than the total as done', () => {
    expect(renderProgress({ doneBytes: 0, totalBytes: 0, lines: 0, elapsedMs: 0 }, 80)).toMatch(
      /100\.0%.*ETA 0:00$/,
    )
    expect(progressFraction({ doneBytes: 10, totalBytes: 5, lines: 1, elapsedMs: 1 })).toBe(1)
  })
})

describe('pieces', () => {
  it('estimates the time left from the average rate', () => {
    expect(etaSeconds(half)).toBe(1)
    expect(etaSeconds({ ...half, doneBytes: 128 * MiB, elapsedMs: 2000 })).toBe(6)
    expect(etaSeconds({ ...half, doneBytes: 0 })).toBeNull()
    expect(renderProgress({ ...half, doneBytes: 0 }, 80)).toMatch(/ETA --:--$/)
  })

  it('formats durations, counts and sizes', () => {
    expect(formatDuration(0)).toBe('0:00')
    expect(formatDuration(59.2)).toBe('1:00')
    expect(formatDuration(3725)).toBe('1:02:05')
    expect(formatCount(950)).toBe('950')
    expect(formatCount(12_345)).toBe('12.3k')
    expect(formatCount(4_560_000)).toBe('4.56M')
    expect(formatBytesPair(512, 1000)).toBe('512/1000 B')
    expect(formatBytesPair(1536, 4096)).toBe('1.5/4.0 KiB')
    expect(formatBytesPair(3 * 1024 ** 3, 4 * 1024 ** 3)).toBe('3.0/4.0 GiB')
  })
})
