/**
 * The input names of the start-up scan, for --from end and for telling a new file from an old
 * one: a name found at start-up begins at its size then (or at the line start before it), a
 * file that appears later begins at 0, and a name the checkpoint knew that now leads to a file
 * it did not know was created while we were down. A name that could not be opened at start-up
 * keeps its start-up size until it opens. No I/O.
 */
import { type Identity, identityKey } from './cursor.js'

export class StartupNames {
  /** Names from the start-up scan, until first opened: they start at `from`; later files at 0. */
  readonly #startup = new Set<string>()
  /** Names a checkpoint knew: a file found there that the checkpoint did not know is new. */
  readonly #known = new Set<string>()
  /** Start-up names that could not be opened yet: the file there and its size at start-up. */
  readonly #deferred = new Map<string, { key: string; size: number }>()

  begin(paths: Iterable<string>): void {
    for (const p of paths) this.#startup.add(p)
  }

  /** After the start-up pass: a name still missing begins at 0 when it appears. */
  end(): void {
    this.#startup.clear()
  }

  has(path: string): boolean {
    return this.#startup.has(path)
  }

  /** A checkpoint recorded a file at `path`. */
  know(path: string): void {
    this.#known.add(path)
  }

  /**
   * `path`, which a stat showed to be `st`, could not be opened: a name from the start-up scan
   * keeps its start-up size (with --from end, the file begins there once it can be opened, so
   * lines written meanwhile are read and older ones are not).
   */
  openFailed(path: string, st: Identity & { readonly size: number }): void {
    if (this.#startup.has(path) && !this.#deferred.has(path)) {
      this.#deferred.set(path, { key: identityKey(st), size: st.size })
    }
  }

  /**
   * Where a file not known to the table, `st` at `path`, begins under --from end, or null when
   * it begins at 0 (not a start-up name, or another file than the one there at start-up).
   */
  startSize(path: string, st: Identity & { readonly size: number }): number | null {
    if (this.#startup.has(path)) return st.size
    const deferred = this.#deferred.get(path)
    if (deferred?.key !== identityKey(st) || st.size < deferred.size) return null
    return deferred.size
  }

  /** Under --from end, the file `key` at `path` is the start-up one, which begins at its start-up size. */
  beginsAtStartupSize(path: string, key: string): boolean {
    return this.#startup.has(path) || this.#deferred.get(path)?.key === key
  }

  /**
   * `path` was opened: it is a start-up name no more. True when it was one (or deferred) and
   * the checkpoint did not know it: its file begins where --from says.
   */
  opened(path: string): boolean {
    const fromStartup = this.#startup.delete(path)
    const deferred = this.#deferred.delete(path)
    // A name the checkpoint knew, now leading to a file it did not: created while we were down.
    return (fromStartup || deferred) && !this.#known.has(path)
  }
}
