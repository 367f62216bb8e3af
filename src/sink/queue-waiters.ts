/**
 * Who waits on the event-loop writer's queue, and when each goes on: readers past the
 * high-water mark (write()'s promise), drain() until the queue is written out, and drainTo()
 * until it holds at most some bytes. Apart from loop-writer.ts so that the writer's flush loop
 * reads as writing, with the backpressure rules here; the writer says when the queue shrank.
 */
export class QueueWaiters {
  /** Readers that were handed a promise by write(). */
  #writers: (() => void)[] = []
  /** drain() calls. */
  #idle: (() => void)[] = []
  /** drainTo() calls: each waits for the queue to hold at most `bytes`. */
  #room: { readonly bytes: number; readonly resolve: () => void }[] = []

  /** A reader past the high-water mark waits for room. */
  forRoom(): Promise<void> {
    return new Promise((resolve) => this.#writers.push(resolve))
  }

  /** Waits for the queue to be written out. */
  forIdle(): Promise<void> {
    return new Promise((resolve) => this.#idle.push(resolve))
  }

  /** Waits for the queue to hold at most `bytes`. */
  forBytes(bytes: number): Promise<void> {
    return new Promise((resolve) => this.#room.push({ bytes, resolve }))
  }

  /** Resolves the readers waiting for room; true if there were any. */
  wakeWriters(): boolean {
    const waiting = this.#writers.splice(0)
    for (const resolve of waiting) resolve()
    return waiting.length > 0
  }

  /**
   * Resolves the drainTo() calls a queue of `queuedBytes` satisfies (all of them once it is
   * `idle`); true if it resolved any.
   */
  wakeRoom(queuedBytes: number, idle: boolean): boolean {
    if (this.#room.length === 0) return false
    const waiting = this.#room
    this.#room = []
    for (const w of waiting) {
      if (idle || queuedBytes <= w.bytes) w.resolve()
      else this.#room.push(w)
    }
    return this.#room.length < waiting.length
  }

  /** The queue is idle (written out, or dropped when the output failed): everyone goes on. */
  wakeAll(): void {
    this.wakeWriters()
    this.wakeRoom(0, true)
    for (const resolve of this.#idle.splice(0)) resolve()
  }
}
