/**
 * The config file on the real bin/logmerge: several jobs in one daemon, flags laid over a
 * one-job file, relative paths, `check-config`, and bad files refused with the file, the key
 * path and what is allowed (exit 2), before anything is written.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect } from 'vitest'
import {
  completeLines,
  expectMerged,
  Journal,
  ROOT,
  runLogmerge,
  spawnLogmerge,
  stop,
  test,
  uniqueLines,
  waitFor,
  waitForAll,
} from './helpers.js'

/** Short intervals keep the suite fast; one reader thread for the thread engines (2 cores). */
const FAST = { pollInterval: 100, checkpointInterval: 50, threads: 1 }

const writeJson = (path: string, value: unknown): string => {
  writeFileSync(path, `${JSON.stringify(value, null, 2)}\n`)
  return path
}

/** stderr's non-empty lines. */
const linesOf = (text: string): string[] => text.split('\n').filter(Boolean)

/** Three jobs, each two inputs of its own, on three engines; files created in `tmp`. */
function threeJobs(tmp: string, extra: Record<string, unknown> = {}) {
  const names = ['web', 'db', 'sys'] as const
  const engines = ['async', 'threads', 'top-down']
  for (const name of names) {
    for (const i of [1, 2]) writeFileSync(join(tmp, `${name}${i}.log`), '')
  }
  const config = {
    ...FAST,
    logLevel: 'info',
    from: 'start',
    ...extra,
    jobs: names.map((name, i) => ({
      name,
      engine: engines[i],
      inputs: [`${name}1.log`, `${name}2.log`], // relative to the config file's directory
      output: `out/${name}.log`,
    })),
  }
  mkdirSync(join(tmp, 'out'))
  return { names, path: writeJson(join(tmp, 'logmerge.json'), config) }
}

