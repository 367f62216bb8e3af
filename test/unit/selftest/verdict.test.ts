/** The run's verdict: the check's counts and the processes' endings, one sentence each. */
import { describe, expect, it } from 'vitest'
import { checkOutput } from '../../../src/selftest/check.js'
import { lineFor } from '../../../src/selftest/lines.js'
import { failuresOf } from '../../../src/selftest/verdict.js'

const written = [{ writer: 0, count: 2, generationStarts: [0], race: [] }]
const clean = checkOutput(Buffer.from(`${lineFor(0, 0, 0)}\n${lineFor(0, 1, 0)}\n`), written)
const cleanExit = { code: 0, signal: null, timedOut: false }

describe('failuresOf', () => {
  it('has nothing to say when every line is there and logmerge exited 0 at SIGTERM', () => {
    expect(clean.held).toBe(true)
    expect(
      failuresOf(clean, { unexpectedExits: [], finalExit: cleanExit, stopTimeoutMs: 1 }),
    ).toEqual([])
  })

  it('fails a run whose output is right but whose logmerge died by itself or ended badly', () => {
    const died = [{ code: null, signal: 'SIGXFSZ' as const, start: 3, afterMs: 120 }]
    expect(
      failuresOf(clean, { unexpectedExits: died, finalExit: cleanExit, stopTimeoutMs: 1 }),
    ).toEqual(['logmerge exited by itself 1 time(s) (first: SIGXFSZ after 120 ms of start 3)'])
    expect(
      failuresOf(clean, {
        unexpectedExits: [],
        finalExit: { code: 6, signal: null, timedOut: false },
        stopTimeoutMs: 1,
      }),
    ).toEqual(['logmerge exited with code 6 at SIGTERM (expected: drain and exit 0)'])
    expect(
      failuresOf(clean, {
        unexpectedExits: [],
        finalExit: { code: null, signal: 'SIGKILL', timedOut: true },
        stopTimeoutMs: 60_000,
      }),
    ).toEqual(['logmerge did not exit within 60 s of SIGTERM'])
    expect(failuresOf(clean, { unexpectedExits: [], finalExit: null, stopTimeoutMs: 1 })).toEqual([
      'logmerge was not running at the end',
    ])
  })

  it('names each kind of bad line', () => {
    const bad = checkOutput(Buffer.from(`${lineFor(0, 1, 0)}\n${lineFor(0, 1, 0)}\nx\n`), written)
    expect(
      failuresOf(bad, { unexpectedExits: [], finalExit: cleanExit, stopTimeoutMs: 1 }),
    ).toEqual([
      '1 line(s) lost',
      '1 line(s) duplicated',
      '1 corrupt or unknown line(s) in the output',
    ])
  })
})
