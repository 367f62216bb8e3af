/**
 * Source labels (`--label NAME=PATH`, or a default made from the file's name): what the prefix
 * and json formats write as a line's source. Kept in one table per run, which the main thread
 * sends to its reader threads so every thread labels a file the same way.
 */
import { basename, sep } from 'node:path'
import { errors } from '../errors.js'

/**
 * Parses `--label NAME=PATH` (split at the first `=`). The name may not be empty or hold a
 * newline (it starts output lines); the path is as given (the caller resolves it).
 */
export function parseLabel(text: string, flag = '--label'): { name: string; path: string } {
  const at = text.indexOf('=')
  const name = at < 0 ? '' : text.slice(0, at)
  const path = at < 0 ? '' : text.slice(at + 1)
  if (name === '' || path === '') {
    throw errors.usage(`Expected \`${flag}\` to be NAME=PATH, got \`${text}\``)
  }
  if (/[\r\n\0]/.test(name)) {
    throw errors.usage(
      `Expected \`${flag}\` NAME without newlines or NUL, got ${JSON.stringify(name)}`,
    )
  }
  return { name, path }
}

/**
 * Default labels for a set of inputs: each file's base name, lengthened by parent directories
 * where base names collide (`a/app.log`, `b/app.log`); the same path twice gets `#2`, `#3`.
 */
export function uniqueLabels(paths: readonly string[]): string[] {
  const parts = paths.map((p) => p.split(sep).filter((x) => x !== ''))
  const depth = paths.map(() => 1)
  const labelOf = (i: number) => (parts[i] ?? []).slice(-(depth[i] ?? 1)).join('/')
  for (;;) {
    const groups = new Map<string, number[]>()
    paths.forEach((_, i) => {
      const label = labelOf(i)
      groups.set(label, [...(groups.get(label) ?? []), i])
    })
    let grew = false
    for (const members of groups.values()) {
      if (members.length < 2) continue
      for (const i of members) {
        if ((depth[i] ?? 1) < (parts[i]?.length ?? 0)) {
          depth[i] = (depth[i] ?? 1) + 1
          grew = true
        }
      }
    }
    if (!grew) break
  }
  const seen = new Map<string, number>()
  return paths.map((p, i) => {
    const label = labelOf(i) || basename(p) || p
    const n = (seen.get(label) ?? 0) + 1
    seen.set(label, n)
    return n === 1 ? label : `${label}#${n}`
  })
}

/**
 * Source labels: --label NAME=PATH for the files it names, else the file's base name,
 * lengthened with parent directories where the files found at start-up share one (see
 * uniqueLabels). A file that appears later gets its base name.
 */
export class Labels {
  readonly #byPath = new Map<string, string>()
  readonly #named = new Map<string, string>()

  /** `explicit`: label name -> absolute path (--label). */
  constructor(explicit: Readonly<Record<string, string>> = {}) {
    for (const [name, path] of Object.entries(explicit)) {
      this.#named.set(path, name)
      this.#byPath.set(path, name)
    }
  }

  /** The files found at start-up: their default labels are made unique among them. */
  addInitial(paths: readonly string[]): void {
    const rest = paths.filter((path) => !this.#named.has(path))
    const labels = uniqueLabels(rest)
    for (const [i, path] of rest.entries()) this.#byPath.set(path, labels[i] as string)
  }

  /** Labels made elsewhere (the main thread's table, sent to a reader thread). */
  addTable(table: Readonly<Record<string, string>>): void {
    for (const [path, label] of Object.entries(table)) this.#byPath.set(path, label)
  }

  labelOf(path: string): string {
    return this.#byPath.get(path) ?? basename(path)
  }

  table(): Record<string, string> {
    return Object.fromEntries(this.#byPath)
  }
}
