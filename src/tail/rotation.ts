/**
 * Rotation families: a log and the names logrotate and friends give its old generations
 * (app.log.1, app.log-20261124, app.log.2.gz). Used to keep a family on one reader thread and
 * to find generations rotated away while logmerge was stopped.
 */
const ROTATION_SUFFIX = /(?:[.-]\d+|[.-]\d{8}(?:\d{2,6})?)*(?:\.(?:gz|bz2|xz|zst|lz4|Z))?$/
const COMPRESSED = /\.(?:gz|bz2|xz|zst|lz4|zip|Z)$/

/** The name a rotated file had before rotation (itself when it is not a rotated name). */
export function rotationFamily(path: string): string {
  const family = path.replace(ROTATION_SUFFIX, '')
  return family.length > 0 ? family : path
}

/** True for an uncompressed older generation of `name` (not `name` itself). */
export function isRotatedSibling(path: string, name: string): boolean {
  return path !== name && !COMPRESSED.test(path) && rotationFamily(path) === name
}

/** What olderFirst compares (a path and its Stats times). */
export interface Dated {
  readonly path: string
  readonly ctimeMs: number
  readonly birthtimeMs: number
  readonly mtimeMs: number
}

/**
 * Oldest first, for generations found together. Birth time first: each generation is born when
 * the one before it is rotated away, whatever the naming (app.log.1, app.log-20261124, a
 * copytruncate copy), and later writes do not move it. Timestamps are coarse (a clock tick), so
 * on a tie the change time (the rotation's rename: logrotate shifts app.log.2 to .3 before .1
 * to .2), then the last write, then logrotate's numbering (.2 older than .1) decide.
 */
export function olderFirst(a: Dated, b: Dated): number {
  if (a.birthtimeMs !== b.birthtimeMs) return a.birthtimeMs - b.birthtimeMs
  if (a.ctimeMs !== b.ctimeMs) return a.ctimeMs - b.ctimeMs
  if (a.mtimeMs !== b.mtimeMs) return a.mtimeMs - b.mtimeMs
  return generation(b.path) - generation(a.path)
}

/** The N of a name ending in .N or -N (0 when there is none). */
function generation(path: string): number {
  const m = /[.-](\d{1,6})(?:\.(?:gz|bz2|xz|zst|lz4|Z))?$/.exec(path)
  return m ? Number(m[1]) : 0
}
