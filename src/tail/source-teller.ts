/**
 * What the readers tell the writer and their owner about the files they follow: where a file
 * newly followed starts (the writer's note, for checkpoints), the owner's onSource (a reader
 * thread tells the main thread what it needs for checkpoints), told again whenever the file's
 * first bytes change, and what a search took over (see TakenFile). Both shells tell the same
 * things in the same way, so it is here once. No I/O.
 */
import type { Logger } from '../log.js'
import type { SourceMark } from '../sink/sink.js'
import type { RecordedCopy, TakenFile } from './generation-search.js'
import { markOf, type Tracked } from './tracked.js'

/** The writer's side of telling (BlockSink and SyncSink both have it). */
export interface NoteSink {
  note?(mark: SourceMark): void
  forget?(key: string): void
}

export class SourceTeller {
  readonly #sink: NoteSink
  readonly #log: Pick<Logger, 'info' | 'debug'>
  readonly #onSource: ((file: Tracked<unknown>) => void) | undefined
  /** The fingerprint each file was last told with (see tell). */
  readonly #headSent = new WeakMap<Tracked<unknown>, Buffer>()

  constructor(
    sink: NoteSink,
    log: Pick<Logger, 'info' | 'debug'>,
    onSource: ((file: Tracked<unknown>) => void) | undefined,
  ) {
    this.#sink = sink
    this.#log = log
    this.#onSource = onSource
  }

  /**
   * Tells the owner about `file` (reader threads: the main thread keeps what it needs for
   * checkpoints), again whenever its first bytes grew or changed: a file opened empty must not
   * stay recorded with an empty fingerprint, which would match whatever replaced it.
   */
  tell(file: Tracked<unknown>): void {
    if (!this.#onSource) return
    this.#headSent.set(file, file.cursor.head)
    this.#onSource(file)
  }

  /** A file newly followed: where it starts goes to the writer (for checkpoints) and the owner. */
  announce(file: Tracked<unknown>): void {
    this.#sink.note?.(markOf(file))
    this.tell(file)
  }

  /** After a read: tell again if the fingerprint moved on since it was last told. */
  retellIfHeadChanged(file: Tracked<unknown>): void {
    const sent = this.#headSent.get(file)
    if (sent !== undefined && sent !== file.cursor.head) this.tell(file)
  }

  /** A file a search took over: the writer, the operator and the owner are told. */
  taken(taken: TakenFile<unknown>): void {
    if (taken.forget !== null) this.#sink.forget?.(taken.forget)
    if (taken.note !== null) this.#sink.note?.(taken.note)
    if (taken.message) this.#log.info(taken.message)
    this.tell(taken.file)
  }

  /**
   * A copytruncate copy read to its end (see CopySearch.recorded): the copy before it, written
   * over in place, leaves the writer's offsets first; then it is checkpointed as read to its
   * end, so a restart does not take it for a new generation. The shell closes `release` first.
   */
  copyRecorded(copy: RecordedCopy<unknown>): void {
    if (copy.forget !== null) this.#sink.forget?.(copy.forget)
    this.announce(copy.announce)
  }

  /**
   * A file deleted while we did not hold it, whose inode the file now at `path` has (see
   * FileTable.dropReborn): the writer forgets it, and the new file is announced as any other.
   */
  reborn(file: Tracked<unknown>, path: string): void {
    this.#log.debug(`${file.path}: deleted; its inode is ${path}'s now; forgotten`)
    this.#sink.forget?.(file.key)
  }

  /** A missing file a periodic scan dropped (see MissingScan.settle): the writer forgets it. */
  gone(file: Tracked<unknown>, dir: string): void {
    this.#log.debug(`${file.path}: gone from ${dir}; forgotten`)
    this.#sink.forget?.(file.key)
  }
}
