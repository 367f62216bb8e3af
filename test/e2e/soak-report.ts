/**
 * A failed soak's trace in a few lines, printed with the failure. CI keeps no directory (its
 * machine is gone when the run ends), so the failure message itself must say where a line went
 * wrong: each place a writer's lines do not follow one another in the output (a line again, a
 * gap, a step back), with the generations on both sides, the run that wrote it (from the output
 * sizes the state files recorded), what that run resumed from for the writer's files, and that
 * run's log lines about them.
 */
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { SoakWritten } from './helpers.js'

interface Jump {
  readonly prefix: string
  readonly seq: number
  readonly after: number
  readonly byte: number
}

/** The generation `seq` was written into (an index into `generations`). */
export function generationOf(written: SoakWritten, seq: number): number {
  let g = 0
  while (g + 1 < written.generations.length && (written.generations[g + 1]?.from ?? 0) <= seq) g++
  return g
}

/**
 * `dir` is the soak's directory (out.log, states/after-kill-K.json); `runs` each run's stderr,
 * in order (run K began after kill K).
 */
export function soakReport(dir: string, written: readonly SoakWritten[], runs: readonly string[]) {
  const out = readFileSync(join(dir, 'out.log'))
  // Where run K began writing: the output size its state recorded (0 without one).
  const states = runs.map((_, k) => readState(join(dir, 'states', `after-kill-${k}.json`)))
  const starts = states.map((s) => s?.output?.size ?? 0)
  const runAt = (byte: number) => {
    let k = 0
    for (let i = 1; i < starts.length; i++) if ((starts[i] ?? 0) <= byte) k = i
    return k
  }
  const jumps: Jump[] = []
  const last = new Map<string, number>()
  let byte = 0
  for (let at = 0; at < out.length; ) {
    const nl = out.indexOf(10, at)
    if (nl < 0) break
    const line = out.subarray(at, nl).toString('latin1')
    const [prefix, n] = line.split('-')
    const seq = Number(n)
    if (prefix !== undefined && Number.isInteger(seq)) {
      const after = last.get(prefix) ?? -1
      if (seq !== after + 1) jumps.push({ prefix, seq, after, byte })
      last.set(prefix, seq)
    }
    byte = nl + 1
    at = nl + 1
  }
  for (const w of written) {
    const end = last.get(w.prefix) ?? -1
    if (end !== w.lines - 1) jumps.push({ prefix: w.prefix, seq: w.lines, after: end, byte })
  }
  const lines = [`soak trace: ${jumps.length} place(s) where a writer's lines do not follow on`]
  const told = new Set<string>()
  for (const j of jumps.slice(0, 8)) {
    const w = written.find((x) => x.prefix === j.prefix)
    if (!w) continue
    const g = (seq: number) => (seq < 0 ? '-' : `g${generationOf(w, seq)}`)
    const what = j.seq <= j.after ? 'again/back' : 'gap'
    const run = runAt(j.byte)
    lines.push(
      `- ${j.prefix} (${w.mode}): line ${j.seq} (${g(j.seq)}) after ${j.after} (${g(j.after)}), ${what}, output byte ${j.byte}, written by run ${run} (began at byte ${starts[run]})`,
    )
    for (const k of [run - 1, run]) {
      if (k < 0 || told.has(`${j.prefix}/${k}`)) continue
      told.add(`${j.prefix}/${k}`)
      const resumed = (states[k]?.sources ?? [])
        .filter((s) => s.path.includes(`${j.prefix}.log`))
        .map((s) => `${s.path.split('/').pop()} ino ${s.ino} offset ${s.offset}`)
      lines.push(`  run ${k} resumed: ${resumed.join('; ') || '(no state)'}`)
      const said = (runs[k] ?? '')
        .split('\n')
        .filter((l) => l.includes(`${j.prefix}.log`))
        .slice(-12)
      for (const l of said) lines.push(`  run ${k}: ${l.replace(/\/\S*\//g, '').slice(0, 240)}`)
    }
  }
  // The generations around the first jump, with their times.
  const first = jumps[0]
  const w = first && written.find((x) => x.prefix === first.prefix)
  if (first && w) {
    const from = Math.max(0, generationOf(w, Math.min(first.seq, Math.max(first.after, 0))) - 1)
    const around = w.generations.slice(from, from + 4)
    lines.push(
      `  ${w.prefix} generations from g${from}: ${around.map((x) => `${x.how} from ${x.from} at ${x.at}`).join('; ')}`,
    )
  }
  return lines.join('\n')
}

interface StateSketch {
  readonly output?: { readonly size: number } | null
  readonly sources?: readonly {
    readonly path: string
    readonly ino: number
    readonly offset: number
  }[]
}

function readState(path: string): StateSketch | null {
  if (!existsSync(path)) return null
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as StateSketch
  } catch {
    return null
  }
}
