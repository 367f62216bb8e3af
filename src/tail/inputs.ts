/**
 * What the user named as inputs: literal files (which may not exist yet), directories (every
 * plain file directly inside) and globs. Turns each into a watch root and a path matcher.
 */
import { statSync } from 'node:fs'
import { createRequire } from 'node:module'
import { basename, join, resolve, sep } from 'node:path'

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
