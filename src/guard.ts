/**
 * The output must never be one of the inputs: logmerge would read its own output forever.
 * Checked once at start, before anything is opened for writing.
 */
import { realpathSync, statSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { errors } from './errors.js'
import type { InputSpec } from './tail/inputs.js'

export function checkOutputNotInput(output: string, inputs: readonly InputSpec[]): void {
  if (output === '-') return
  const outReal = realOrSelf(output)
  const outStat = statSync(output, { throwIfNoEntry: false })
  for (const input of inputs) {
    if (input.matches(output) || input.matches(outReal)) {
      const how =
        input.kind === 'file'
          ? `input ${input.given} is the same path`
          : `matched by input ${input.given}`
      throw errors.outputIsInput(output, how)
    }
    if (input.kind !== 'file' || !outStat) continue
    const inStat = statSync(input.root, { throwIfNoEntry: false })
    if (inStat && inStat.dev === outStat.dev && inStat.ino === outStat.ino) {
      throw errors.outputIsInput(output, `input ${input.given} is the same file through a link`)
    }
  }
}

/** The output's real path when its directory exists (it may not exist itself yet). */
function realOrSelf(path: string): string {
  try {
    return join(realpathSync(dirname(path)), basename(path))
  } catch {
    return path
  }
}
