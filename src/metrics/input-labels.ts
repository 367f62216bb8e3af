/**
 * The `input` label of per-input series, with a bound on how many inputs get their own: 10,000
 * followed files must not make 10,000 series per metric. The first `max` inputs to appear keep
 * their own series for the life of the process (a series that changed meaning would break
 * rate()); every later one is summed under `input="other"` (never an input's label: those are
 * absolute paths).
 *
 * An input is an input name: the path a file was first seen under when the inputs match it,
 * else its rotation family (app.log.1, found beside app.log, counts as app.log), else the path.
 */
import { rotationFamily } from '../tail/rotation.js'

export const OTHER = 'other'

export class InputLabels {
  readonly #matches: (path: string) => boolean
  readonly #max: number
  readonly #own = new Set<string>()
  /** Input names summed under OTHER. */
  readonly #summed = new Set<string>()

  constructor(matches: (path: string) => boolean, max: number) {
    this.#matches = matches
    this.#max = max
  }

  /** True when the inputs name `path` (a file, or matched by a directory or glob input). */
  isInput(path: string): boolean {
    return this.#matches(path)
  }

  /** The input name `path` belongs to (see the header). */
  nameOf(path: string): string {
    if (this.#matches(path)) return path
    const family = rotationFamily(path)
    return this.#matches(family) ? family : path
  }

  /** The label value for the input name `name`: itself while the bound allows, else OTHER. */
  labelOf(name: string): string {
    if (this.#own.has(name)) return name
    if (this.#summed.has(name)) return OTHER
    if (this.#own.size < this.#max) {
      this.#own.add(name)
      return name
    }
    this.#summed.add(name)
    return OTHER
  }

  /** How many inputs are summed under OTHER. */
  get summed(): number {
    return this.#summed.size
  }
}
