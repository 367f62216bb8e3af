/**
 * What the reader threads told the main thread of the files they opened, for its checkpoints
 * (the threads keep their own tables; only the main thread saves the state): each source's
 * record, and which thread owns each source key. Apart from threaded.ts because the ownership
 * rule is the subtle part of a thread engine's exactly-once: two threads can hold one key, and
 * only the owner's word counts.
 */
import type { SourceMark } from '../sink/sink.js'
import { resumeMark } from '../state/recover.js'
import { anotherFile, identityKey } from '../tail/cursor.js'
import { identityOf, type SourceState } from '../tail/source-state.js'

/** Who hears of a source besides the checkpoints (top-down's writer and its time order). */
export interface SourceListeners {
  /** The event-loop writer drops the offset it holds for `key` (top-down only). */
  readonly forget?: (key: string) => void
  /** The event-loop writer notes where a source starts (top-down only). */
  readonly note?: (mark: SourceMark) => void
  /** A file opened, for the time order (top-down with --order time). */
  readonly opened?: (key: string, path: string) => void
  /** Save a checkpoint soon: a file new to the state. */
  readonly save: () => void
}

export class ThreadSources {
  /** Each source's record (source key -> state), for checkpoints and metrics. */
  readonly states = new Map<string, SourceState>()
  /**
   * The reader thread that last told of each source key. Two threads can hold one key: an inode
   * whose file one thread followed (since deleted, its entry not dropped yet) is a file of
   * another thread's rotation family now. The newer file is the owner's; the old entry is
   * stale, and what its thread says of the key (a forget) must not undo the owner's.
   */
  readonly #owner = new Map<string, number>()
  #seen = 0
  readonly #listeners: SourceListeners

  constructor(listeners: SourceListeners) {
    this.#listeners = listeners
  }

  /** How many times a thread told of a source (the checkpointer saves when it changed). */
  get seen(): number {
    return this.#seen
  }

  /** The thread that owns `key`, if any (the locked writer asks, see LockedWriter.ownerOf). */
  ownerOf(key: string): number | undefined {
    return this.#owner.get(key)
  }

  /** A source the start-up decided on (from the state, or prescan), before any thread reads. */
  started(source: SourceState): void {
    this.states.set(identityKey(source), source)
  }

  /**
   * A thread opened a file: recorded for checkpoints, and told to the time order. A key another
   * thread told of before, or one the state recorded for a file born at another time, is a
   * deleted file's inode, reused: the loop writer drops the old file's offset first (its note
   * of the new file is ignored while it has one), or a checkpoint paired the new file with the
   * old one's offset and fingerprint (the mixed soak, top-down: copies read twice after a
   * restart, 294 lines; with the state's entry, 12 copies in 200 kills, 2,626 lines).
   */
  told(key: string, source: SourceState, thread: number): void {
    const owner = this.#owner.get(key)
    const old = this.states.get(key)
    // Another thread's, or (a source the state recorded, no thread's yet) born at another time.
    const stale =
      (owner !== undefined && owner !== thread) ||
      (old !== undefined && anotherFile(identityOf(old), identityOf(source)))
    if (stale) this.#listeners.forget?.(key)
    this.#owner.set(key, thread)
    const isNew = !this.states.has(key)
    this.states.set(key, source)
    this.#seen++
    this.#listeners.note?.(resumeMark(source))
    this.#listeners.opened?.(key, source.path)
    // A file new to the state is recorded at once, not at the next interval (one the start-up
    // checkpoint has already recorded can wait: 10,000 files opened at start asked for a
    // checkpoint of 10,000 sources each).
    if (isNew) this.#listeners.save()
  }

  /** A thread forgot a file: unless another thread owns its key now (see #owner). */
  forgot(key: string, thread: number): void {
    const owner = this.#owner.get(key)
    if (owner !== undefined && owner !== thread) return
    this.#owner.delete(key)
    this.states.delete(key)
    this.#listeners.forget?.(key)
  }
}
