/**
 * What the user named as inputs: literal files (which may not exist yet), directories (every
 * plain file directly inside) and globs. Turns each into a watch root and a path matcher, and
 * finds the paths they name at start-up (scanInputs).
 */
import { type Dirent, statSync } from 'node:fs'
import { readdir, stat } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { basename, dirname, join, resolve, sep } from 'node:path'

export interface InputSpec {
  /** As the user wrote it, for messages. */
  readonly given: string
  readonly kind: 'file' | 'dir' | 'glob'
  /** Absolute path of the file, or of the directory a dir/glob lives under. */
  readonly root: string
  /** How deep below root new files may appear (0: directly inside); undefined: any depth. */
  readonly depth: number | undefined
  /** True when the absolute path `p` belongs to this input. */
  readonly matches: (p: string) => boolean
}

/** Compressed rotations are binary: a directory input skips them (name a glob to include). */
const COMPRESSED = /\.(gz|bz2|xz|zst|lz4|zip|Z)$/

/**
 * A character without which picomatch sees no glob (`*`, `?`, brackets, braces, extglob
 * parentheses, negation, escapes). A name without any is a file or a directory as it is.
 */
const GLOB_CHARACTER = /[*?[\]{}()!\\]/

/**
 * picomatch, loaded only for a name that may be a glob: most command lines name plain files,
 * and loading it costs a few milliseconds of every start (measured: docs/time-order.md).
 */
function loadPicomatch(): typeof import('picomatch') {
  return createRequire(import.meta.url)('picomatch') as typeof import('picomatch')
}

export function parseInput(given: string, cwd = process.cwd()): InputSpec {
  const scan = GLOB_CHARACTER.test(given) ? loadPicomatch().scan(given) : null
  if (scan?.isGlob) {
    const root = resolve(cwd, scan.base || '.')
    const pattern = join(root, scan.glob)
    const isMatch = loadPicomatch()(pattern, { dot: false })
    const depth = scan.glob.includes('**') ? undefined : scan.glob.split('/').length - 1
    return { given, kind: 'glob', root, depth, matches: (p) => isMatch(p) }
  }
  const path = resolve(cwd, given)
  if (isDirectory(path)) {
    const prefix = path.endsWith(sep) ? path : path + sep
    return {
      given,
      kind: 'dir',
      root: path,
      depth: 0,
      matches: (p) =>
        p.startsWith(prefix) && !p.slice(prefix.length).includes(sep) && !COMPRESSED.test(p),
    }
  }
  return { given, kind: 'file', root: path, depth: undefined, matches: (p) => p === path }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory()
  } catch {
    return false
  }
}

/** A short label for a source: its file name (prefix/json formats use it). */
export const labelOf = (path: string): string => basename(path)

/**
 * True when `path` is wanted by any input (and is not the output). Files named one by one are
 * looked up in a set: every change event asks, and 10,000 inputs tried in turn made each event
 * cost 10,000 comparisons.
 */
export function makeMatcher(
  inputs: readonly InputSpec[],
  exclude?: string,
): (path: string) => boolean {
  const files = new Set(inputs.filter((i) => i.kind === 'file').map((i) => i.root))
  const others = inputs.filter((i) => i.kind !== 'file')
  return (path) => path !== exclude && (files.has(path) || others.some((i) => i.matches(path)))
}

/** Every path the inputs name now: literal files (present or not) and matching files found. */
export async function scanInputs(
  inputs: readonly InputSpec[],
  exclude?: string,
): Promise<string[]> {
  const found = new Set<string>()
  for (const input of inputs) {
    if (input.kind === 'file') {
      if (input.root !== exclude) found.add(input.root)
      continue
    }
    for await (const path of walkFiles(input.root, input.depth ?? Number.POSITIVE_INFINITY)) {
      if (path !== exclude && input.matches(path)) found.add(path)
    }
  }
  return [...found]
}

/**
 * Every file below `dir`, at most `depth` directories down (symbolic links to files included,
 * links to directories not followed).
 */
export async function* walkFiles(dir: string, depth: number): AsyncGenerator<string> {
  let entries: Dirent[]
  try {
    entries = await readdir(dir, { withFileTypes: true })
  } catch {
    return // gone or unreadable: discovery's watcher reports what appears later
  }
  for (const e of entries) {
    const path = join(dir, e.name)
    if (e.isDirectory()) {
      if (depth > 0) yield* walkFiles(path, depth - 1)
    } else if (!e.isSymbolicLink() || !(await leadsToDirectory(path))) {
      yield path // symlinks to files included: the follower stats through them
    }
  }
}

const leadsToDirectory = (path: string): Promise<boolean> =>
  stat(path).then(
    (st) => st.isDirectory(),
    () => false,
  )

/** The directories to watch, each with how deep below it files may appear. */
export function watchRoots(inputs: readonly InputSpec[]): Map<string, number | undefined> {
  const roots = new Map<string, number | undefined>()
  for (const input of inputs) {
    const root = input.kind === 'file' ? dirname(input.root) : input.root
    const depth = input.kind === 'file' ? 0 : input.depth
    const had = roots.get(root)
    const merged = !roots.has(root)
      ? depth
      : had === undefined || depth === undefined
        ? undefined
        : Math.max(had, depth)
    roots.set(root, merged)
  }
  return roots
}
