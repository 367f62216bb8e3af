import { writeFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { buildProgram } from '../../src/cli.js'
import { closest, KEYS, loadConfigFile } from '../../src/config-file.js'
import { worstOf } from '../../src/daemon.js'
import { ExitCode, LogmergeError } from '../../src/errors.js'
import { flagOf, resolveRun } from '../../src/jobs.js'

let dir = ''
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'logmerge-config-'))
})
afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

const file = (value: unknown): string => {
  const path = join(dir, 'c.json')
  writeFileSync(path, JSON.stringify(value))
  return path
}

/** The problems a file is refused with (without the file name each starts with). */
const problems = (value: unknown): string[] => {
  const path = file(value)
  try {
    resolveRun(loadConfigFile(path), { inputs: [] }, new Set())
  } catch (err) {
    if (!(err instanceof LogmergeError)) throw err
    expect(err.exitCode).toBe(ExitCode.usage)
    return err.problems.map((p) => p.replace(`${path}: `, ''))
  }
  return []
}

describe('closest', () => {
  const keys = Object.keys(KEYS)
  it('finds the flag spelling and small typos', () => {
    expect(closest('max-line-bytes', keys)).toBe('maxLineBytes')
    expect(closest('MAX_LINE_BYTES', keys)).toBe('maxLineBytes')
    expect(closest('outptu', keys)).toBe('output')
    expect(closest('input', keys)).toBe('inputs')
    expect(closest('engin', keys)).toBe('engine')
  })
  it('suggests nothing for a word far from every key', () => {
    expect(closest('colour', keys)).toBeNull()
    expect(closest('xy', keys)).toBeNull()
  })
})

describe('every flag has a key', () => {
  it("each of the program's options but --config, --version and --help is a config key", () => {
    const keys = new Set<string>(Object.keys(KEYS))
    for (const option of buildProgram().options) {
      const attribute = option.attributeName()
      if (['config', 'version'].includes(attribute)) continue
      // --label NAME=PATH (repeatable) is the object `labels`.
      const name = attribute === 'label' ? 'labels' : attribute
      expect(keys.has(name), `${option.long} -> ${name}`).toBe(true)
      // --no-state and --no-progress are the keys state (false) and progress (false).
      const long = option.negate ? option.long?.replace(/^--no-/, '--') : option.long
      expect(flagOf(name as never)).toBe(long)
    }
  })
})

describe('resolving a file', () => {
  it('top-level job keys are every job default; a job overrides them; paths from the file dir', () => {
    const run = resolveRun(
      loadConfigFile(
        file({
          engine: 'threads',
          threads: 3,
          maxLineBytes: '64k',
          logLevel: 'info',
          jobs: [
            { name: 'a', inputs: ['a/*.log'], output: 'out/a.log' },
            {
              name: 'b',
              inputs: ['/abs/b.log'],
              output: 'out/b.log',
              engine: 'async',
              state: false,
            },
          ],
        }),
      ),
      { inputs: [] },
      new Set(),
    )
    const [a, b] = run.jobs
    expect(run.logLevel).toBe('info')
    expect(a?.config).toMatchObject({
      engine: 'threads',
      threads: 3,
      maxLineBytes: 65536,
      output: join(dir, 'out', 'a.log'),
      statePath: join(dir, 'out', '.a.log.logmerge-state.json'),
      logLevel: 'info',
    })
    expect(a?.config.inputs[0]?.root).toBe(join(dir, 'a'))
    expect(b?.config).toMatchObject({ engine: 'async', threads: 3, statePath: null })
    expect(b?.config.inputs[0]?.root).toBe('/abs/b.log')
  })

  it('the reserved keys pass through into Config, paths resolved', () => {
    const run = resolveRun(
      loadConfigFile(
        file({
          inputs: ['a.log'],
          output: 'o.log',
          format: 'prefix',
          labels: { web: 'a.log' },
          timestampFormat: 'rfc3164',
          timestampZone: '+01:00',
          reorderWindow: 250,
          progress: false,
        }),
      ),
      { inputs: [] },
      new Set(),
    )
    expect(run.jobs[0]?.config).toMatchObject({
      format: 'prefix',
      labels: { web: join(dir, 'a.log') },
      timestampFormat: 'rfc3164',
      timestampZone: 60,
      reorderWindowMs: 250,
      progress: false,
    })
  })

  it('without those keys the Config has none of those fields', () => {
    const run = resolveRun(loadConfigFile(file({ inputs: ['a.log'] })), { inputs: [] }, new Set())
    const config = run.jobs[0]?.config ?? {}
    for (const key of ['format', 'labels', 'timestampFormat', 'reorderWindowMs']) {
      expect(key in config, key).toBe(false)
    }
  })

  it('collects every problem, each with its key path', () => {
    expect(
      problems({
        threads: 0,
        jobs: [{ inputs: [3], output: '' }, 'nope'],
      }),
    ).toEqual([
      'threads: expected an integer >= 1 (threads), got 0',
      'jobs[0].inputs[0]: expected a file, directory or glob (a string), got 3',
      'jobs[0].output: expected a non-empty string, got ""',
      'jobs[1]: expected a job object ({ "inputs": [...], ... }), got "nope"',
    ])
  })

  it('order time on a locked-writer engine names the job', () => {
    const found = problems({
      jobs: [{ inputs: ['a.log'], output: 'o', engine: 'threads', order: 'time' }],
    })
    expect(found).toHaveLength(1)
    expect(found[0]).toMatch(/^jobs\[0\]: `--order time` cannot run on the threads engine/)
  })

  it('a top-level file without inputs: missing, unless given on the command line', () => {
    expect(problems({ output: 'o.log' })).toEqual([
      'inputs: missing: each job needs "inputs", a list of files, directories or globs (or give them on the command line)',
    ])
    const run = resolveRun(
      loadConfigFile(file({ output: 'o.log' })),
      { inputs: ['x.log'] },
      new Set(['inputs']),
      '/somewhere',
    )
    expect(run.jobs[0]?.config.inputs[0]?.root).toBe('/somewhere/x.log')
  })

  it('a flag with a bad value is blamed on the flag, not on the file', () => {
    const path = file({ inputs: ['a.log'] })
    expect(() =>
      resolveRun(
        loadConfigFile(path),
        { inputs: [], maxLineBytes: '12' },
        new Set(['maxLineBytes']),
      ),
    ).toThrow(/^Expected `--max-line-bytes` to be an integer >= 1024, got `12`$/)
  })
})

describe('worstOf', () => {
  it('ranks a bug, then the output, a thread, usage, timeout, inputs, success', () => {
    expect(worstOf([])).toBe(ExitCode.ok)
    expect(worstOf([0, 3, 0])).toBe(3)
    expect(worstOf([3, 2])).toBe(2)
    expect(worstOf([2, 5])).toBe(5)
    expect(worstOf([5, 4, 3])).toBe(4)
    expect(worstOf([4, 1])).toBe(1)
  })
})
