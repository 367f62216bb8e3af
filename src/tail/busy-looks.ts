/**
 * The stats behind a look at a busy directory (busy-dir.ts says when a directory is busy and
 * compares two looks; Discovery polls with these): the wanted files directly in it, and
 * whether its entries may have changed since the last listing, so that a directory of many
 * files is listed again only after a rotation.
 */
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { type FileLook, POLL_MAX_FILES } from './busy-dir.js'
import { BIRTH_CLOCK_SLACK_MS } from './generation-rules.js'
import { statQuietly } from './input-fs.js'

/** A directory's change time, and when it was read (ms since epoch). */
export interface Listed {
  readonly ctimeMs: number
  readonly at: number
}

/** A directory's change time now (-1 when it cannot be read). */
export function listedNow(dir: string): Listed {
  return { at: Date.now(), ctimeMs: statQuietly(dir)?.ctimeMs ?? -1 }
}

/**
 * True when a directory's entries cannot have changed between two reads of its change time:
 * the same time, read long enough after it that a change in the same clock tick would have
 * moved it (the kernel's coarse clock lags up to a tick; see BIRTH_CLOCK_SLACK_MS).
 */
export function sameListing(before: Listed, now: Listed): boolean {
  return (
    before.ctimeMs !== -1 &&
    now.ctimeMs === before.ctimeMs &&
    before.at - before.ctimeMs > BIRTH_CLOCK_SLACK_MS
  )
}

/**
 * The files directly in `dir` that `wanted` takes, as a stat sees them now, or null when the
 * directory is gone. Past POLL_MAX_FILES the look ends with a marker entry: the caller gives up.
 */
export function lookAt(
  dir: string,
  wanted: (path: string) => boolean,
): Map<string, FileLook> | null {
  let names: string[]
  try {
    names = readdirSync(dir)
  } catch {
    return null
  }
  const look = new Map<string, FileLook>()
  for (const name of names) {
    const path = join(dir, name)
    if (!wanted(path)) continue
    if (look.size >= POLL_MAX_FILES) {
      look.set(path, { ino: -1, size: -1, mtimeMs: -1 }) // too many: the caller gives up
      break
    }
    const st = statQuietly(path)
    if (st?.isFile()) look.set(path, { ino: st.ino, size: st.size, mtimeMs: st.mtimeMs })
  }
  return look
}

/** The files of the last look, stat'ed again (one gone is absent from the new look). */
export function lookAgain(last: ReadonlyMap<string, FileLook>): Map<string, FileLook> {
  const look = new Map<string, FileLook>()
  for (const path of last.keys()) {
    const st = statQuietly(path)
    if (st?.isFile()) look.set(path, { ino: st.ino, size: st.size, mtimeMs: st.mtimeMs })
  }
  return look
}
