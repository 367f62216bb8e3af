/**
 * A mutex any thread can use: one Int32 in a SharedArrayBuffer, taken with
 * Atomics.compareExchange and waited on with Atomics.wait / Atomics.notify (the notes' `Lock`,
 * BetterWay54). The three-state futex design (0 free, 1 taken, 2 taken with waiters) from
 * Drepper's "Futexes Are Tricky": an unlock only calls notify when someone may be waiting.
 * Node allows Atomics.wait on the main thread too, so the same lock serves every engine.
 */
const FREE = 0
const TAKEN = 1
const CONTENDED = 2

export class Mutex {
  readonly #cell: Int32Array

  /** `buffer` is shared with the other threads; `index` picks the Int32 cell used. */
  constructor(buffer: SharedArrayBuffer, index = 0) {
    this.#cell = new Int32Array(buffer, index * 4, 1)
  }

  static create(): Mutex {
    return new Mutex(new SharedArrayBuffer(4))
  }

  /** The shared memory to hand to another thread: `new Mutex(buffer)` there is the same lock. */
  get buffer(): SharedArrayBuffer {
    return this.#cell.buffer as SharedArrayBuffer
  }

  lock(): void {
    let state = Atomics.compareExchange(this.#cell, 0, FREE, TAKEN)
    if (state === FREE) return
    // Mark the lock contended and sleep until an unlock wakes us; retry as a contender.
    if (state !== CONTENDED) state = Atomics.exchange(this.#cell, 0, CONTENDED)
    while (state !== FREE) {
      Atomics.wait(this.#cell, 0, CONTENDED)
      state = Atomics.exchange(this.#cell, 0, CONTENDED)
    }
  }

  /**
   * Takes the lock if it comes free within `ms`; false if not. For a thread that must not wait
   * for long (the main thread, which handles signals and prints what the others report).
   */
  lockFor(ms: number): boolean {
    let state = Atomics.compareExchange(this.#cell, 0, FREE, TAKEN)
    if (state === FREE) return true
    const deadline = performance.now() + ms
    if (state !== CONTENDED) state = Atomics.exchange(this.#cell, 0, CONTENDED)
    while (state !== FREE) {
      const left = deadline - performance.now()
      // Giving up leaves the cell marked contended: the holder's unlock then notifies for
      // nobody, which costs a syscall and nothing else.
      if (left <= 0) return false
      Atomics.wait(this.#cell, 0, CONTENDED, left)
      state = Atomics.exchange(this.#cell, 0, CONTENDED)
    }
    return true
  }

  tryLock(): boolean {
    return Atomics.compareExchange(this.#cell, 0, FREE, TAKEN) === FREE
  }

  unlock(): void {
    if (Atomics.sub(this.#cell, 0, 1) !== TAKEN) {
      Atomics.store(this.#cell, 0, FREE)
      Atomics.notify(this.#cell, 0, 1)
    }
  }

  /** Runs `fn` holding the lock (the `with lock:` of the notes). */
  withLock<T>(fn: () => T): T {
    this.lock()
    try {
      return fn()
    } finally {
      this.unlock()
    }
  }
}
