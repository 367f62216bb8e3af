/**
 * When a file that changes is read: the first change after a quiet spell at once, so a line
 * written now and then reaches the output within a millisecond; then, while changes keep
 * coming, one read every FOLD_MS at most, which takes everything they wrote. A writer logging a
 * line at a time makes one change event per line (2,000 a second is ordinary): reading each
 * one costs a stat and a read per line, and that, not the bytes, was where the CPU went.
 *
 * Pure bookkeeping, no timers: the shells ask whether to read now and when the next folded
 * read is due, and arm their own timer (event loop) or wait (Atomics.wait in a thread).
 */

/** The shortest time between two reads of a file that keeps changing (ms). */
export const FOLD_MS = 5

export class Pacer<F extends object> {
  readonly #foldMs: number
  /** When each file was last read (ms, performance.now()). */
  readonly #lastRead = new WeakMap<F, number>()
  /** Reads put off: file -> when it is due. */
  readonly #due = new Map<F, number>()

  constructor(foldMs = FOLD_MS) {
    this.#foldMs = foldMs
  }

  /**
   * `file` changed at `now`: true to read it now; false when the change is folded into a read
   * due later (see due). A change while a read is already put off adds nothing.
   */
  changed(file: F, now: number): boolean {
    if (this.#due.has(file)) return false
    const last = this.#lastRead.get(file)
    if (last === undefined || now - last >= this.#foldMs) return true
    this.#due.set(file, last + this.#foldMs)
    return false
  }

  /** A read of `file` begins at `now` (whatever asked for it): it takes any read put off. */
  reading(file: F, now: number): void {
    this.#lastRead.set(file, now)
    this.#due.delete(file)
  }

  /** Takes the files whose read is due at `now`. */
  takeDue(now: number): F[] {
    const due: F[] = []
    for (const [file, at] of this.#due) {
      if (at > now) continue
      due.push(file)
      this.#due.delete(file)
    }
    return due
  }

  /** Milliseconds from `now` until the next read put off is due (0: now), or null: none. */
  nextIn(now: number): number | null {
    let next: number | null = null
    for (const at of this.#due.values()) if (next === null || at < next) next = at
    return next === null ? null : Math.max(0, next - now)
  }

  /** `file` is no longer followed: no read of it is due. */
  forget(file: F): void {
    this.#due.delete(file)
  }

  /** Reads put off now. */
  get pending(): number {
    return this.#due.size
  }
}
