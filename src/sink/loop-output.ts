/**
 * The event-loop writer's output file: the fd written to, a new one waiting to be switched to at
 * the next block boundary (or failed write), the switch itself (checkpointed before a byte goes
 * to the new file), and the path's watch, which opens the output again when it was deleted,
 * moved, replaced or truncated, and holds writing while it cannot be created. Apart from
 * loop-writer.ts, which queues and writes the blocks: this is which file they go to. The watch's
 * decisions are output-watch.ts's, the same as the locked writer's.
 */
import { close, fstat, fsync } from 'node:fs'
import { promisify } from 'node:util'
import type { Logger } from '../log.js'
import { checkOutput, openOutputAsync } from './output-file.js'
import { heldMessage, type OutputChange, OutputWatch, unheldMessage } from './output-watch.js'
import type { WrittenState } from './written-state.js'

const fsyncAsync = promisify(fsync)
const closeAsync = promisify(close)
const fstatAsync = promisify(fstat)

/** What the output needs of the writer's options (LoopWriterOptions). */
export interface LoopOutputOptions {
  readonly log: Logger
  /** After a switch and before writing to the new file: save a checkpoint. */
  readonly onSwitch?: () => Promise<void> | void
}

/** What the output tells the writer, or asks of it. */
export interface LoopOutputHooks {
  /** A new fd waits to be switched to: the writer wakes a retry's sleep and flushes. */
  readonly next: () => void
  /** Writing was held or let go (a pause, for health()). */
  readonly heldChanged: () => void
  /** The writer is closed or failed for good: the watch no longer acts. */
  readonly over: () => boolean
}

export class LoopOutput {
  readonly #path: string
  #fd: number
  /** A new fd for the output path, switched to at the next block boundary (or failed write). */
  #next: number | null = null
  /** reopen() calls waiting for the switch. */
  #switched: (() => void)[] = []
  /** Why writing is held: the output went away and cannot be created again (yet). */
  #held: string | null = null
  #unheld: (() => void)[] = []
  /** A reopen by the watch is under way. */
  #replacing = false
  /** The watch's decisions from tick to tick (see OutputWatch). */
  readonly #watch = new OutputWatch()
  /**
   * The watch's warning about a change (deleted, moved, replaced), said once the new file is
   * the one written to (see switch()), or once it cannot be opened: it says that the lines
   * written before it went to the old file, so none written after it may.
   */
  #announce: string | null = null
  #watchTimer: NodeJS.Timeout | null = null
  /** Where a switch records the new file's size and identity (the writer's checkpoint view). */
  readonly #state: WrittenState
  readonly #opts: LoopOutputOptions
  readonly #hooks: LoopOutputHooks

  constructor(
    path: string,
    fd: number,
    state: WrittenState,
    opts: LoopOutputOptions,
    hooks: LoopOutputHooks,
  ) {
    this.#path = path
    this.#fd = fd
    this.#state = state
    this.#opts = opts
    this.#hooks = hooks
  }

  /** The fd written to now. */
  get fd(): number {
    return this.#fd
  }

  /** Whether writing is held (the output path cannot be created again yet). */
  get held(): boolean {
    return this.#held !== null
  }

  /** Whether a new fd waits to be switched to. */
  get switchPending(): boolean {
    return this.#next !== null
  }

  /** Resolves once writing is no longer held (or the writer failed for good). */
  whenUnheld(): Promise<void> {
    return new Promise<void>((resolve) => this.#unheld.push(resolve))
  }

  /** Compares the output's path with the open file every `ms` (see #check). */
  watch(ms: number): void {
    this.#watchTimer = setInterval(() => this.#check(), ms)
    this.#watchTimer.unref()
  }

  stopWatching(): void {
    if (this.#watchTimer) clearInterval(this.#watchTimer)
  }

  /**
   * Opens the output path again and has the writer switch to it; resolves once switched and
   * checkpointed (see LoopWriter.reopen).
   */
  async reopen(): Promise<void> {
    const fd = await openOutputAsync(this.#path)
    const switched = new Promise<void>((resolve) => this.#switched.push(resolve))
    this.#switchTo(fd)
    await switched
  }

  /**
   * Switches to the fd waiting (the old file is synced, then closed). The state then names the
   * new file, with its size now, before any byte of ours goes to it.
   */
  async switch(): Promise<void> {
    const next = this.#next
    if (next === null) return
    this.#next = null
    const old = this.#fd
    await fsyncAsync(old).catch(() => {}) // its bytes are in checkpoints; some files cannot sync
    const st = await fstatAsync(next)
    this.#fd = next
    this.#state.newFile(st.size, { dev: st.dev, ino: st.ino })
    this.#sayChange() // every byte from here on goes to the new file
    await closeAsync(old).catch(() => {})
    try {
      await this.#opts.onSwitch?.()
    } catch (err) {
      this.#opts.log.warn(`checkpoint after reopening ${this.#path}: ${(err as Error).message}`)
    }
    this.releaseSwitchWaiters()
  }

  /** Resolves the reopen() calls waiting (the writer closes, or failed for good). */
  releaseSwitchWaiters(): void {
    for (const resolve of this.#switched.splice(0)) resolve()
  }

  /** The writer failed for good: nobody waits for the output any more. */
  releaseAll(): void {
    for (const resolve of this.#unheld.splice(0)) resolve()
    this.releaseSwitchWaiters()
  }

  #switchTo(fd: number): void {
    // A newer open wins over one not switched to yet.
    if (this.#next !== null) void closeAsync(this.#next).catch(() => {})
    this.#next = fd
    this.#hooks.next()
  }

  /**
   * The watch: is the open file still the one at the output path, as long as we wrote it? If
   * not, say so and open the path again, so no line goes on silently into a deleted file.
   */
  #check(): void {
    if (this.#next !== null || this.#replacing || this.#hooks.over()) return
    let change: OutputChange | null
    try {
      change = checkOutput(this.#path, this.#fd, this.#state.size)
    } catch {
      return // the fd cannot be stat'ed (the device is failing): the writes will tell
    }
    const due = this.#watch.due(change, this.#held !== null, this.#path)
    if (!due) return
    // Said once, not again at each tick while the path cannot be created (see #replace).
    if (due.warning !== null) this.#announce = due.warning
    void this.#replace()
  }

  /** Says the watch's warning, if one is waiting (see #announce). */
  #sayChange(): void {
    if (this.#announce !== null) this.#opts.log.warn(this.#announce)
    this.#announce = null
  }

  /** Opens the path again for the watch; while that fails, writing is held (nothing is lost). */
  async #replace(): Promise<void> {
    this.#replacing = true
    try {
      const fd = await openOutputAsync(this.#path)
      if (this.#held !== null) {
        this.#opts.log.warn(unheldMessage(this.#path))
        this.#held = null
        this.#hooks.heldChanged()
        for (const resolve of this.#unheld.splice(0)) resolve()
      }
      this.#switchTo(fd)
    } catch (err) {
      if (this.#held === null) {
        this.#sayChange()
        this.#opts.log.warn(heldMessage(this.#path, err as Error))
      }
      this.#held = (err as Error).message
      this.#hooks.heldChanged()
    } finally {
      this.#replacing = false
    }
  }
}
