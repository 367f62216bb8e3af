/**
 * recover's choices at start-up, on real files: no state, a bad one (moved aside), one of
 * another output (moved aside), and for a good one what happens to the output: cut back to the
 * recorded size (exactly once), or left as it is with a warning (at-least-once) when it is
 * shorter, replaced or gone. And the two ways the followers and writers take the sources back.
 */
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { type Level, levelLogger } from '../../../src/log.js'
import { encodeState } from '../../../src/state/checkpoint.js'
import { recover, resumeMark, toRemembered } from '../../../src/state/recover.js'
import type { SourceState } from '../../../src/tail/source-state.js'

let dir: string
let out: string
let statePath: string
let said: [Level, string][]
const log = levelLogger('debug', (level, message) => said.push([level, message]))
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'logmerge-recover-'))
  out = join(dir, 'out.log')
  statePath = join(dir, 'out.state.json')
  said = []
})
afterEach(() => rmSync(dir, { recursive: true, force: true }))

const sources: SourceState[] = [
  {
    path: '/logs/a.log',
    dev: 1,
    ino: 10,
    head: Buffer.from('a first').toString('base64'),
    offset: 7,
  },
]
const startedAt = new Date('2026-05-01T10:00:00.000Z')

/** The output with `text`, and a state that recorded it at `size` bytes. */
function checkpointed(text: string, size: number, path = out): void {
  writeFileSync(out, text)
  const { dev, ino } = statSync(out)
  writeFileSync(statePath, encodeState({ path, dev, ino, size }, sources, startedAt))
}

describe('no usable state: a fresh start', () => {
  test('no state file', async () => {
    expect(await recover(statePath, out, log)).toEqual({ sources: [], previousStart: null })
    expect(said).toEqual([])
  })

  test.each([
    ['a torn file', '{"format": "logmerge-st', 'not valid JSON (a torn or corrupted file)'],
    [
      'a newer version',
      JSON.stringify({ format: 'logmerge-state', version: 99, sources: [] }),
      'written by a newer logmerge (state version 99, this one reads 1)',
    ],
  ])(
    '%s: moved aside with the documented warning, the output untouched',
    async (_, text, reason) => {
      writeFileSync(out, 'keep me\n')
      writeFileSync(statePath, text)
      expect(await recover(statePath, out, log)).toEqual({ sources: [], previousStart: null })
      const [aside] = readdirSync(dir).filter((n) => n.startsWith('out.state.json.bad-'))
      expect(aside).toBeDefined()
      expect(readFileSync(join(dir, aside as string), 'utf8')).toBe(text)
      expect(existsSync(statePath)).toBe(false)
      expect(said).toEqual([
        [
          'warn',
          `state file ${statePath} is unusable (${reason}); moved it to ${join(dir, aside as string)} and starting afresh`,
        ],
      ])
      expect(readFileSync(out, 'utf8')).toBe('keep me\n')
    },
  )

  test("another output's state: moved aside, the output untouched", async () => {
    checkpointed('0123456789', 4, '/elsewhere/other.log')
    expect(await recover(statePath, out, log)).toEqual({ sources: [], previousStart: null })
    expect(said).toHaveLength(1)
    expect(said[0]?.[1]).toMatch(
      new RegExp(
        `^state file ${statePath} belongs to output /elsewhere/other.log, not ${out}; moved it to ${statePath}\\.bad-\\S+ and starting afresh$`,
      ),
    )
    expect(readFileSync(out, 'utf8')).toBe('0123456789')
  })
})

describe('the same output, at least as long as recorded: exactly once', () => {
  test('longer: cut back to the recorded size, and every source resumes at its offset', async () => {
    checkpointed('line 1\nline 2\n', 7)
    const got = await recover(statePath, out, log)
    expect(readFileSync(out, 'utf8')).toBe('line 1\n')
    expect(got).toEqual({ sources, previousStart: startedAt.getTime() })
    expect(said).toEqual([
      [
        'info',
        `output ${out}: dropping 7 bytes written after the last checkpoint; they are read again`,
      ],
    ])
  })

  test('property: the output ends up exactly the recorded size, its first bytes kept', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 200 }), fc.nat(), async (text, cut) => {
        const bytes = Buffer.from(text)
        const size = cut % (bytes.length + 1)
        checkpointed(text, size)
        said = []
        await recover(statePath, out, log)
        expect(readFileSync(out).equals(bytes.subarray(0, size))).toBe(true)
        // Nothing to say when nothing is dropped.
        expect(said.length).toBe(size < bytes.length ? 1 : 0)
      }),
      { numRuns: 50 },
    )
  })
})

describe('at-least-once: the output cannot be cut back to the checkpoint', () => {
  const warning = (why: string) => [
    ['warn', `${why}: lines written after the last checkpoint may appear twice`],
  ]

  test('shorter than recorded (truncated by someone): left as it is', async () => {
    checkpointed('line 1\nline 2\n', 14)
    truncateSync(out, 3)
    const got = await recover(statePath, out, log)
    expect(readFileSync(out, 'utf8')).toBe('lin')
    expect(said).toEqual(warning('the output is shorter than recorded (3 < 14 bytes)'))
    expect(got.sources).toEqual(sources)
  })

  test('replaced by another file: that file is left as it is', async () => {
    checkpointed('line 1\nline 2\n', 7)
    renameSync(out, join(dir, 'old.log'))
    writeFileSync(out, 'someone else wrote this\n')
    await recover(statePath, out, log)
    expect(readFileSync(out, 'utf8')).toBe('someone else wrote this\n')
    expect(said).toEqual(warning('the output was replaced by another file'))
  })

  test('gone', async () => {
    checkpointed('line 1\n', 7)
    rmSync(out)
    const got = await recover(statePath, out, log)
    expect(existsSync(out)).toBe(false)
    expect(said).toEqual(warning('the output is gone (deleted or moved away)'))
    expect(got.sources).toEqual(sources)
  })

  test('stdout: a state without an output (nothing to cut) is used as it is', async () => {
    writeFileSync(statePath, encodeState(null, sources, startedAt))
    expect(await recover(statePath, '-', log)).toEqual({
      sources,
      previousStart: startedAt.getTime(),
    })
    expect(said).toEqual([])
  })
})

test('a start time that cannot be read: no previous start (no generation is taken for new)', async () => {
  checkpointed('x\n', 2)
  const o = JSON.parse(readFileSync(statePath, 'utf8'))
  writeFileSync(statePath, JSON.stringify({ ...o, startedAt: 'yesterday' }))
  expect((await recover(statePath, out, log)).previousStart).toBeNull()
})

test('toRemembered and resumeMark: the recorded offset with the recorded fingerprint, bytes for base64', () => {
  const [s] = sources as [SourceState]
  const withStats = {
    ...s,
    stats: { lines: 3, linesSplit: 1, truncations: 2, pendingBytes: 0, lastActivity: 9 },
  }
  expect(toRemembered([withStats])).toEqual([
    {
      identity: { dev: 1, ino: 10 },
      head: Buffer.from('a first'),
      offset: 7,
      path: '/logs/a.log',
      counts: { lines: 3, linesSplit: 1, truncations: 2 },
    },
  ])
  expect(resumeMark(s)).toEqual({ key: '1:10', offset: 7, head: Buffer.from('a first') })
})
