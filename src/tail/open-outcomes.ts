/**
 * What the shells make of each outcome of opening an input name, a stat of which showed a
 * regular file: the open failed (gone since the stat, or unreadable: followed by identity from
 * then on, warned about once), it worked (a fault said again once it clears), the descriptor
 * is not a regular file after all, or the file is taken into the table and where it starts.
 * Both shells open in the same order with their own calls (openSync, or the event loop's);
 * the decisions, the table's bookkeeping and what the writer and the operator are told are
 * here once. No I/O.
 *
 * A shell's #open walks it in this order: [open] then failed or worked; [fstat] movedOn (the
 * shell looks at the name again), readable;
 * [first bytes] startSize; [the line start under --from end] taken; on an error while reading
 * readFailed; the shell closes the descriptor unless taken returned a file, then announces it.
 */
import { describeErrno, isErrno, isSystemError } from '../errors.js'
import type { Logger } from '../log.js'
import { type Identity, sameIdentity } from './cursor.js'
import type { FileTable } from './file-table.js'
import type { FileKind } from './input-faults.js'
import type { SourceTeller } from './source-teller.js'
import type { Tracked } from './tracked.js'

/** Looks at a name whose file changed between the stat and the open (see movedOn). */
export const OPEN_ATTEMPTS = 3

/** What a stat of the file shows (fs.Stats has it). */
type StatedFile = FileKind & Identity & { readonly size: number }

export class OpenOutcomes<H> {
  readonly #table: FileTable<H>
  readonly #teller: Pick<SourceTeller, 'announce' | 'reborn'>
  readonly #log: Pick<Logger, 'warnOnce' | 'forget' | 'info'>
  readonly #follow: boolean
  readonly #fromEnd: boolean

  constructor(
    table: FileTable<H>,
    teller: Pick<SourceTeller, 'announce' | 'reborn'>,
    log: Pick<Logger, 'warnOnce' | 'forget' | 'info'>,
    opts: { readonly follow: boolean; readonly from: 'start' | 'end' },
  ) {
    this.#table = table
    this.#teller = teller
    this.#log = log
    this.#follow = opts.follow
    this.#fromEnd = opts.from === 'end'
  }

  /**
   * Opening `path`, which a stat showed to be `named`, failed with `err`. Gone since the stat:
   * the next look says what is there. Otherwise (EACCES...) the file is followed by identity
   * from now on (see FileTable.trackUnopened), and the writer told of it, so that a search
   * finds it if it is rotated away before it can be opened; warned about once.
   */
  failed(path: string, named: StatedFile, err: unknown): void {
    if (isErrno(err, 'ENOENT')) {
      this.#table.unreadable.add(path)
      return
    }
    this.#table.openFailed(path, named)
    const unopened = this.#table.trackUnopened(path, named, this.#fromEnd)
    if (unopened) this.#teller.announce(unopened)
    this.#warnUnopened(path, err)
  }

  /**
   * Reopening a parked file by its name failed: gone (the next look at the name finds what it
   * leads to now, and the parked file by identity), or warned about once.
   */
  reopenFailed(path: string, err: unknown): void {
    if (!isErrno(err, 'ENOENT')) this.#warnUnopened(path, err)
  }

  /** The open worked: a fault warned about at `path` is said to be over. */
  worked(path: string): void {
    this.#table.openWorked(path, this.#log)
  }

  /**
   * The descriptor opened at `path` is not the file the stat before it showed (`named`): the
   * name moved on between the stat and the open (rotated). The shell closes it and looks at the
   * name again, so that what the look does before a new file is read (the rest of a recorded
   * file now beside the name, generations created and rotated away meanwhile) is done for the
   * file now there. Taken as it was, a recorded generation renamed in that window was read only
   * after the next one, when a later search found it (the soak's top-down run in CI, and the
   * 200-kill soak's threads run). After OPEN_ATTEMPTS looks the file opened is taken anyway (a
   * name renamed faster than it can be looked at); its order is then the periodic search's.
   */
  movedOn(named: Identity, st: Identity, attempt: number): boolean {
    return attempt < OPEN_ATTEMPTS && !sameIdentity(named, st)
  }

  /**
   * The descriptor opened at `path` has the fstat `st`: false when it is not a regular file
   * (swapped for a FIFO or a device since the stat: never read one, it may never end; the
   * shell closes it). A deleted file's entry at its inode is dropped (see FileTable.dropReborn)
   * and the writer told.
   */
  readable(path: string, st: StatedFile): boolean {
    if (this.#table.judgeName(path, { stats: st }, this.#follow, this.#log) === null) return false
    const reborn = this.#table.dropReborn(st)
    if (reborn) this.#teller.reborn(reborn, path)
    return true
  }

  /**
   * Under --from end, where the file `st` at `path` begins (see FileTable.startSize): the shell
   * finds the line start before it. Null: no line start to find. Asked after the first bytes
   * are read, as the table may have changed meanwhile (the event loop's reads yield).
   */
  startSize(path: string, st: StatedFile): number | null {
    return this.#fromEnd ? this.#table.startSize(path, st) : null
  }

  /**
   * The table takes the file opened at `path` (`handle`, its fstat `st` and first bytes
   * `head`), beginning at `lineStart` when `startSize` was not null (see FileTable.opened).
   * Null when it is already open under another name: the shell closes `handle`. The shell
   * announces the file returned once its handle is settled.
   */
  taken(
    path: string,
    handle: H,
    st: StatedFile,
    head: Buffer,
    startSize: number | null,
    lineStart: number,
  ): Tracked<H> | null {
    const file = { identity: st, size: st.size, head }
    return this.#table.opened(path, handle, file, startSize !== null, lineStart)
  }

  /**
   * Reading the opened file's stat or first bytes failed with `err`: the disk or the file
   * system, warned about once (the shell closes the descriptor and the next look tries again);
   * anything else is a bug, thrown.
   */
  readFailed(path: string, err: unknown): void {
    if (!isSystemError(err)) throw err
    this.#log.warnOnce(
      `open:${path}`,
      `cannot read ${path}: ${describeErrno(err)}; will keep trying`,
    )
  }

  #warnUnopened(path: string, err: unknown): void {
    this.#log.warnOnce(
      `open:${path}`,
      `cannot open ${path}: ${describeErrno(err as NodeJS.ErrnoException)}; will keep trying`,
    )
  }
}
