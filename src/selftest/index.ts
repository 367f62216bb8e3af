/**
 * `logmerge selftest`: a proof users can run on their own machine that logmerge keeps its
 * promise (every line exactly once, in order) through rotations, permission flips, output
 * failures and SIGKILLs. See docs/selftest.md.
 */
import { CommanderError } from 'commander'
import { LogmergeError } from '../errors.js'
import { parseSelftestArgs, type SelftestOptions } from './options.js'
import { formatReport } from './report.js'
import { runScenario } from './run.js'
import { SetupError } from './setup.js'

/** Exit codes of `logmerge selftest` (also in its --help and docs/selftest.md). */
export const SelftestExit = { held: 0, broken: 1, usage: 2, cannotRun: 3 } as const

/** Runs the selftest with `argv` (the words after `selftest`); returns the exit code. */
export async function runSelftest(argv: string[]): Promise<number> {
  let opts: SelftestOptions
  try {
    opts = parseSelftestArgs(argv)
  } catch (err) {
    if (err instanceof CommanderError) {
      const answered = err.code === 'commander.helpDisplayed' || err.code === 'commander.version'
      return answered ? SelftestExit.held : SelftestExit.usage
    }
    if (err instanceof LogmergeError) {
      process.stderr.write(`logmerge: error: ${err.message}${err.hint ? ` (${err.hint})` : ''}\n`)
      return SelftestExit.usage
    }
    throw err
  }
  const progress = (line: string) => {
    if (process.stderr.isTTY) process.stderr.write(`${line}\n`)
  }
  try {
    const report = await runScenario(opts, progress)
    process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report))
    return report.exitCode
  } catch (err) {
    if (!(err instanceof SetupError)) throw err
    process.stderr.write(`logmerge: selftest could not run: ${err.message}\n`)
    return SelftestExit.cannotRun
  }
}
