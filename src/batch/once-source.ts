/**
 * One input of the `--once --order time` merge (merge.ts): what the merge keeps about it while
 * it merges, and where its merge starts. Apart from the merge because the start is the
 * exactly-once rule of a resumed run: a file starts at its checkpoint's offset only when it is
 * the file the checkpoint saw (the same identity, and it still starts with the same bytes);
 * any other file starts where --from says.
 */
import { fstatSync, openSync } from 'node:fs'
import { describeErrno } from '../errors.js'
import { labelPrefix, type SourceInfo } from '../format/formats.js'
import type { Logger } from '../log.js'
import { FileOffsets } from '../order/file-offsets.js'
import { identityKey } from '../tail/cursor.js'
import { lineStartBeforeSync } from '../tail/from-end.js'
import { readHeadSync } from '../tail/input-fs.js'
import { type SourceState, sourceRecord } from '../tail/source-state.js'
import type { TimestampFormat } from '../time/timestamps.js'

export interface OnceSource {
  readonly index: number
  readonly fd: number
  readonly offsets: FileOffsets
  /** Its identity key (dev:ino), as the writer's marks name it. */
  readonly key: string
  readonly state: SourceState
  readonly info: SourceInfo & { readonly prefix: Buffer }
  /** Where reading starts (moved by resumeAt) and stops (a partition's end; default the file's). */
  startOffset: number
  end?: number
  /** The timestamp format found by a planner (plan.ts); default --timestamp-format or auto. */
  format?: TimestampFormat
  readonly size: number
  readonly mtimeMs: number
  /** The file offset read up to (progress). */
  readTo: number
  /** The block runs were last copied from, and where it lies in the arena (CopyArena.baseOf). */
  block: Buffer | null
  base: number
  done: boolean
  /** The merge's offset just past the last record written (for the next write's marks). */
  written: number
  touched: boolean
  /** Its fd belongs to another thread's merge (openParts): not closed here. */
  borrowed?: boolean
}

/** A source as it is added to the merge, before anything of it is read. */
export type SourceInit = Pick<
  OnceSource,
  'fd' | 'key' | 'state' | 'startOffset' | 'end' | 'format' | 'size' | 'mtimeMs' | 'borrowed'
> & { readonly label: string }

/** Source `index` of a merge, to be read from its startOffset, with nothing read yet. */
export function newSource(index: number, init: SourceInit): OnceSource {
  const { label, ...source } = init
  return {
    ...source,
    index,
    offsets: new FileOffsets(),
    info: { label, path: init.state.path, prefix: labelPrefix(label) },
    readTo: init.startOffset,
    block: null,
    base: -1,
    done: false,
    written: 0,
    touched: false,
  }
}

/** An input opened where its merge starts, with the first bytes a checkpoint records of it. */
export interface OpenedInput extends Omit<SourceInit, 'label'> {
  readonly head: Buffer
}

/**
 * Opens `path` and finds where its merge starts: the offset `resume` (the checkpoint's sources)
 * records for this very file, else its start or its last line (`from`). null, with a warning,
 * when it cannot be opened.
 */
export function openInput(
  path: string,
  resume: readonly SourceState[],
  from: 'start' | 'end',
  log: Logger,
): OpenedInput | null {
  let fd: number
  try {
    fd = openSync(path, 'r')
  } catch (err) {
    log.warn(`cannot open ${path}: ${describeErrno(err as NodeJS.ErrnoException)}`)
    return null
  }
  const st = fstatSync(fd, { bigint: false })
  const head = readHeadSync(fd)
  const key = identityKey(st)
  const known = resume.find((r) => identityKey(r) === key)
  const startOffset =
    known && known.offset <= st.size && sameStart(Buffer.from(known.head, 'base64'), head)
      ? known.offset
      : from === 'start'
        ? 0
        : lineStartBeforeSync(fd, st.size)
  return {
    fd,
    key,
    state: sourceRecord(st, path, head.toString('base64'), startOffset),
    startOffset,
    size: st.size,
    mtimeMs: st.mtimeMs,
    head,
  }
}

/** The file still starts with the bytes a checkpoint saw (it is the same file, not a reused inode). */
function sameStart(known: Buffer, now: Buffer): boolean {
  return known.length <= now.length && now.subarray(0, known.length).equals(known)
}
