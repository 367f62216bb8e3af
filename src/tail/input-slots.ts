/**
 * The shells' input descriptors within a reader's budget (fd-budget.ts): when the budget is
 * used up the idlest files are parked first (closed, reopened by name when they change:
 * FileTable.park); EMFILE or ENFILE anyway (other descriptors, or the whole system out of
 * them) parks some and tries once more. The event-loop shell's opens run concurrently, so a
 * slot is taken before an open starts, and an open may wait until a file becomes parkable
 * (InputSlots); the blocking shell does one thing at a time (SyncInputSlots).
 */
import { closeSync, openSync } from 'node:fs'
import { isErrno } from '../errors.js'
import { closeNow, openNow } from './async-fs.js'
import { parkBatch } from './fd-budget.js'
import { INPUT_OPEN_FLAGS } from './input-fs.js'

/** How long an open waits for a descriptor of the budget at most, and looks again meanwhile. */
const SLOT_WAIT_MS = 10_000
const WAKE_CHECK_MS = 500

export class InputSlots {
  /** Input files this reader may hold open at once. */
  readonly budget: number
  /** Parks up to `count` idle files, closing each through close(); returns how many. */
  readonly #parkIdle: (count: number) => number
  /** Input descriptors held, counting opens under way. */
  #held = 0
  /** Opens waiting for a slot (see #take). */
  readonly #waiting: (() => void)[] = []

  constructor(budget: number, parkIdle: (count: number) => number) {
    this.budget = budget
    this.#parkIdle = parkIdle
  }

  /**
   * Opens an input within the budget. EMFILE or ENFILE anyway (other descriptors, or the whole
   * system out of them): parks some and tries once more.
   */
  async open(path: string): Promise<number> {
    await this.#take()
    try {
      return openNow(path, INPUT_OPEN_FLAGS)
    } catch (err) {
      if (!isErrno(err, 'EMFILE', 'ENFILE') || this.#park() === 0) {
        this.#free()
        throw err
      }
      try {
        return openNow(path, INPUT_OPEN_FLAGS)
      } catch (again) {
        this.#free()
        throw again
      }
    }
  }

  /** Closes an input descriptor and gives its slot back. */
  close(fd: number): void {
    this.#free()
    closeNow(fd)
  }

  /** Counts a descriptor opened outside the budget's count, within its size (prescan's). */
  adopt(): void {
    this.#held++
  }

  /** One file may have become parkable, or one slot free: one waiting open looks again. */
  wake(): void {
    this.#waiting.shift()?.()
  }

  /**
   * Takes one slot: parks idle files when the budget is used up, or waits for one to become
   * parkable (opened, or done reading). If nothing can be parked for SLOT_WAIT_MS (every slot
   * is a nameless file still being written), it goes over the budget rather than stall.
   */
  async #take(): Promise<void> {
    const giveUp = Date.now() + SLOT_WAIT_MS
    while (this.#held >= this.budget && this.#park() === 0 && Date.now() < giveUp) {
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer)
          resolve()
        }
        const timer = setTimeout(() => {
          this.#waiting.splice(this.#waiting.indexOf(wake), 1) // no wake is spent on it later
          resolve()
        }, WAKE_CHECK_MS)
        timer.unref()
        this.#waiting.push(wake)
      })
    }
    this.#held++
  }

  #free(): void {
    this.#held--
    this.wake()
  }

  #park(): number {
    return this.#parkIdle(parkBatch(this.budget, this.#held))
  }
}

/** The blocking shell's descriptors within its budget (see the header). */
export class SyncInputSlots {
  /** Input files this reader may hold open at once. */
  readonly budget: number
  /** Parks up to `count` idle files, closing each through close(); returns how many. */
  readonly #parkIdle: (count: number) => number
  /** Input descriptors held now. */
  #held = 0

  constructor(budget: number, parkIdle: (count: number) => number) {
    this.budget = budget
    this.#parkIdle = parkIdle
  }

  open(path: string): number {
    this.#makeRoom(false)
    try {
      return this.#counted(openSync(path, INPUT_OPEN_FLAGS))
    } catch (err) {
      if (!isErrno(err, 'EMFILE', 'ENFILE') || this.#makeRoom(true) === 0) throw err
      return this.#counted(openSync(path, INPUT_OPEN_FLAGS))
    }
  }

  close(fd: number): void {
    this.#held--
    closeSync(fd)
  }

  #counted(fd: number): number {
    this.#held++
    return fd
  }

  /** Parks idle files when the budget is used up, or `now` (EMFILE). Returns how many. */
  #makeRoom(now: boolean): number {
    if (!now && this.#held < this.budget) return 0
    return this.#parkIdle(parkBatch(this.budget, this.#held))
  }
}
