/**
 * The selftest's judge: given the output and what each writer wrote, count the lines lost,
 * duplicated, out of order and corrupt. Pure: no I/O, so it is unit-tested on crafted outputs.
 *
 * Definitions (docs/selftest.md says the same for users):
 * - lost: a line a writer wrote that is not in the output, except the copytruncate race lines
 *   (written between a copy and its truncate: in neither file), which are counted apart;
 * - duplicated: every appearance of a line after its first;
 * - out of order within a generation: among one writer's lines of one generation (one stretch of
 *   one physical file), in the order of their first appearance, the fewest lines that, taken
 *   out, leave the rest in increasing sequence order (n minus the longest increasing run);
 * - out of order across generations: a line that first appears after a line of a newer
 *   generation of the same writer (the older file's rest must come before the newer file);
 * - corrupt: an output line that is not a line some writer wrote (torn, run together, unknown),
 *   or a last line without its newline.
 */
import { parseLine, type SelftestLine } from './lines.js'

/** Sequence numbers from `from` up to, not including, `to`. */
export interface SeqRange {
  readonly from: number
  readonly to: number
}

/** What one writer wrote. */
export interface WrittenStream {
  readonly writer: number
  /** Lines 0 .. count - 1 were written. */
  readonly count: number
  /** generationStarts[g] is the first line written into generation g (generationStarts[0] = 0). */
  readonly generationStarts: readonly number[]
  /** Lines written between a copytruncate's copy and its truncate. */
  readonly race: readonly SeqRange[]
  /** Lines written into a file already renamed away (before the writer reopened its log). */
  readonly late?: readonly SeqRange[]
}

/** Consecutive lines of one writer and generation, for the report's examples. */
export interface SeqRun {
  readonly writer: number
  readonly generation: number
  readonly from: number
  /** Inclusive. */
  readonly to: number
}

export interface StreamCheck {
  readonly writer: number
  readonly written: number
  readonly delivered: number
  readonly lost: number
  readonly duplicated: number
  readonly outOfOrderWithinGeneration: number
  readonly outOfOrderAcrossGenerations: number
  /** Of those across generations: lines written into the file after it was renamed away. */
  readonly lateWritesAcrossGenerations: number
  readonly raceWritten: number
  readonly raceLost: number
}

export interface CheckResult {
  readonly outputLines: number
  readonly written: number
  /** Distinct written lines found in the output. */
  readonly delivered: number
  readonly lost: number
  readonly duplicated: number
  readonly outOfOrder: {
    readonly withinGeneration: number
    readonly acrossGenerations: number
    /** Of acrossGenerations: lines written into a renamed file before its writer reopened. */
    readonly lateWritesAcrossGenerations: number
  }
  readonly corrupt: number
  /** Lines written between a copytruncate's copy and its truncate; lost ones do not fail. */
  readonly copytruncateRace: {
    readonly written: number
    readonly lost: number
    readonly delivered: number
  }
  readonly streams: readonly StreamCheck[]
  /**
   * How many separate incidents: runs of consecutive lines of one writer and generation that
   * were lost, duplicated or out of order (one dropped stretch of 400 lines is one incident).
   */
  readonly incidents: {
    readonly lost: number
    readonly duplicated: number
    readonly withinGeneration: number
    readonly acrossGenerations: number
  }
  /** A few of each, to show in the report (at most EXAMPLES runs or lines each). */
  readonly examples: {
    readonly lost: readonly SeqRun[]
    readonly duplicated: readonly SeqRun[]
    readonly withinGeneration: readonly SeqRun[]
    readonly acrossGenerations: readonly SeqRun[]
    readonly corrupt: readonly string[]
  }
  /** The guarantee held: nothing lost (but race lines), duplicated, out of order or corrupt. */
  readonly held: boolean
}

const EXAMPLES = 10

export function checkOutput(output: Buffer, written: readonly WrittenStream[]): CheckResult {
  const streams = new Map(written.map((w) => [w.writer, new StreamTally(w)]))
  const read = tallyOutput(output, streams)
  const tallies = [...streams.values()]
  const result = summary(
    tallies.map((t) => t.finish()),
    tallies,
    read,
  )
  const held =
    result.lost === 0 &&
    result.duplicated === 0 &&
    result.outOfOrder.withinGeneration === 0 &&
    result.outOfOrder.acrossGenerations === 0 &&
    result.corrupt === 0
  return { ...result, held }
}

