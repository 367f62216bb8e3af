/**
 * The event-loop reader's big read buffers, used again once the writer is done with them.
 *
 * Why: a read into memory the process has not touched yet pays a page fault (and the kernel's
 * zeroing) for every 4 KiB page, on top of the copy. Catching up, the event-loop reader read
 * each megabyte into a new buffer, and the collector freed them only in bulk, so nearly every
 * read went into fresh pages. Measured on the 2-vCPU machine (a loop of 1 MiB `fs.read` calls
 * over a 128 MiB file in the page cache, under load): 83-193 MiB/s into a new buffer each time
 * (230-270 ms of system time), 1,030-2,900 MiB/s into one buffer used again (13-40 ms). The
 * blocking shell has always read into one scratch buffer, since its writer is done with a
 * block when write() returns; the event-loop writer queues blocks, so a buffer comes back here
 * only when the writer says so (BlockSink.write's `done`). A writer that never says so costs a
 * new buffer per read, as before.
 *
 * Only reads bigger than the synchronous ones take a buffer from here (a catch-up or a file
 * that grew by megabytes); a follow of small appends reads into small buffers as before.
 * At most KEEP buffers wait here between reads; once nothing was taken for IDLE_MS, the next
 * give or trim() lets them go (an idle daemon does not hold megabytes for a catch-up that
 * ended).
 */

/** Buffers kept between reads: a few files read at once, and the writer's queue in between. */
const KEEP = 8

/** A pool not taken from for this long is emptied (see trim). */
const IDLE_MS = 10_000

export class ReadBuffers {
  readonly #size: number
  readonly #free: Buffer[] = []
  #lastTake = 0

  /** Buffers of `size` bytes: a read of up to the chunk size plus a held partial line. */
  constructor(size: number) {
    this.#size = size
  }

  /** A buffer of at least `bytes` bytes that nothing else uses, or null if that is too big. */
  take(bytes: number, now = Date.now()): Buffer | null {
    if (bytes > this.#size) return null
    this.#lastTake = now
    return this.#free.pop() ?? Buffer.allocUnsafeSlow(this.#size)
  }

  /**
   * `buf` (from take) is free again: nothing may read or write it after this call, since the
   * next take hands it out.
   */
  give(buf: Buffer, now = Date.now()): void {
    if (this.#free.length < KEEP && now - this.#lastTake < IDLE_MS) this.#free.push(buf)
  }

  /** Lets the kept buffers go once none was taken for IDLE_MS (the reader's sweep calls it). */
  trim(now = Date.now()): void {
    if (this.#free.length > 0 && now - this.#lastTake >= IDLE_MS) this.#free.length = 0
  }

  /** Buffers waiting to be taken (for tests). */
  get kept(): number {
    return this.#free.length
  }
}