describe('several jobs in one daemon', () => {
  test('three jobs: each output gets exactly its own inputs, SIGTERM drains all, status shows all', async ({
    tmp,
  }) => {
    const { names, path } = threeJobs(tmp, { stateDirectory: 'state' })
    mkdirSync(join(tmp, 'state'))
    // Started from another directory: the file's relative paths are relative to the file.
    const lm = spawnLogmerge(['--config', path], { cwd: ROOT })
    const journals = new Map(names.map((n) => [n, new Journal()]))
    for (let round = 0; round < 3; round++) {
      for (const name of names) {
        for (const i of [1, 2]) {
          const file = join(tmp, `${name}${i}.log`)
          journals.get(name)?.append(file, uniqueLines(`${name}${i}-r${round}`, 40))
        }
      }
      await Promise.all(
        names.map((n) =>
          waitForAll(join(tmp, 'out', `${n}.log`), journals.get(n)?.all ?? [], { proc: lm }),
        ),
      )
    }
    // "ready" comes once every job has saved its first checkpoint; with --from start the lines
    // can reach the outputs before that (an fsync on a busy disk took seconds in CI), and a
    // SIGTERM before "ready" rightly never says it (systemd would see a failed start).
    await waitFor(() => lm.stderr().includes('ready: following'), { proc: lm, what: 'ready' })
    await stop(lm)
    for (const name of names) {
      expectMerged(completeLines(join(tmp, 'out', `${name}.log`)), journals.get(name) as Journal)
    }
    // One state file per job, in the file's stateDirectory.
    for (const name of names) {
      expect(existsSync(join(tmp, 'state', `${name}.log.logmerge-state.json`))).toBe(true)
    }
    const stderr = linesOf(lm.stderr())
    expect(stderr, lm.stderr()).toContain('logmerge: info: ready: following: 3 jobs (web, db, sys)')
    expect(stderr).toContain('logmerge: info: SIGTERM: draining and stopping')

    // `status --config`: every job's state, found through the file alone.
    const all = await runLogmerge(['status', '--config', path])
    expect(all.code, all.stderr).toBe(0)
    const text = all.stdout.toString('utf8')
    for (const name of names) {
      expect(text).toMatch(new RegExp(`^job ${name}$`, 'm'))
      expect(text).toContain(join(tmp, `${name}1.log`))
    }
    const one = await runLogmerge(['status', '--config', path, '--job', 'db', '--json'])
    expect(one.code, one.stderr).toBe(0)
    const parsed = JSON.parse(one.stdout.toString('utf8')) as {
      job: string
      status: { output: { path: string } }
    }[]
    expect(parsed.map((p) => [p.job, p.status.output.path])).toEqual([
      ['db', join(tmp, 'out', 'db.log')],
    ])
    const none = await runLogmerge(['status', '--config', path, '--job', 'nope'])
    expect(none.code).toBe(2)
    expect(none.stderr).toContain('has no job named nope (its jobs: web, db, sys)')
  })

  test("a job's diagnostics carry its name", async ({ tmp }) => {
    const { path } = threeJobs(tmp, { from: 'end' })
    const config = JSON.parse(readFileSync(path, 'utf8'))
    config.jobs[1].inputs.push('not-yet.log') // warned about: it does not exist yet
    writeJson(path, config)
    const lm = spawnLogmerge(['--config', path], { cwd: tmp })
    await waitFor(() => /ready/.test(lm.stderr()), { proc: lm, what: 'ready' })
    await stop(lm)
    const warned = linesOf(lm.stderr()).filter((l) => l.includes('not-yet.log'))
    expect(warned.length, lm.stderr()).toBeGreaterThanOrEqual(1)
    for (const line of warned) expect(line).toMatch(/^logmerge: db: warn: /)
  })

  test('a job that fails stops the others (drained) and the daemon exits with its code', async ({
    tmp,
  }) => {
    const { path } = threeJobs(tmp)
    const journal = new Journal()
    journal.append(join(tmp, 'web1.log'), uniqueLines('before', 20))
    // Job sys runs on top-down: its reader thread fails (the test-only fault hook) at start.
    const run = await runLogmerge(['--config', path], {
      cwd: tmp,
      env: { LOGMERGE_FAULT: 'throw:sys1.log' },
    })
    expect(run.code, run.stderr).toBe(5)
    const stderr = linesOf(run.stderr)
    expect(
      stderr.some((l) => /^logmerge: sys: error: .*sys1\.log/.test(l)),
      run.stderr,
    ).toBe(true)
    expect(stderr).toContain(
      'logmerge: error: job sys failed (exit 5): stopping the other jobs; they resume from their checkpoints when logmerge is started again',
    )
    // The healthy job was drained: what it had read is in its output, its state saved.
    expectMerged(completeLines(join(tmp, 'out', 'web.log')), journal)
    expect(existsSync(join(tmp, 'out', '.web.log.logmerge-state.json'))).toBe(true)
  })

  test('--once jobs: the exit status is the most severe job status (3 beats 0)', async ({
    tmp,
  }) => {
    const { path } = threeJobs(tmp, { once: true })
    const config = JSON.parse(readFileSync(path, 'utf8'))
    config.jobs[0].inputs.push('missing.log')
    writeJson(path, config)
    writeFileSync(join(tmp, 'db1.log'), 'db-line\n')
    const run = await runLogmerge(['--config', path], { cwd: tmp })
    expect(run.code, run.stderr).toBe(3)
    expect(run.stderr).toMatch(
      /^logmerge: web: error: could not read 1 input\(s\): .*missing\.log/m,
    )
    expect(completeLines(join(tmp, 'out', 'db.log'))).toEqual(['db-line'])
  })
})

describe('flags and the file', () => {
  test('a one-job file: flags override its keys, input paths its inputs', async ({ tmp }) => {
    writeFileSync(join(tmp, 'a.log'), 'a-1\na-2\n')
    writeFileSync(join(tmp, 'b.log'), 'b-1\n')
    const path = writeJson(join(tmp, 'one.json'), {
      inputs: ['a.log'],
      output: 'from-file.log',
      once: true,
    })
    const asIs = await runLogmerge(['--config', path], { cwd: ROOT })
    expect(asIs.code, asIs.stderr).toBe(0)
    expect(completeLines(join(tmp, 'from-file.log'))).toEqual(['a-1', 'a-2'])

    // Relative flag paths are relative to the working directory, as always.
    const over = await runLogmerge(['--config', path, '-o', 'from-flag.log', 'b.log'], { cwd: tmp })
    expect(over.code, over.stderr).toBe(0)
    expect(completeLines(join(tmp, 'from-flag.log'))).toEqual(['b-1'])
    expect(completeLines(join(tmp, 'from-file.log'))).toEqual(['a-1', 'a-2']) // untouched
  })

  test('several jobs: a per-job flag is refused, naming it and the jobs; --log-level is not', async ({
    tmp,
  }) => {
    const { path } = threeJobs(tmp, { once: true })
    const refused = await runLogmerge(['--config', path, '--engine', 'threads'], { cwd: tmp })
    expect(refused.code).toBe(2)
    const lines = linesOf(refused.stderr)
    expect(lines.length, refused.stderr).toBe(1)
    expect(lines[0]).toMatch(/^logmerge: error: --engine cannot be used with .*logmerge\.json/)
    expect(lines[0]).toContain('3 jobs (web, db, sys)')
    expect(existsSync(join(tmp, 'out', 'web.log'))).toBe(false) // nothing started

    const inputs = await runLogmerge(['--config', path, 'web1.log'], { cwd: tmp })
    expect(inputs.code).toBe(2)
    expect(inputs.stderr).toMatch(/^logmerge: error: input paths cannot be used with /)

    const allowed = await runLogmerge(['--config', path, '--log-level', 'error'], { cwd: tmp })
    expect(allowed).toMatchObject({ code: 0, stderr: '' }) // info lines silenced by the flag
  })
})

