/**
 * The selftest's report: one object (printed as is with --json) and its short human form.
 */
import type { EngineName } from '../config.js'
import type { CheckResult, SeqRun, WrittenStream } from './check.js'
import type { Exit, UnexpectedExit } from './logmerge-process.js'
import type { Fault } from './options.js'
import type { StderrKind } from './stderr-tally.js'
import type { Rotation } from './writer.js'

export interface RotationCount {
  done: number
  /** Done while logmerge was not running (between a SIGKILL and the restart). */
  whileDown: number
  /** truncate: given up because logmerge's checkpoint did not cover the file in time. */
  skipped: number
}

/** What the run did to logmerge: the faults it met. */
export interface Exercised {
  kills: number
  starts: number
  /** Time between a SIGKILL and the next start (ms). */
  downtimeMs: { min: number; max: number }
  rotations: Record<Rotation, RotationCount>
  permissionFlips: {
    /** An input made unreadable (mode 000) across a restart, readable again later. */
    acrossRestart: number
    /** A rename rotation's new file created with mode 000, readable later. */
    newFileUnreadable: number
  }
  outputFaults: {
    /** The output made unwritable for a while (RLIMIT_FSIZE lowered: EFBIG). */
    episodes: number
    /** Not done: the output was still too small to fail it without failing the state too. */
    skipped: number
  }
}

export interface SelftestReport {
  readonly ok: boolean
  readonly exitCode: 0 | 1
  /** Why the run failed, one sentence each (empty when ok). */
  readonly failures: readonly string[]
  readonly engine: EngineName
  readonly seed: number
  readonly plannedMs: number
  readonly elapsedMs: number
  /** Ended early by SIGINT. */
  readonly interrupted: boolean
  readonly dir: string
  /** The directory is still there (a failed run, --keep or --dir). */
  readonly kept: boolean
  readonly settings: {
    readonly killEveryMs: number
    readonly rotateEveryMs: number
    readonly writers: readonly { readonly id: number; readonly rotation: Rotation | null }[]
    readonly ratePerWriter: number
    readonly faults: readonly Fault[]
    readonly logmergeArgs: readonly string[]
  }
  readonly logmerge: {
    readonly runAs: string
    readonly unexpectedExits: readonly UnexpectedExit[]
    /** How the last process ended at SIGTERM (null: it was not running). */
    readonly finalExit: (Exit & { readonly timedOut: boolean }) | null
    /** Every writer's last line reached the output before SIGTERM. */
    readonly caughtUp: boolean
    readonly stderr: {
      readonly counts: Record<StderrKind, number>
      readonly examples: readonly { readonly kind: StderrKind; readonly line: string }[]
    }
    readonly stderrLog: string
  }
  readonly exercised: Exercised
  readonly notExercised: readonly string[]
  readonly check: CheckResult
  /** What each writer wrote (the check's other input: re-check the kept output with it). */
  readonly written: readonly WrittenStream[]
}

