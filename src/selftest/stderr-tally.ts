/**
 * What logmerge said on stderr, counted by kind: the warnings the selftest's faults should
 * cause (a permission it cannot open through, an output it cannot write), the ones that say the
 * promise was weakened (lines that "may appear twice"), errors, and Node's own process warnings.
 */

const KINDS = {
  /** An input it could not open or stat for lack of permission. */
  permission: /cannot (?:open|follow) .*permission denied/,
  /** The output could not be written (EFBIG from the file size limit, ENOSPC). */
  outputFault: /cannot write output .*\((?:EFBIG|ENOSPC|EDQUOT)\)/,
  outputResumed: /is writable again/,
  /** Exactly-once given up for a restart (the output was replaced or shortened). */
  mayAppearTwice: /may appear twice/,
  copyRead: /copied to .* and truncated/,
  rotatedWhileStopped: /rotated while logmerge was stopped/,
  errors: /^logmerge: (?:error|internal error):/,
  nodeWarnings: /\(node:\d+\) (?:\[\w+\] )?\w*Warning/,
} as const

export type StderrKind = keyof typeof KINDS | 'otherWarnings'

/** How many example lines of the unexpected kinds are kept. */
const KEEP = 5

export class StderrTally {
  readonly counts: Record<StderrKind, number> = {
    permission: 0,
    outputFault: 0,
    outputResumed: 0,
    mayAppearTwice: 0,
    copyRead: 0,
    rotatedWhileStopped: 0,
    errors: 0,
    nodeWarnings: 0,
    otherWarnings: 0,
  }
  /** A few lines of each kind worth showing (errors, warnings nobody expected). */
  readonly examples: { kind: StderrKind; line: string }[] = []
  #partial = ''

  feed(chunk: Buffer): void {
    const text = this.#partial + chunk.toString('utf8')
    const lines = text.split('\n')
    this.#partial = lines.pop() ?? ''
    for (const line of lines) this.#count(line)
  }

  /** The process is gone: a last line without a newline counts too. */
  end(): void {
    if (this.#partial) this.#count(this.#partial)
    this.#partial = ''
  }

  #count(line: string): void {
    const kind = (Object.keys(KINDS) as (keyof typeof KINDS)[]).find((k) => KINDS[k].test(line))
    const counted: StderrKind | undefined =
      kind ?? (/^logmerge: warn:/.test(line) ? 'otherWarnings' : undefined)
    if (!counted) return
    this.counts[counted]++
    const worthShowing = ['mayAppearTwice', 'errors', 'nodeWarnings', 'otherWarnings']
    if (
      worthShowing.includes(counted) &&
      this.examples.filter((e) => e.kind === counted).length < KEEP
    )
      this.examples.push({ kind: counted, line })
  }
}