/** What reading the output found besides each writer's lines (those go to their tallies). */
interface OutputRead {
  readonly outputLines: number
  readonly corrupt: number
  /** The first EXAMPLES corrupt lines, shortened. */
  readonly corruptExamples: string[]
}

/** Gives each line of `output` to its writer's tally; counts the lines and the corrupt ones. */
function tallyOutput(output: Buffer, streams: ReadonlyMap<number, StreamTally>): OutputRead {
  const corruptExamples: string[] = []
  let corrupt = 0
  let outputLines = 0
  for (const text of linesOf(output)) {
    outputLines++
    const line = parseLine(text.line)
    const tally = line ? streams.get(line.writer) : undefined
    if (!line || !tally?.accepts(line) || !text.complete) {
      corrupt++
      if (corruptExamples.length < EXAMPLES) corruptExamples.push(shorten(text.line, text.complete))
      continue
    }
    tally.see(line)
  }
  return { outputLines, corrupt, corruptExamples }
}

/** The check's counts, incidents and examples, summed over the writers (`checks`, `tallies`). */
function summary(
  checks: readonly StreamCheck[],
  tallies: readonly StreamTally[],
  read: OutputRead,
): Omit<CheckResult, 'held'> {
  const sum = (f: (c: StreamCheck) => number) => checks.reduce((n, c) => n + f(c), 0)
  const examples = (pick: (t: StreamTally) => SeqRun[]) => tallies.flatMap(pick).slice(0, EXAMPLES)
  const incidents = (pick: (t: StreamTally) => SeqRun[]) =>
    tallies.reduce((n, t) => n + pick(t).length, 0)
  return {
    outputLines: read.outputLines,
    written: sum((c) => c.written),
    delivered: sum((c) => c.delivered),
    lost: sum((c) => c.lost),
    duplicated: sum((c) => c.duplicated),
    outOfOrder: {
      withinGeneration: sum((c) => c.outOfOrderWithinGeneration),
      acrossGenerations: sum((c) => c.outOfOrderAcrossGenerations),
      lateWritesAcrossGenerations: sum((c) => c.lateWritesAcrossGenerations),
    },
    corrupt: read.corrupt,
    copytruncateRace: {
      written: sum((c) => c.raceWritten),
      lost: sum((c) => c.raceLost),
      delivered: sum((c) => c.raceWritten - c.raceLost),
    },
    streams: checks,
    incidents: {
      lost: incidents((t) => t.lostRuns),
      duplicated: incidents((t) => t.duplicatedRuns),
      withinGeneration: incidents((t) => t.withinRuns),
      acrossGenerations: incidents((t) => t.acrossRuns),
    },
    examples: {
      lost: examples((t) => t.lostRuns),
      duplicated: examples((t) => t.duplicatedRuns),
      withinGeneration: examples((t) => t.withinRuns),
      acrossGenerations: examples((t) => t.acrossRuns),
      corrupt: read.corruptExamples,
    },
  }
}

/** The lines of `output`; a last line without its newline comes with complete: false. */
function* linesOf(output: Buffer): Generator<{ line: string; complete: boolean }> {
  let start = 0
  while (start < output.length) {
    const end = output.indexOf(0x0a, start)
    if (end < 0) {
      yield { line: output.toString('latin1', start), complete: false }
      return
    }
    yield { line: output.toString('latin1', start, end), complete: true }
    start = end + 1
  }
}

function shorten(line: string, complete: boolean): string {
  const text = line.length > 100 ? `${line.slice(0, 97)}...` : line
  return complete ? text : `${text} (no newline at the end of the output)`
}

/** One writer's lines as they are met in the output. */
class StreamTally {
  readonly #written: WrittenStream
  /** How often each line appeared. */
  readonly #seen: Uint32Array
  readonly #inRace: Uint8Array
  readonly #late: Uint8Array
  /** Per generation, the lines in the order of their first appearance. */
  readonly #firstSeen = new Map<number, number[]>()
  #newestGeneration = -1
  readonly #across: number[] = []
  readonly #duplicates: number[] = []
  lostRuns: SeqRun[] = []
  duplicatedRuns: SeqRun[] = []
  withinRuns: SeqRun[] = []
  acrossRuns: SeqRun[] = []

