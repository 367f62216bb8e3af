/**
 * Counters from what the writers keep per source: each file's stats are totals over its life
 * (carried across restarts by the state file), and files come and go. The tally remembers the
 * last totals seen for each file and hands back what they grew by since, so a counter per input
 * only ever grows, and a file that leaves the writer (deleted and forgotten) takes nothing back.
 *
 * Totals restored from the state file are where a file's counting starts: the lines a previous
 * run wrote are not counted again. `late` is counted per run (--order time), so from 0.
 */
import type { SourceStats } from '../sink/sink.js'

export interface Counts {
  lines: number
  bytes: number
  linesSplit: number
  truncations: number
  late: number
}

export const zeroCounts = (): Counts => ({
  lines: 0,
  bytes: 0,
  linesSplit: 0,
  truncations: 0,
  late: 0,
})

const countsOf = (s: SourceStats): Counts => ({
  lines: s.lines,
  bytes: s.bytes ?? 0,
  linesSplit: s.linesSplit,
  truncations: s.truncations,
  late: s.late ?? 0,
})

export class SourceTally {
  readonly #last = new Map<string, Counts>()
  /** Files of #last that the writer has had (see keepOnly). */
  readonly #seen = new Set<string>()

  /** `restored`: identity key -> the stats a file's counting resumes from (the state file's). */
  constructor(restored: ReadonlyMap<string, SourceStats> = new Map()) {
    for (const [key, stats] of restored) this.#last.set(key, { ...countsOf(stats), late: 0 })
  }

  /**
   * The file `key` now has `stats`: adds what each total grew by to `into`. A total that went
   * down is a new file under a reused identity (or a new run of --order time's count): it all
   * counts.
   */
  take(key: string, stats: SourceStats, into: Counts): void {
    const now = countsOf(stats)
    const last = this.#last.get(key) ?? zeroCounts()
    for (const k of Object.keys(now) as (keyof Counts)[]) {
      into[k] += now[k] >= last[k] ? now[k] - last[k] : now[k]
    }
    this.#last.set(key, now)
  }

  /**
   * Drops the files that were in the writer and are not in `present` any more (left it): a
   * file seen again later counts from 0. A restored file stays until it has been in the writer
   * once: the writer learns of the files a little after it starts.
   */
  keepOnly(present: ReadonlyMap<string, unknown>): void {
    for (const key of this.#last.keys()) {
      if (present.has(key)) this.#seen.add(key)
      else if (this.#seen.delete(key)) this.#last.delete(key)
    }
  }
}
