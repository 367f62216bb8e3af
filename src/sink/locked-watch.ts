/**
 * The locked writer's side in the thread that opened the output (the main thread): the fds it
 * opened and alone closes, the switches to a new file it asks for, the checkpoint after each
 * switch before the gate lets the writers go on, and (with a watch) the outage reports and the
 * output path's watch. Apart from locked-writer.ts because none of it is on the write path: the
 * writers only make the switch (locked-share.ts's switchLocked) and wait at the gate. The main
 * thread never waits on the lock for long here: a writer may hold it through a full disk.
 */
import { closeSync } from 'node:fs'
import type { Logger } from '../log.js'
import { CELL, type LockedWriterShare, switchLocked } from './locked-share.js'
import type { Mutex } from './mutex.js'
import {
  checkOutput,
  openOutputSync,
  RETRYABLE,
  resumedMessage,
  stalledMessage,
} from './output-file.js'
import { heldMessage, type OutputChange, OutputWatch, unheldMessage } from './output-watch.js'
import { PauseClock } from './pause-clock.js'

/** How long the main thread waits for the lock before it makes do without (see snapshot()). */
export const MAIN_WAIT_MS = 100

/** The main thread's watch over the output (only the thread that opened it has one). */
export interface LockedWriterWatch {
  readonly log: Logger
  /** How often (ms) to report outages and compare the output's path with the open file. */
  readonly intervalMs: number
  /** After a switch to a new file and before any byte goes to it: save a checkpoint. */
  readonly onSwitch?: () => Promise<void> | void
}

export class LockedWatch {
  readonly #path: string
  readonly #mutex: Mutex
  readonly #cells: Int32Array
  readonly #size: Float64Array
  #options: LockedWriterWatch | null = null
  #timer: NodeJS.Timeout | null = null
  #closed = false
  #seenStalls = 0
  #reported = false
  #seenSwitches = 0
  #checkpointing = false
  readonly #watch = new OutputWatch()
  /** Times writing was held: the output went away and cannot be created again (yet); writes
   * wait at the gate meanwhile. */
  readonly holds = new PauseClock()
  /** Every output fd this thread opened and has not closed: it closes them all (a worker
   * closing an fd another thread opened makes Node warn). */
  readonly #opened = new Set<number>()
  /**
   * Fds with an fsync on libuv's pool (how many), which #closeRetired leaves open: closed
   * before the fsync ran, it failed with EBADF (a checkpoint lost to a reopen; seen on Node 24),
   * or, the number reused by another open meanwhile, synced some other file.
   */
  readonly #syncing = new Map<number, number>()

  constructor(share: LockedWriterShare, mutex: Mutex, cells: Int32Array, size: Float64Array) {
    this.#path = share.path
    this.#mutex = mutex
    this.#cells = cells
    this.#size = size
  }

  /** `fd` was opened by this thread: it closes it once no thread writes to it. */
  opened(fd: number): void {
    this.#opened.add(fd)
  }

  /** Reports outages and watches the output path every `options.intervalMs`. */
  start(options: LockedWriterWatch): void {
    this.#cells[CELL.watched] = 1
    this.#options = options
    this.#timer = setInterval(() => this.#tick(), options.intervalMs)
    this.#timer.unref()
  }

  /** An fsync of `fd` begins (see #syncing). */
  syncStarted(fd: number): void {
    this.#syncing.set(fd, (this.#syncing.get(fd) ?? 0) + 1)
  }

