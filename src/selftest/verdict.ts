/**
 * Did the promise hold? The check's counts and how logmerge's processes ended, turned into the
 * run's failures, one sentence each (none: it held).
 */
import type { CheckResult } from './check.js'
import type { Exit, UnexpectedExit } from './logmerge-process.js'

export interface Ending {
  /** Processes that ended without the selftest killing them. */
  readonly unexpectedExits: readonly UnexpectedExit[]
  /** How the last one ended at SIGTERM; null when none was running. */
  readonly finalExit: (Exit & { readonly timedOut: boolean }) | null
  /** How long it was given to drain (for the message). */
  readonly stopTimeoutMs: number
}

export function failuresOf(check: CheckResult, ending: Ending): string[] {
  return [...checkFailures(check), ...processFailures(ending)]
}

function checkFailures(check: CheckResult): string[] {
  const failures: string[] = []
  const { withinGeneration, acrossGenerations } = check.outOfOrder
  if (check.lost > 0) failures.push(`${check.lost} line(s) lost`)
  if (check.duplicated > 0) failures.push(`${check.duplicated} line(s) duplicated`)
  if (withinGeneration > 0)
    failures.push(`${withinGeneration} line(s) out of order within a generation`)
  if (acrossGenerations > 0)
    failures.push(`${acrossGenerations} line(s) of an older generation after a newer one's`)
  if (check.corrupt > 0) failures.push(`${check.corrupt} corrupt or unknown line(s) in the output`)
  return failures
}

function processFailures({ unexpectedExits, finalExit, stopTimeoutMs }: Ending): string[] {
  const failures: string[] = []
  const [first] = unexpectedExits
  if (first) {
    const how = first.signal ?? `code ${first.code}`
    failures.push(
      `logmerge exited by itself ${unexpectedExits.length} time(s) (first: ${how} after ${first.afterMs} ms of start ${first.start})`,
    )
  }
  if (finalExit === null) failures.push('logmerge was not running at the end')
  else if (finalExit.timedOut) {
    failures.push(`logmerge did not exit within ${stopTimeoutMs / 1000} s of SIGTERM`)
  } else if (finalExit.code !== 0) {
    const how = finalExit.signal ?? `code ${finalExit.code}`
    failures.push(`logmerge exited with ${how} at SIGTERM (expected: drain and exit 0)`)
  }
  return failures
}
