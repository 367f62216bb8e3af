/**
 * `logmerge selftest`, a bounded run for every engine: 4 s of writers, rotations of every kind,
 * permission flips, output failures and a SIGKILL about every second, against the real
 * bin/logmerge. Two questions per engine, from one run:
 * - did the selftest do what it says, and does its report agree with the files it leaves
 *   (counted here independently of its checker: every line still on disk in an input file, and
 *   every repeated line in the output)?
 * - did logmerge keep its promise (exit 0: nothing lost, duplicated or out of order)?
 */
import { chmod, mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { formatReport, type SelftestReport } from '../../src/selftest/report.js'
import { ENGINES, type Ran, runLogmerge } from './helpers.js'

const SEED = Number(process.env.LOGMERGE_SEED ?? 20261124)

interface Run {
  readonly ran: Ran
  readonly report: SelftestReport
  readonly dir: string
}

describe.each(ENGINES)('engine %s', (engine) => {
  let root: string
  let run: Run

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), `logmerge-e2e-selftest-${engine}-`))
    // Under root the selftest runs logmerge as nobody, who must reach the run's directory.
    await chmod(root, 0o755)
    const dir = join(root, 'run')
    const ran = await runLogmerge([
      'selftest',
      '--engine',
      engine,
      '--duration',
      '4s',
      '--kill-every',
      '1s',
      '--seed',
      String(SEED),
      '--dir',
      dir,
      '--json',
    ])
    let report: SelftestReport
    try {
      report = JSON.parse(ran.stdout.toString('utf8')) as SelftestReport
    } catch {
      throw new Error(`no JSON report (exit ${ran.code}):\n${ran.stdout}\n${ran.stderr}`)
    }
    run = { ran, report, dir }
  }, 180_000)

  afterAll(async () => {
    if (root) await rm(root, { recursive: true, force: true })
  })

  it(`runs every fault against a real logmerge and reports what its files show (seed ${SEED})`, async () => {
    const { ran, report, dir } = run
    expect(ran.stderr).toBe('') // no process warnings, no progress lines off a terminal
    expect(ran.code).toBe(report.exitCode)
    expect(report.engine).toBe(engine)
    expect(report.ok).toBe(report.failures.length === 0)
    // It did what it says: kills, both rotations that never wait, lines from every writer.
    const ex = report.exercised
    expect(ex.kills).toBeGreaterThanOrEqual(2)
    expect(ex.starts).toBeGreaterThan(ex.kills)
    expect(ex.rotations.rename.done).toBeGreaterThanOrEqual(1)
    expect(ex.rotations.copytruncate.done).toBeGreaterThanOrEqual(1)
    expect(ex.rotations.truncate.done + ex.rotations.truncate.skipped).toBeGreaterThanOrEqual(1)
    expect(report.check.streams.every((s) => s.written > 0)).toBe(true)
    expect(report.logmerge.stderr.counts.nodeWarnings).toBe(0)

    // Independent of the checker: the output's lines, and every line still in an input file.
    const outputText = await readFile(join(dir, 'out', 'out.log'), 'latin1')
    const output = lines(outputText)
    const partialLast = outputText.length > 0 && !outputText.endsWith('\n') ? 1 : 0
    expect(report.check.outputLines).toBe(output.length + partialLast)
    if (report.check.corrupt === 0) {
      expect(report.check.duplicated).toBe(output.length - new Set(output).size)
    }
    const inOutput = new Set(output)
    const onDisk: string[] = []
    for (const name of await readdir(join(dir, 'in'))) {
      onDisk.push(...lines(await readFile(join(dir, 'in', name), 'latin1')))
    }
    const missing = onDisk.filter((l) => !inOutput.has(l))
    // Lines still on disk that are not in the output are lost, and the report must say so
    // (it may count more: lines of truncated files are no longer on disk).
    expect(report.check.lost).toBeGreaterThanOrEqual(missing.length)
    expect(onDisk.length).toBeGreaterThan(0)
  })

  it('logmerge kept its promise: nothing lost, duplicated or out of order', async () => {
    const { ran, report, dir } = run
    // On a failure, what logmerge said (rotations seen, searches, restarts) goes with the
    // report: a CI machine keeps nothing else of the run.
    const said = ok(report)
      ? ''
      : `\nlogmerge's stderr, last 150 lines:\n${(await readFile(join(dir, 'logmerge.stderr.log'), 'utf8').catch((e: Error) => e.message)).split('\n').slice(-150).join('\n')}`
    const summary = {
      failures: report.failures,
      lost: report.check.lost,
      duplicated: report.check.duplicated,
      outOfOrder: report.check.outOfOrder,
      corrupt: report.check.corrupt,
      examples: report.check.examples,
    }
    expect(summary, formatReport(report) + said).toMatchObject({
      failures: [],
      lost: 0,
      duplicated: 0,
      outOfOrder: { withinGeneration: 0, acrossGenerations: 0 },
      corrupt: 0,
    })
    expect(ran.code).toBe(0)
  })
})

/** The verdict the test below checks, in one word. */
function ok(report: SelftestReport): boolean {
  return (
    report.failures.length === 0 &&
    report.check.lost === 0 &&
    report.check.duplicated === 0 &&
    report.check.corrupt === 0 &&
    report.check.outOfOrder.withinGeneration === 0 &&
    report.check.outOfOrder.acrossGenerations === 0
  )
}

/** Complete lines of a text (a last line without newline left out). */
function lines(text: string): string[] {
  const end = text.lastIndexOf('\n')
  return end < 0 ? [] : text.slice(0, end).split('\n')
}
