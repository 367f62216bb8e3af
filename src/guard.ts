/**
 * The output must never be one of the inputs: logmerge would read its own output forever.
 * Checked once at start, before anything is opened for writing. With several jobs, also no
 * output written by two jobs, no output that another job reads, and no state file shared.
 */
import { realpathSync, statSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { errors } from './errors.js'
import type { InputSpec } from './tail/inputs.js'

export function checkOutputNotInput(output: string, inputs: readonly InputSpec[]): void {
  const how = outputReadBy(output, inputs)
  if (how !== null) throw errors.outputIsInput(output, how)
}

/** How `inputs` would read `output` (same path, a glob matching it, a link), or null. */
export function outputReadBy(output: string, inputs: readonly InputSpec[]): string | null {
  if (output === '-') return null
  const outReal = realOrSelf(output)
  const outStat = statSync(output, { throwIfNoEntry: false })
  for (const input of inputs) {
    if (input.matches(output) || input.matches(outReal)) {
      return input.kind === 'file'
        ? `input ${input.given} is the same path`
        : `matched by input ${input.given}`
    }
    if (input.kind !== 'file' || !outStat) continue
    const inStat = statSync(input.root, { throwIfNoEntry: false })
    if (inStat && inStat.dev === outStat.dev && inStat.ino === outStat.ino) {
      return `input ${input.given} is the same file through a link`
    }
  }
  return null
}

/** What the cross-job checks need of a job. */
export interface JobFiles {
  /** For messages: `jobs[1]` (or the job's name). */
  readonly where: string
  readonly name: string
  readonly output: string
  readonly inputs: readonly InputSpec[]
  readonly statePath: string | null
}

/**
 * Problems between jobs, one line each naming the key path: two jobs writing one output (their
 * lines would interleave and each would truncate the other's bytes on restart), an output that
 * another job reads (a restart truncates it back to its checkpoint, which the reader would take
 * for a truncation and read again), and two jobs sharing a state file (each would overwrite the
 * other's checkpoint). A job's own output among its own inputs is checked here too.
 */
export function checkJobs(jobs: readonly JobFiles[]): string[] {
  const problems: string[] = []
  const writers = new Map<string, JobFiles>()
  const states = new Map<string, JobFiles>()
  for (const job of jobs) {
    const out = job.output === '-' ? '-' : realOrSelf(job.output)
    const first = writers.get(out)
    const sameOutput = first !== undefined
    if (first) {
      const what = out === '-' ? 'stdout' : job.output
      problems.push(
        `${job.where}.output: ${what} is also the output of ${describe(first)}: two jobs cannot write one output (give each its own)`,
      )
    } else writers.set(out, job)
    // Two jobs on one output have one default state file too: one message says it.
    if (job.statePath !== null && !sameOutput) {
      const state = realOrSelf(job.statePath)
      const other = states.get(state)
      if (other) {
        problems.push(
          `${job.where}.state: ${job.statePath} is also the state file of ${describe(other)}: give one of them its own "state" path (default state files are named after the output's file name)`,
        )
      } else states.set(state, job)
    }
    for (const reader of jobs) {
      const how = outputReadBy(job.output, reader.inputs)
      if (how === null) continue
      problems.push(
        reader === job
          ? `${job.where}.output: ${job.output} is also an input of the same job (${how}): logmerge would read its own output`
          : `${job.where}.output: ${job.output} is an input of ${describe(reader)} (${how}): a job may not read another job's output (it is cut back to its checkpoint on restart); read the same inputs in both jobs instead`,
      )
    }
  }
  return problems
}

const describe = (job: JobFiles): string => `${job.where} ("${job.name}")`

/** The output's real path when its directory exists (it may not exist itself yet). */
function realOrSelf(path: string): string {
  try {
    return join(realpathSync(dirname(path)), basename(path))
  } catch {
    return path
  }
}