  /** An fsync of `fd` is over. */
  syncEnded(fd: number): void {
    const left = (this.#syncing.get(fd) ?? 1) - 1
    if (left > 0) this.#syncing.set(fd, left)
    else this.#syncing.delete(fd)
  }

  /** Stops the watch and closes every fd this thread opened (no thread writes any more). */
  close(): void {
    this.#closed = true
    if (this.#timer) clearInterval(this.#timer)
    if (this.#path === '-') return
    Atomics.store(this.#cells, CELL.nextFd, -1)
    for (const fd of this.#opened) closeSync(fd)
    this.#opened.clear()
  }

  /** Hands `fd` to whoever switches first (this thread, if the lock is free). */
  requestSwitch(fd: number): void {
    this.#opened.add(fd)
    Atomics.store(this.#cells, CELL.nextFd, fd) // a newer open wins over one not switched to
    Atomics.notify(this.#cells, CELL.nextFd) // a writer waiting out a failed write wakes
    this.#trySwitch()
  }

  #tick(): void {
    if (this.#closed) return
    this.#reportOutage()
    this.#closeRetired()
    if (Atomics.load(this.#cells, CELL.switches) !== this.#seenSwitches) void this.#afterSwitch()
    else if (Atomics.load(this.#cells, CELL.nextFd) !== -1) this.#trySwitch()
    else this.#checkPath()
  }

  /**
   * Closes the fds this thread opened that no thread writes to any more. Under the lock, so no
   * writer switches meanwhile; if a writer holds it, at a later tick.
   */
  #closeRetired(): void {
    if (this.#opened.size < 2 || !this.#mutex.lockFor(10)) return
    try {
      const current = Atomics.load(this.#cells, CELL.fd)
      const pending = Atomics.load(this.#cells, CELL.nextFd)
      for (const fd of this.#opened) {
        if (fd === current || fd === pending || this.#syncing.has(fd)) continue
        closeSync(fd)
        this.#opened.delete(fd)
      }
    } finally {
      this.#mutex.unlock()
    }
  }

  /** Says once when writes began to fail and once when they went through again. */
  #reportOutage(): void {
    const log = this.#options?.log
    const stalls = Atomics.load(this.#cells, CELL.stalls)
    if (!log || stalls === this.#seenStalls) return
    this.#seenStalls = stalls
    if (!this.#reported) {
      const code = RETRYABLE[(this.#cells[CELL.stallCode] as number) - 1] ?? 'EIO'
      const err = Object.assign(new Error(code), { code })
      log.warn(stalledMessage(this.#path, err))
      this.#reported = true
    }
    if (stalls % 2 === 0) {
      log.warn(resumedMessage(this.#path))
      this.#reported = false
    }
  }

  /**
   * Is the open file still the one at the output path, as long as we wrote it? If not, say so
   * and open the path again, so no line goes on silently into a deleted file. While the path
   * cannot be created, writes wait at the gate (the lines wait in their files).
   */
  #checkPath(): void {
    const path = this.#path
    const log = this.#options?.log
    if (path === '-' || !log) return
    let change: OutputChange | null = null
    try {
      if (this.#mutex.lockFor(10)) {
        try {
          change = checkOutput(path, this.#cells[CELL.fd] as number, this.#size[0] as number)
        } finally {
          this.#mutex.unlock()
        }
      } else {
        // A writer holds the lock (maybe through a full disk): identity only, no size check.
        change = checkOutput(path, Atomics.load(this.#cells, CELL.fd), 0)
      }
    } catch {
      return // the fd cannot be stat'ed (the device is failing): the writes will tell
    }
    const held = this.holds.paused
    const due = this.#watch.due(change, held, path)
    if (!due) return
    // The warning is said once the new file is handed over (or cannot be opened), not before:
    // it says that the lines written before it went to the old file, and a write between the
    // warning and the hand-over went there too (see LoopWriter's #announce).
    let fd: number
    try {
      fd = openOutputSync(path)
    } catch (err) {
      if (!held) {
        if (due.warning) log.warn(due.warning)
        log.warn(heldMessage(path, err as Error))
        this.holds.begin()
        Atomics.store(this.#cells, CELL.gate, 1)
      }
      return
    }
    if (held) {
      log.warn(unheldMessage(path))
      this.holds.end()
    }
    this.requestSwitch(fd)
    // From here every write switches first (see LockedWriter's #enter).
    if (due.warning) log.warn(due.warning)
  }

  #trySwitch(): void {
    if (this.#mutex.lockFor(MAIN_WAIT_MS)) {
      try {
        switchLocked(this.#cells, this.#size)
      } finally {
        this.#mutex.unlock()
      }
      this.#closeRetired()
    }
    if (Atomics.load(this.#cells, CELL.switches) !== this.#seenSwitches) void this.#afterSwitch()
  }

  /** After a switch: checkpoint the new file, then let the writers go on. */
  async #afterSwitch(): Promise<void> {
    if (this.#checkpointing) return
    this.#checkpointing = true
    try {
      for (;;) {
        const switches = Atomics.load(this.#cells, CELL.switches)
        this.#seenSwitches = switches
        try {
          await this.#options?.onSwitch?.()
        } catch (err) {
          this.#options?.log.warn(
            `checkpoint after reopening ${this.#path}: ${(err as Error).message}`,
          )
        }
        // Another switch meanwhile: checkpoint that file too before opening the gate.
        if (Atomics.load(this.#cells, CELL.switches) === switches) break
      }
    } finally {
      this.#checkpointing = false
    }
    this.#closeRetired()
    if (this.holds.paused) return
    Atomics.store(this.#cells, CELL.gate, 0)
    Atomics.notify(this.#cells, CELL.gate)
  }
}
