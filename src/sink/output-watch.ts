/**
 * The output-path watch's decisions, shared by both writers: from what the open file and the
 * file now at the output's path say, whether the output was deleted, moved, replaced or
 * truncated behind our back; when to act on it; and what to tell the operator. Pure: the
 * writers do the stat calls (output-file.ts's checkOutput), the opening and the switching, each
 * its own way (under a lock, or on the event loop), and ask this module what to do.
 */

export interface FileFacts {
  readonly dev: number
  readonly ino: number
  readonly size: number
  readonly nlink: number
  readonly isFile: boolean
}

export type OutputChange =
  | { readonly kind: 'deleted' | 'moved' | 'replaced' }
  | { readonly kind: 'truncated'; readonly from: number; readonly to: number }

/**
 * How long a rotation-like change (the output moved away, or another file at its path) waits
 * for its SIGHUP before the watch acts on it itself: logrotate's `create` then its postrotate
 * `kill -HUP` take a shell's start between them, which on a loaded machine outlasted two ticks
 * of a short --poll-interval (a spurious warning in CI). A deletion or truncation is not a
 * rotation: acted on at the second tick.
 */
export const ROTATION_GRACE_MS = 500

/**
 * Whether the watch acts now on `change`, first seen at `firstSeen` (at an earlier tick): at
 * the second tick that sees it, and for a rotation-like change not before ROTATION_GRACE_MS.
 */
export function dueToAct(change: OutputChange, firstSeen: number, now = Date.now()): boolean {
  if (change.kind === 'moved' || change.kind === 'replaced')
    return now - firstSeen >= ROTATION_GRACE_MS
  return true
}

/**
 * The writers' watch acts on a change at the second tick that sees it (see dueToAct):
 * logrotate's `create` followed by its postrotate SIGHUP would otherwise race the watch, which
 * would then warn about a rotation that was announced.
 *
 * Decides, from the open file (`held`, by fstat), the file now at the output's path (`atPath`,
 * by stat; null if there is none) and the bytes we know we wrote (`known`), whether the output
 * must be opened again. A non-regular output (a pipe, /dev/null) is left alone.
 */
export function outputChange(
  held: FileFacts,
  atPath: FileFacts | null,
  known: number,
): OutputChange | null {
  if (!held.isFile) return null
  if (atPath === null) return { kind: held.nlink === 0 ? 'deleted' : 'moved' }
  if (atPath.dev !== held.dev || atPath.ino !== held.ino) return { kind: 'replaced' }
  if (held.size < known) return { kind: 'truncated', from: known, to: held.size }
  return null
}

/** The message for a change: what happened, and what happens now. */
export function changeMessage(path: string, change: OutputChange): string {
  switch (change.kind) {
    case 'deleted':
      return `output ${path} was deleted while open; creating it again (lines written before this warning went with the deleted file)`
    case 'moved':
      return `output ${path} was moved away while open; creating it again (the lines so far are in the moved file)`
    case 'replaced':
      return `output ${path} was replaced by another file; writing to that file now (the lines so far are in the old one)`
    case 'truncated':
      return `output ${path} was truncated by someone else (${change.from} -> ${change.to} bytes); continuing at its end`
  }
}

/** Said once when the output path cannot be created again: writing is held meanwhile. */
export const heldMessage = (path: string, err: Error): string =>
  `cannot create output ${path} again: ${err.message}; writing is held until it can be (the lines wait in their files)`

/** Said once the output path could be created again after a hold. */
export const unheldMessage = (path: string): string =>
  `output ${path} could be created again; resumed`

/**
 * One writer's watch from tick to tick: given what a tick saw, whether to open the output path
 * again now, and the warning to say about it. Writing held (the path could not be created)
 * tries again at every tick; a change is acted on at a later tick than the one that first saw
 * it, when dueToAct says so, and forgotten if it is over by then.
 */
export class OutputWatch {
  /** When the watch first saw the change it has not acted on yet. */
  #noticedAt: number | null = null

  /**
   * `change`: what this tick saw (null: the open file is the output, as long as we wrote it);
   * `held`: whether writing is held. False: nothing to do at this tick. Otherwise the path is
   * opened again, and the warning (null when writing was already held: said once, not again at
   * each tick while the path cannot be created) is said once the new file is the one written
   * to, or once it cannot be opened: it says that the lines written before it went to the old
   * file, so none written after it may.
   */
  due(change: OutputChange | null, held: boolean, path: string, now = Date.now()): false | Due {
    if (change === null || held) {
      this.#noticedAt = null
      return held ? HELD : false
    }
    if (this.#noticedAt === null) {
      this.#noticedAt = now
      return false
    }
    if (!dueToAct(change, this.#noticedAt, now)) return false
    this.#noticedAt = null
    return { warning: changeMessage(path, change) }
  }
}

/** The watch's verdict at a tick that acts: open the path again, then say `warning`, if any. */
export interface Due {
  readonly warning: string | null
}

const HELD: Due = { warning: null }
