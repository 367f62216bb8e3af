/**
 * The three ways a log is rotated, done by the selftest itself so it knows exactly which lines
 * went into which file:
 * - rename: logrotate's default (`create`): older generations shift (w0.log.1 -> w0.log.2), the
 *   log is renamed to w0.log.1, a new empty w0.log is created, and the application goes on
 *   writing into the renamed file for a moment before it reopens (its postrotate signal; not
 *   with --faults lacking late-writes);
 * - copytruncate: older generations shift, the log is copied to w0.log.1, then truncated in
 *   place after a short gap; lines written in that gap are in neither file (logrotate's own
 *   race), and are recorded as such;
 * - truncate: the file is emptied in place (`: > w0.log`), once logmerge's checkpoint covers all
 *   of it (a truncation destroys what was not read yet: that loss would not be logmerge's).
 * Old generations are never deleted, so every line stays on disk for logmerge to find.
 */
import {
  chmodSync,
  copyFileSync,
  existsSync,
  fchmodSync,
  openSync,
  renameSync,
  truncateSync,
} from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Random } from './random.js'
import { READABLE, type Rotation, type Writer } from './writer.js'

export interface RotationContext {
  readonly random: Random
  /** Is logmerge's checkpoint covering the whole file at `path` now? */
  readonly committed: (path: string) => boolean
  /** The run is ending: give up waiting. */
  readonly ending: AbortSignal
  /** May a new generation be created unreadable for a while (a permission flip)? */
  readonly flipPermissions: boolean
  /** Is logmerge down (killed, not restarted yet)? */
  readonly down: () => boolean
  /** Does the application write on into the renamed file for a moment (until it reopens)? */
  readonly lateWrites: boolean
}

export interface RotationOutcome {
  readonly done: boolean
  /** logmerge was down at the moment the file changed. */
  readonly whileDown?: boolean
  /** The new file was created with mode 000 and made readable later. */
  readonly unreadable?: boolean
}

/** The longest a truncation waits for logmerge to checkpoint the whole file. */
const COMMIT_WAIT_MS = 20_000

export const rotate: Record<
  Rotation,
  (w: Writer, ctx: RotationContext) => Promise<RotationOutcome>
> = {
  rename: renameAndCreate,
  copytruncate: copyTruncate,
  truncate: truncateInPlace,
}

async function renameAndCreate(w: Writer, ctx: RotationContext): Promise<RotationOutcome> {
  w.wholeLinesOnly = true
  try {
    w.finishLine()
    shiftGenerations(w)
    renameSync(w.path, `${w.path}.1`)
    const whileDown = ctx.down()
    const fd = openSync(w.path, 'wx', READABLE) // logrotate's `create`
    const unreadable = ctx.flipPermissions && ctx.random.chance(0.2)
    fchmodSync(fd, unreadable ? 0 : READABLE)
    // Until its postrotate signal, the application writes on into the renamed file.
    const lateFrom = w.seq
    if (ctx.lateWrites) await sleep(ctx.random.int(0, 30))
    w.finishLine()
    w.recordLate(lateFrom)
    w.startGeneration(fd)
    if (unreadable) {
      await sleep(ctx.random.between(300, 1500))
      chmodSync(w.path, READABLE)
    }
    return { done: true, whileDown, unreadable }
  } finally {
    w.wholeLinesOnly = false
  }
}

async function copyTruncate(w: Writer, ctx: RotationContext): Promise<RotationOutcome> {
  w.wholeLinesOnly = true
  try {
    w.finishLine()
    shiftGenerations(w)
    const copy = `${w.path}.1`
    copyFileSync(w.path, copy)
    chmodSync(copy, READABLE)
    const from = w.seq
    // logrotate's gap between its copy and its truncate: the writer goes on meanwhile.
    await sleep(ctx.random.int(0, 20))
    w.finishLine()
    const whileDown = ctx.down()
    truncateSync(w.path, 0)
    w.recordRace(from)
    w.startGeneration()
    return { done: true, whileDown }
  } finally {
    w.wholeLinesOnly = false
  }
}

async function truncateInPlace(w: Writer, ctx: RotationContext): Promise<RotationOutcome> {
  w.paused = true
  try {
    w.finishLine()
    const deadline = Date.now() + COMMIT_WAIT_MS
    while (!ctx.committed(w.path)) {
      if (ctx.ending.aborted || Date.now() > deadline) return { done: false }
      await sleep(50)
    }
    const whileDown = ctx.down()
    truncateSync(w.path, 0)
    w.startGeneration()
    return { done: true, whileDown }
  } finally {
    w.paused = false
  }
}

/** logrotate's numbering: w0.log.N -> w0.log.N+1, oldest first, so w0.log.1 is free. */
function shiftGenerations(w: Writer): void {
  for (let n = w.rotations; n >= 1; n--) {
    const from = `${w.path}.${n}`
    if (existsSync(from)) renameSync(from, `${w.path}.${n + 1}`)
  }
  w.rotations++
}
