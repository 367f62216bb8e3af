/**
 * The lag behind each input, looked at a bounded number of names at a time: every refresh stats
 * at most LAG_LOOKS input names, first those found behind at their last look and those whose
 * file the writer moved since, then the others in turn. So a refresh costs the same whatever
 * the number of files (10,000 files: each looked at every 50 rounds, unless it moves or lags).
 */
import { identityKey } from '../tail/cursor.js'
import { statQuietly } from '../tail/input-fs.js'
import { type Lag, type LagMark, lagAt } from './lag.js'

/** Input names stat'ed per refresh at most. */
export const LAG_LOOKS = 200

/** An input name looked at for the lag. */
interface Named {
  readonly label: string
  mark: LagMark | null
  lag: Lag
}

const NONE: Lag = { bytes: 0, seconds: 0 }

export class LagLooks {
  readonly #names = new Map<string, Named>()
  #round: Iterator<[string, Named]> = new Map<string, Named>().entries()
  /** Names found behind at their last look: looked at first, every time. */
  readonly #behind = new Set<string>()
  /** Names whose file moved since the last looks: looked at first too. */
  readonly #moved = new Set<string>()
  /** Labels last reported with a lag above 0. */
  readonly #shown = new Map<string, Lag>()

  /** `name` (an input name, under `label`) is looked at from now on. */
  add(name: string, label: string): void {
    if (!this.#names.has(name)) this.#names.set(name, { label, mark: null, lag: NONE })
  }

  has(name: string): boolean {
    return this.#names.has(name)
  }

  /** The writer moved the file at `name`: look at it at the next round. */
  moved(name: string): void {
    this.#moved.add(name)
  }

  /**
   * A round of looks against the writer's `offsets` (identity key -> offset); returns each
   * label whose lag changed, with its lag now (bytes summed over its names, the longest wait).
   */
  look(now: number, offsets: ReadonlyMap<string, number>): Map<string, Lag> {
    let looked = 0
    for (const name of new Set([...this.#behind, ...this.#moved])) {
      if (looked >= LAG_LOOKS) break
      const named = this.#names.get(name)
      if (named) this.#lookAt(name, named, now, offsets)
      looked++
    }
    this.#moved.clear()
    const round = Math.min(LAG_LOOKS - looked, this.#names.size)
    for (let n = 0; n < round; n++) {
      let next = this.#round.next()
      if (next.done) {
        this.#round = this.#names.entries()
        next = this.#round.next()
        if (next.done) break
      }
      this.#lookAt(next.value[0], next.value[1], now, offsets)
    }
    // Only names found behind have a lag (the others are at 0), so the sums need only those.
    const sums = new Map<string, { bytes: number; seconds: number }>()
    for (const name of this.#behind) {
      const named = this.#names.get(name)
      if (named === undefined) continue
      const l = sums.get(named.label) ?? { bytes: 0, seconds: 0 }
      l.bytes += named.lag.bytes
      l.seconds = Math.max(l.seconds, named.lag.seconds)
      sums.set(named.label, l)
    }
    const changed = new Map<string, Lag>()
    for (const label of new Set([...sums.keys(), ...this.#shown.keys()])) {
      const lag = sums.get(label) ?? NONE
      const shown = this.#shown.get(label) ?? NONE
      if (shown.bytes === lag.bytes && shown.seconds === lag.seconds) continue
      if (lag.bytes === 0) this.#shown.delete(label)
      else this.#shown.set(label, lag)
      changed.set(label, lag)
    }
    return changed
  }

  /** One look: the file at the name now against the writer's offset in it. */
  #lookAt(name: string, named: Named, now: number, offsets: ReadonlyMap<string, number>): void {
    const st = statQuietly(name)
    // A file at the name that the writer does not know yet (just created, or never readable):
    // none of it is in the output.
    const looks = st?.isFile()
      ? lagAt(now, st.size, offsets.get(identityKey(st)) ?? 0, named.mark)
      : { lag: NONE, mark: null }
    named.mark = looks.mark
    named.lag = looks.lag
    if (looks.lag.bytes > 0) this.#behind.add(name)
    else this.#behind.delete(name)
  }
}
