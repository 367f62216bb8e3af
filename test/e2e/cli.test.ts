/**
 * The command line of the real bin/logmerge: help, version, usage errors, and --once.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect } from 'vitest'
import { buildProgram } from '../../src/cli.js'
import { BIN, ENGINES, ROOT, runLogmerge, test } from './helpers.js'

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }

/** The options users rely on (README, --help); the program may add more, never drop these. */
const DOCUMENTED = [
  '--output',
  '--once',
  '--from',
  '--engine',
  '--max-line-bytes',
  '--poll-interval',
  '--read-chunk',
  '--log-level',
  '--version',
  '--help',
]

const FIXTURES = readdirSync(join(ROOT, 'fixtures'))
  .filter((f) => f.endsWith('.log'))
  .map((f) => join('fixtures', f))

const sortedLines = (text: string): string[] => text.split('\n').slice(0, -1).sort()

const fixtureLines = (): string[] =>
  sortedLines(FIXTURES.map((f) => readFileSync(join(ROOT, f), 'latin1')).join(''))

describe('help and version', () => {
  test('--help lists every option, examples and exit codes', async () => {
    const run = await runLogmerge(['--help'])
    expect(run.code).toBe(0)
    expect(run.stderr).toBe('')
    const help = run.stdout.toString('utf8')
    expect(help).toMatch(/^Usage: logmerge /)
    const registered = buildProgram().options.map((o) => o.long ?? o.short ?? '')
    for (const flag of new Set([...DOCUMENTED, ...registered])) expect(help).toContain(flag)
    for (const engine of ENGINES) expect(help).toContain(engine)
    expect(help).toMatch(/^Examples:$/m)
    expect(help).toMatch(/^Exit codes:$/m)
    for (const code of [0, 1, 2, 3, 4]) expect(help).toMatch(new RegExp(`^\\s+${code}\\s+\\S`, 'm'))
  })

  test.for(['--help', 'selftest --help', 'status --help'])(
    '%s into a pipe its reader closed first (| head): exit 0, no stack trace',
    async (args) => {
      const child = spawn(process.execPath, [BIN, ...args.split(' ')], {
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      child.stdout.destroy() // the reader is gone before the help is written: EPIPE
      let stderr = ''
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString()
      })
      const [code] = (await once(child, 'close')) as [number | null]
      expect({ code, stderr }).toEqual({ code: 0, stderr: '' })
    },
  )

  test("--version prints package.json's version", async () => {
    const run = await runLogmerge(['--version'])
    expect(run).toMatchObject({ code: 0, stderr: '' })
    expect(run.stdout.toString('utf8')).toBe(`${pkg.version}\n`)
  })
})

describe('usage errors', () => {
  test.for([
    { what: 'an unknown flag', args: ['--no-such-flag', 'a.log'], names: '--no-such-flag' },
    { what: 'a fractional size', args: ['--max-line-bytes', '12.5', 'a.log'], names: '12.5' },
    { what: 'a size below the minimum', args: ['--max-line-bytes', '100', 'a.log'], names: '100' },
    { what: 'an unknown --from', args: ['--from', 'middle', 'a.log'], names: 'middle' },
    { what: 'an unknown engine', args: ['--engine', 'nope', 'a.log'], names: 'nope' },
    { what: 'no input', args: ['--once'], names: 'input' },
    { what: 'an unknown --format', args: ['--format', 'xml', 'a.log'], names: 'xml' },
    { what: 'a --label without NAME=', args: ['--label', 'a.log', 'a.log'], names: '--label' },
    {
      what: 'an unknown --timestamp-format',
      args: ['--order', 'time', '--timestamp-format', 'nope', 'a.log'],
      names: 'nope',
    },
    { what: 'a negative --reorder-window', args: ['--reorder-window', '-5', 'a.log'], names: '-5' },
    {
      what: '--order time on a locked-writer engine',
      args: ['--order', 'time', '--engine', 'threads', 'a.log'],
      names: 'threads',
    },
  ])('$what: exit 2 with a one-line error', async ({ args, names }, { tmp }) => {
    const run = await runLogmerge(args, { cwd: tmp })
    expect(run.code).toBe(2)
    expect(run.stdout.length).toBe(0)
    const lines = run.stderr.split('\n').filter(Boolean)
    expect(lines.length, run.stderr).toBeGreaterThanOrEqual(1)
    expect(lines.length, run.stderr).toBeLessThanOrEqual(2) // the error, and at most a hint
    expect(lines[0]).toMatch(/^logmerge: error: /)
    expect(lines[0]).toContain(names)
    expect(run.stderr).not.toMatch(/^\s+at /m) // no stack trace
  })
})

describe.each(ENGINES)('engine %s: --once', (engine) => {
  test('the fixtures as separate arguments: the same lines, each once', async () => {
    const run = await runLogmerge(['--engine', engine, '--once', ...FIXTURES])
    expect(run).toMatchObject({ code: 0, stderr: '' })
    expect(sortedLines(run.stdout.toString('latin1'))).toEqual(fixtureLines())
  })

  test("the fixtures as a quoted glob ('fixtures/*.log')", async () => {
    const run = await runLogmerge(['--engine', engine, '--once', 'fixtures/*.log'])
    expect(run).toMatchObject({ code: 0, stderr: '' })
    expect(sortedLines(run.stdout.toString('latin1'))).toEqual(fixtureLines())
  })

  test('a missing input: the others are merged, exit 3', async ({ tmp }) => {
    const missing = join(tmp, 'missing.log')
    const run = await runLogmerge(['--engine', engine, '--once', ...FIXTURES, missing])
    expect(run.code).toBe(3)
    expect(sortedLines(run.stdout.toString('latin1'))).toEqual(fixtureLines())
    expect(run.stderr).toContain(missing)
    expect(run.stderr).toMatch(/^logmerge: (warn|error): /)
  })
})
