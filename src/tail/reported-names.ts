/**
 * Paths whose events Discovery reports under other names (see discovery.ts's header): the
 * paths a file input's chain of symbolic links leads through are reported as that input, and a
 * directory input replaced by a regular file is reported as itself. Apart from discovery.ts
 * because it is one small map with rules of its own (a link repointed, or a link of the chain
 * replaced, is followed again), whatever watches the directories.
 */
import { lstatSync, readlinkSync } from 'node:fs'
import { dirname, resolve } from 'node:path'

/** Links followed from a file input to its file at most (the kernel's own limit is 40). */
const MAX_LINK_HOPS = 8

export class ReportedNames {
  /** A path -> the names its events are reported as. */
  readonly #reportAs = new Map<string, Set<string>>()
  /** A file input that is a symbolic link -> the paths its chain of links leads through. */
  readonly #linkPaths = new Map<string, string[]>()
  /** Makes sure the directory of a path a link leads through is watched. */
  readonly #watchParentOf: (path: string) => void

  constructor(watchParentOf: (path: string) => void) {
    this.#watchParentOf = watchParentOf
  }

  /** True when events at `path` are reported under some other name. */
  has(path: string): boolean {
    return this.#reportAs.has(path)
  }

  /** True when `path` is a file input followed as a symbolic link. */
  isLink(path: string): boolean {
    return this.#linkPaths.has(path)
  }

  /** `path`, a directory input, is a regular file now: its events are its own from now on. */
  asItself(path: string): void {
    this.#reportAs.set(path, new Set([path]))
  }

  /**
   * `name` (a file input) as a symbolic link now: the paths its links lead through are reported
   * as `name`, and their directories watched. Called at start and whenever an event names
   * `name` or one of those paths (the link repointed, a link of the chain replaced).
   */
  track(name: string): void {
    for (const p of this.#linkPaths.get(name) ?? []) {
      const names = this.#reportAs.get(p)
      names?.delete(name)
      if (names?.size === 0) this.#reportAs.delete(p)
    }
    this.#linkPaths.delete(name)
    const through: string[] = []
    let at = name
    for (let hops = 0; hops < MAX_LINK_HOPS; hops++) {
      let target: string
      try {
        if (!lstatSync(at).isSymbolicLink()) break
        target = resolve(dirname(at), readlinkSync(at))
      } catch {
        break // not there (yet): its directory's events say when it is
      }
      through.push(target)
      at = target
    }
    if (through.length === 0) return
    this.#linkPaths.set(name, through)
    for (const p of through) {
      const names = this.#reportAs.get(p) ?? new Set<string>()
      names.add(name)
      this.#reportAs.set(p, names)
      this.#watchParentOf(p)
    }
  }

  /**
   * The other names an event of `type` at `path` is reported as (undefined: none). A rename
   * there may have repointed a link of a chain: each name it is reported as is tracked again.
   */
  othersOf(path: string, type: string): ReadonlySet<string> | undefined {
    const others = this.#reportAs.get(path)
    if (others && type === 'rename')
      for (const name of [...others]) if (name !== path) this.track(name)
    return others
  }
}