const n = (x: number) => x.toLocaleString('en-US')
const secs = (ms: number) =>
  ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`

export function formatReport(r: SelftestReport): string {
  const c = r.check
  const e = r.exercised
  const rot = (Object.entries(e.rotations) as [Rotation, RotationCount][])
    .filter(([mode]) => r.settings.writers.some((w) => w.rotation === mode))
    .map(([mode, k]) => {
      const skipped = k.skipped > 0 ? `, ${k.skipped} skipped` : ''
      return `${mode} ${n(k.done)} (${n(k.whileDown)} while down${skipped})`
    })
  const s = r.logmerge.stderr.counts
  const lines = [
    `logmerge selftest: engine ${r.engine}, ${secs(r.elapsedMs)}${r.interrupted ? ' (interrupted)' : ''}, seed ${r.seed}`,
    `  logmerge ran as ${r.logmerge.runAs}; directory ${r.dir}${r.kept ? '' : ' (removed)'}`,
    '',
    'exercised:',
    `  SIGKILL + restart       ${n(e.kills)} (down ${secs(e.downtimeMs.min)} to ${secs(e.downtimeMs.max)})`,
    `  rotations               ${rot.length > 0 ? rot.join(', ') : 'none'}`,
    `  permission flips        ${asked(r, 'chmod', `${n(e.permissionFlips.acrossRestart)} across a restart, ${n(e.permissionFlips.newFileUnreadable)} new files unreadable; logmerge warned ${n(s.permission)} times`)}`,
    `  output failures (EFBIG) ${asked(r, 'output', `${n(e.outputFaults.episodes)}; logmerge warned ${n(s.outputFault)}, resumed ${n(s.outputResumed)} times`)}`,
    `  late writes             ${asked(r, 'late-writes', 'into a renamed file until its writer reopened')}`,
  ]
  if (r.notExercised.length > 0) {
    lines.push('not exercised:', ...r.notExercised.map((why) => `  - ${why}`))
  }
  lines.push(
    '',
    `lines written             ${n(c.written)} by ${r.settings.writers.length} writers`,
    `lines in the output       ${n(c.outputLines)}`,
    `lost                      ${n(c.lost)}${times(c.incidents.lost)}${examples(c.examples.lost)}`,
    `duplicated                ${n(c.duplicated)}${times(c.incidents.duplicated)}${examples(c.examples.duplicated)}`,
    `out of order              ${n(c.outOfOrder.withinGeneration)} within a generation${times(c.incidents.withinGeneration)}${examples(c.examples.withinGeneration)}`,
    `                          ${n(c.outOfOrder.acrossGenerations)} across generations${times(c.incidents.acrossGenerations)}${examples(c.examples.acrossGenerations)}${c.outOfOrder.acrossGenerations > 0 ? `; ${n(c.outOfOrder.lateWritesAcrossGenerations)} of them written into the renamed file before its writer reopened` : ''}`,
    `corrupt or unknown        ${n(c.corrupt)}${c.examples.corrupt.length > 0 ? `: ${c.examples.corrupt.slice(0, 3).join(' | ')}` : ''}`,
    ...(r.settings.writers.some((w) => w.rotation === 'copytruncate')
      ? [
          `copytruncate's own race   ${n(c.copytruncateRace.written)} lines written between a copy and its truncate: ${n(c.copytruncateRace.lost)} lost (not counted above), ${n(c.copytruncateRace.delivered)} read in time`,
        ]
      : []),
    'per writer (out of order: within + across generations):',
    ...perWriter(r),
  )
  const notable = r.logmerge.stderr.examples
  if (notable.length > 0) {
    lines.push('', `logmerge said (see ${r.logmerge.stderrLog}):`)
    for (const x of notable.slice(0, 8)) lines.push(`  ${x.line}`)
  }
  lines.push('')
  if (r.ok) lines.push('PASS: every line exactly once, in order (copytruncate race aside)')
  else lines.push('FAIL:', ...r.failures.map((f) => `  - ${f}`))
  return `${lines.join('\n')}\n`
}

/** What a fault did, or that it was left out by --faults. */
function asked(r: SelftestReport, fault: Fault, what: string): string {
  return r.settings.faults.includes(fault) ? what : 'not asked for (--faults)'
}

/** " in 3 places": incidents (runs of consecutive lines), when there are any. */
function times(incidents: number): string {
  return incidents === 0 ? '' : ` in ${n(incidents)} place${incidents === 1 ? '' : 's'}`
}

/** " (w1 g0 #0-127, ...)": where the first few problems are (writer, generation, lines). */
function examples(runs: readonly SeqRun[]): string {
  if (runs.length === 0) return ''
  const shown = runs
    .slice(0, 4)
    .map((x) => `w${x.writer} g${x.generation} #${x.from}${x.to > x.from ? `-${x.to}` : ''}`)
  return ` (${shown.join(', ')}${runs.length > 4 ? ', ...' : ''})`
}

/** One line per writer: how it was rotated and what became of its lines. */
function perWriter(r: SelftestReport): string[] {
  return r.check.streams.map((x) => {
    const mode = r.settings.writers.find((w) => w.id === x.writer)?.rotation ?? 'not rotated'
    const race = x.raceWritten > 0 ? `, ${n(x.raceLost)} lost to the copytruncate race` : ''
    return `  w${x.writer} ${mode.padEnd(13)} ${n(x.written).padStart(9)} written: ${n(x.lost)} lost, ${n(x.duplicated)} duplicated, ${n(x.outOfOrderWithinGeneration)} + ${n(x.outOfOrderAcrossGenerations)} out of order${race}`
  })
}
