/** Time flags (--checkpoint-interval, --poll-interval, --shutdown-timeout, --reorder-window). */
import { describe, expect, it } from 'vitest'
import { durationOption, parseDuration } from '../../src/config.js'

describe('parseDuration', () => {
  it('takes milliseconds, or a number with a unit', () => {
    expect(parseDuration('250')).toBe(250)
    expect(parseDuration('250ms')).toBe(250)
    expect(parseDuration('2s')).toBe(2000)
    expect(parseDuration('1.5s')).toBe(1500)
    expect(parseDuration('2m')).toBe(120_000) // not 2 MiB of milliseconds, as a size once read it
    expect(parseDuration('1h')).toBe(3_600_000)
    expect(parseDuration(' 3 s ')).toBe(3000)
  })

  it('is NaN for anything else', () => {
    for (const bad of ['', 's', '1k', '2M', '-5', '1e3', '5 sec', '1s2'])
      expect(parseDuration(bad)).toBeNaN()
  })
})

describe('durationOption', () => {
  it('falls back when unset and passes numbers from a config file through', () => {
    expect(durationOption('--poll-interval', undefined, 1000, 10)).toBe(1000)
    expect(durationOption('--poll-interval', 40, 1000, 10)).toBe(40)
  })

  it('names the flag, the minimum and the forms it takes', () => {
    expect(() => durationOption('--checkpoint-interval', '5ms', 1000, 10)).toThrow(
      'Expected `--checkpoint-interval` to be a time of at least 10 ms: milliseconds, or with a unit (500ms, 2s, 1m), got `5ms`',
    )
    expect(() => durationOption('--checkpoint-interval', '1k', 1000, 10)).toThrow(/got `1k`$/)
  })
})