describe('check-config', () => {
  test('a good file: exit 0, one line per job', async ({ tmp }) => {
    const { path } = threeJobs(tmp)
    const run = await runLogmerge(['check-config', path], { cwd: ROOT })
    expect(run).toMatchObject({ code: 0, stderr: '' })
    const lines = linesOf(run.stdout.toString('utf8'))
    expect(lines).toHaveLength(4)
    expect(lines[0]).toBe(
      `job web: ${join(tmp, 'web1.log')} ${join(tmp, 'web2.log')} -> ${join(tmp, 'out', 'web.log')} (follow from start, engine async, order arrival, format raw, state ${join(tmp, 'out', '.web.log.logmerge-state.json')})`,
    )
    expect(lines[1]).toMatch(/^job db: .* \(follow from start, engine threads, /)
    expect(lines[2]).toMatch(/^job sys: .* \(follow from start, engine top-down, /)
    expect(lines[3]).toBe(`${path}: ok, 3 jobs`)
    expect(existsSync(join(tmp, 'out', 'web.log'))).toBe(false) // it only checks
  })

  test('the shipped example config is valid', async () => {
    const run = await runLogmerge(['check-config', join(ROOT, 'deploy', 'config.example.json')])
    expect(run.code, run.stderr).toBe(0)
    expect(linesOf(run.stdout.toString('utf8')).filter((l) => l.startsWith('job '))).toHaveLength(3)
  })

  test('the time-order and format keys (issue 5) are checked and accepted', async ({ tmp }) => {
    const path = writeJson(join(tmp, 'reserved.json'), {
      inputs: ['a.log'],
      output: 'out.log',
      order: 'time',
      format: 'json',
      labels: { web: 'a.log' },
      timestampFormat: 'iso',
      timestampZone: 'local',
      reorderWindow: 500,
      progress: false,
    })
    const run = await runLogmerge(['check-config', path])
    expect(run.code, run.stderr).toBe(0)
    expect(run.stdout.toString('utf8')).toMatch(/order time, format json/)
    const bad = writeJson(join(tmp, 'bad.json'), { inputs: ['a.log'], timestampFormat: 'iso8601' })
    const refused = await runLogmerge(['check-config', bad])
    expect(refused.code).toBe(2)
    expect(refused.stderr).toMatch(/timestampFormat: expected one of "auto", "iso"/)
  })
})

interface Bad {
  readonly what: string
  readonly config: unknown
  /** Every line must name the file; these must each appear on some line. */
  readonly expected: readonly string[]
}

const BAD: readonly Bad[] = [
  {
    what: 'an unknown key, with the nearest one',
    config: { inputs: ['a.log'], outptu: 'x.log' },
    expected: ['outptu: unknown key (did you mean "output"?)'],
  },
  {
    what: 'a flag spelt as on the command line',
    config: { jobs: [{ inputs: ['a.log'], output: 'x.log', 'max-line-bytes': 4096 }] },
    expected: ['jobs[0].max-line-bytes: unknown key (did you mean "maxLineBytes"?)'],
  },
  {
    what: 'an unknown key nothing is near: the allowed keys listed',
    config: { inputs: ['a.log'], colour: true },
    expected: ['colour: unknown key (allowed here: name, inputs, output,'],
  },
  {
    what: 'wrong types',
    config: {
      jobs: [
        { inputs: 'a.log', output: 'x.log' },
        { inputs: ['a.log'], output: 7, threads: 'four', once: 'yes' },
      ],
    },
    expected: [
      'jobs[0].inputs: expected a non-empty list of files, directories or globs',
      'jobs[1].output: expected a non-empty string, got 7',
      'jobs[1].threads: expected an integer >= 1 (threads), got "four"',
      'jobs[1].once: expected true or false, got "yes"',
    ],
  },
  {
    what: 'values out of range or not allowed',
    config: {
      inputs: ['a.log'],
      output: 'x.log',
      engine: 'fibers',
      maxLineBytes: 'lots',
      pollInterval: 1.5,
      format: 'xml',
      reorderWindow: -1,
    },
    expected: [
      'engine: expected one of "async", "threads", "top-down", "bottom-up", got "fibers"',
      'maxLineBytes: expected an integer number of bytes >= 1024, or a string like "64k" or "1M", got "lots"',
      'pollInterval: expected an integer >= 10 (milliseconds), got 1.5',
      'format: expected one of "raw", "prefix", "json", got "xml"',
      'reorderWindow: expected an integer >= 0 (milliseconds), got -1',
    ],
  },
  {
    what: 'missing inputs',
    config: {
      jobs: [
        { name: 'a', inputs: ['a.log'], output: 'a.out' },
        { name: 'b', output: 'b.out' },
      ],
    },
    expected: ['jobs[1].inputs: missing: each job needs "inputs"'],
  },
  {
    what: 'a daemon key inside a job',
    config: { jobs: [{ inputs: ['a.log'], output: 'x.log', logLevel: 'debug' }] },
    expected: ['jobs[0].logLevel: allowed only at the top level of the file'],
  },
  {
    what: 'two jobs writing one output',
    config: {
      jobs: [
        { name: 'a', inputs: ['a.log'], output: 'same.log' },
        { name: 'b', inputs: ['b.log'], output: 'same.log' },
      ],
    },
    expected: ['jobs[1].output: ', 'same.log is also the output of jobs[0] ("a")'],
  },
  {
    what: "an output that is another job's input",
    config: {
      jobs: [
        { name: 'a', inputs: ['a.log'], output: 'a.out' },
        { name: 'b', inputs: ['*.out'], output: 'b.merged' },
      ],
    },
    expected: ['jobs[0].output: ', 'a.out is an input of jobs[1] ("b") (matched by input'],
  },
  {
    what: 'two jobs sharing a state file',
    config: {
      jobs: [
        { name: 'a', inputs: ['a.log'], output: 'a.out', state: 'shared.json' },
        { name: 'b', inputs: ['b.log'], output: 'b.out', state: 'shared.json' },
      ],
    },
    expected: ['jobs[1].state: ', 'shared.json is also the state file of jobs[0] ("a")'],
  },
  {
    what: 'two jobs with one name',
    config: {
      jobs: [
        { name: 'a', inputs: ['a.log'], output: 'a.out' },
        { name: 'a', inputs: ['b.log'], output: 'b.out' },
      ],
    },
    expected: ['jobs[1].name: "a" is already the name of jobs[0]'],
  },
  {
    what: 'an empty jobs list',
    config: { jobs: [] },
    expected: ['jobs: expected a non-empty list of job objects, got []'],
  },
  {
    what: 'not JSON',
    config: '{\n  "inputs": ["a.log"],\n  "output": "x.log",\n}\n',
    expected: ['not valid JSON at line 4, column 1'],
  },
]

describe('bad config files: exit 2, every problem named by file and key path', () => {
  test.for(BAD)('$what', async ({ config, expected }, { tmp }) => {
    const path = join(tmp, 'bad.json')
    writeFileSync(path, typeof config === 'string' ? config : JSON.stringify(config, null, 2))
    for (const args of [
      ['check-config', path],
      ['--config', path],
    ]) {
      const run = await runLogmerge(args, { cwd: tmp })
      expect(run.code, `${args[0]}: ${run.stderr}`).toBe(2)
      expect(run.stdout.length).toBe(0)
      const lines = linesOf(run.stderr)
      expect(lines.length).toBeGreaterThanOrEqual(1)
      for (const line of lines) expect(line).toMatch(new RegExp(`^logmerge: error: ${path}: `))
      for (const fragment of expected) {
        expect(
          lines.some((l) => l.includes(fragment)),
          `"${fragment}" in:\n${run.stderr}`,
        ).toBe(true)
      }
      expect(run.stderr).not.toMatch(/^\s+at /m) // no stack trace
    }
  })

  test('a config file that cannot be read: exit 2, naming it', async ({ tmp }) => {
    const missing = join(tmp, 'nope.json')
    const run = await runLogmerge(['--config', missing])
    expect(run.code).toBe(2)
    expect(linesOf(run.stderr)).toEqual([
      `logmerge: error: cannot read config file ${missing}: no such file or directory (ENOENT) (give the path of a JSON config file; docs/service.md shows one)`,
    ])
  })
})