  constructor(written: WrittenStream) {
    this.#written = written
    this.#seen = new Uint32Array(written.count)
    this.#inRace = new Uint8Array(written.count)
    this.#late = new Uint8Array(written.count)
    for (const r of written.race) this.#inRace.fill(1, r.from, Math.min(r.to, written.count))
    for (const r of written.late ?? []) this.#late.fill(1, r.from, Math.min(r.to, written.count))
  }

  /** A line this writer really wrote, into the generation it names. */
  accepts(line: SelftestLine): boolean {
    return line.seq < this.#written.count && this.generationOf(line.seq) === line.generation
  }

  see(line: SelftestLine): void {
    const { seq, generation } = line
    const times = (this.#seen[seq] ?? 0) + 1
    this.#seen[seq] = times
    if (times > 1) {
      this.#duplicates.push(seq)
      return
    }
    if (generation < this.#newestGeneration) this.#across.push(seq)
    else this.#newestGeneration = generation
    const list = this.#firstSeen.get(generation) ?? []
    list.push(seq)
    this.#firstSeen.set(generation, list)
  }

  /** The generation line `seq` was written into. */
  generationOf(seq: number): number {
    const starts = this.#written.generationStarts
    let lo = 0
    let hi = starts.length - 1
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1
      if ((starts[mid] as number) <= seq) lo = mid
      else hi = mid - 1
    }
    return lo
  }

  finish(): StreamCheck {
    const lost: number[] = []
    let raceWritten = 0
    let raceLost = 0
    let delivered = 0
    let duplicated = 0
    for (let seq = 0; seq < this.#written.count; seq++) {
      const times = this.#seen[seq] as number
      if (times > 0) delivered++
      if (times > 1) duplicated += times - 1
      if (this.#inRace[seq]) {
        raceWritten++
        if (times === 0) raceLost++
      } else if (times === 0) lost.push(seq)
    }
    const within = [...this.#firstSeen.values()].flatMap(outOfPlace).sort((a, b) => a - b)
    this.lostRuns = this.#runs(lost)
    this.duplicatedRuns = this.#runs([...new Set(this.#duplicates)].sort((a, b) => a - b))
    this.withinRuns = this.#runs(within)
    this.acrossRuns = this.#runs([...this.#across].sort((a, b) => a - b))
    return {
      writer: this.#written.writer,
      written: this.#written.count,
      delivered,
      lost: lost.length,
      duplicated,
      outOfOrderWithinGeneration: within.length,
      outOfOrderAcrossGenerations: this.#across.length,
      lateWritesAcrossGenerations: this.#across.filter((seq) => this.#late[seq] === 1).length,
      raceWritten,
      raceLost,
    }
  }

  /** Sorted sequence numbers as runs of consecutive lines in one generation. */
  #runs(seqs: readonly number[]): SeqRun[] {
    const runs: SeqRun[] = []
    for (const seq of seqs) {
      const generation = this.generationOf(seq)
      const last = runs[runs.length - 1]
      if (last && last.to === seq - 1 && last.generation === generation) {
        runs[runs.length - 1] = { ...last, to: seq }
      } else runs.push({ writer: this.#written.writer, generation, from: seq, to: seq })
    }
    return runs
  }
}

/**
 * The elements of `seqs` outside one longest strictly increasing subsequence: the fewest that,
 * taken out, leave the rest in order (patience sorting, O(n log n)).
 */
export function outOfPlace(seqs: readonly number[]): number[] {
  /** tails[k]: index in seqs of the smallest last element of an increasing run of length k+1. */
  const tails: number[] = []
  const previous = new Int32Array(seqs.length).fill(-1)
  seqs.forEach((value, i) => {
    let lo = 0
    let hi = tails.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if ((seqs[tails[mid] as number] as number) < value) lo = mid + 1
      else hi = mid
    }
    if (lo > 0) previous[i] = tails[lo - 1] as number
    tails[lo] = i
  })
  const keep = new Uint8Array(seqs.length)
  for (let i = tails.length > 0 ? (tails[tails.length - 1] as number) : -1; i >= 0; ) {
    keep[i] = 1
    i = previous[i] as number
  }
  return seqs.filter((_, i) => keep[i] === 0)
}
