/**
 * The locked writer: any thread may call it. A Mutex in shared memory guards fs.writeSync to the
 * output fd, which every worker shares (fds belong to the process, not the thread), so two
 * threads' blocks never interleave. The output size lives in the same shared memory and changes
 * only under the lock, so a snapshot taken under the lock is consistent. Blocking is the
 * backpressure: a reader that writes waits for the disk.
 *
 * Faults: a write that fails with a full disk or the size limit is retried with a growing pause,
 * holding the lock (no other thread's bytes can land inside the block; every reader thread
 * waits, which is what we want). The main thread never waits on the lock for long: it reports
 * the outage from shared counters, watches the output path, and asks for a switch to a new file
 * through shared memory; the thread holding the lock makes the switch.
 *
 * This file holds the write path and the snapshot. The shared memory's layout is in
 * locked-share.ts, the source offsets' slots in source-slots.ts, and the side of the thread
 * that opened the output (switch requests, the checkpoint after a switch, the watch) in
 * locked-watch.ts.
 */
import { fstatSync, fsync, writeSync } from 'node:fs'
import { promisify } from 'node:util'
import { errors, isErrno } from '../errors.js'
import {
  CELL,
  createShare,
  HEALTH,
  type LockedWriterShare,
  SLOTS_PER_THREAD,
  STDOUT_FD,
  switchLocked,
} from './locked-share.js'
import { LockedWatch, type LockedWriterWatch, MAIN_WAIT_MS } from './locked-watch.js'
import { Mutex } from './mutex.js'
import {
  FIRST_BACKOFF_MS,
  isRetryable,
  leaveMidBlock,
  nextBackoff,
  openOutputSync,
  RETRYABLE,
  writeErrorIndex,
} from './output-file.js'
import type { BlockSink, OutputHealth, Snapshot, SourceMark, StateLines } from './sink.js'
import { type LineMaker, SourceSlots } from './source-slots.js'

export type { LockedWriterShare } from './locked-share.js'
export { SLOTS_PER_THREAD } from './locked-share.js'
export type { LockedWriterWatch } from './locked-watch.js'

const fsyncAsync = promisify(fsync)

export class LockedWriter implements BlockSink {
  readonly share: LockedWriterShare
  readonly #mutex: Mutex
  readonly #size: Float64Array
  readonly #cells: Int32Array
  readonly #onRetry: (message: string) => void
  /** This thread's region of the source slots (offsets, fingerprints, stats). */
  readonly #sources: SourceSlots
  readonly #health: Float64Array
  /** The fds this thread opened, the switches it asks for and (main thread) the watch. */
  readonly #watch: LockedWatch
  #closed = false
  /** The last snapshot taken, served while a writer holds the lock through an outage. */
  #last: Snapshot | null = null
  /** The last stateLines taken (see there). */
  #lastLines: StateLines | null = null

  /**
   * Main thread: the reader thread that owns a source key now (the last to tell of a file at
   * that identity), when the caller knows it; a snapshot prefers that thread's slot.
   */
  ownerOf: ((key: string) => number | undefined) | undefined

  private constructor(
    share: LockedWriterShare,
    region: number,
    onRetry: (message: string) => void,
  ) {
    this.share = share
    this.#sources = new SourceSlots(share, region)
    this.#health = new Float64Array(share.health)
    this.#mutex = new Mutex(share.lock)
    this.#size = new Float64Array(share.state, 0, 1)
    this.#cells = new Int32Array(share.state)
    this.#onRetry = onRetry
    this.#watch = new LockedWatch(share, this.#mutex, this.#cells, this.#size)
  }

  /**
   * Opens `path` for appending ('-' is stdout), in the thread that owns the output. With
   * `watch`, that thread reports outages and reopens an output deleted or replaced meanwhile.
   */
  static open(
    path: string,
    threads: number,
    onRetry: (message: string) => void,
    watch?: LockedWriterWatch,
  ): LockedWriter {
    const fd = path === '-' ? STDOUT_FD : openOutputSync(path)
    const writer = new LockedWriter(createShare(path, fd, threads), 0, onRetry)
    if (fd !== STDOUT_FD) writer.#watch.opened(fd)
    if (watch) writer.#watch.start(watch)
    return writer
  }

  /** The same writer, in reader thread number `thread` (which records offsets in its region). */
  static attach(
    share: LockedWriterShare,
    thread: number,
    onRetry: (message: string) => void,
  ): LockedWriter {
    return new LockedWriter(share, thread + 1, onRetry)
  }

  /**
   * A consistent pair for a checkpoint, taken under the lock: the output size and identity, and
   * each source's offset up to which its bytes are within that size. The main thread does not
   * wait out a writer that holds the lock through a full disk: it would stop printing warnings
   * and handling signals. The last snapshot is still a true one (its bytes are in the output),
   * so that one serves until the lock comes free.
   */
  snapshot(): Snapshot {
    if (!this.#mutex.lockFor(MAIN_WAIT_MS)) {
      if (this.#last) return this.#last
      this.#mutex.lock()
    }
    try {
      const { offsets, stats, heads } = this.#sources.read(this.ownerOf)
      const output = this.#outputNow()
      this.#last = { size: this.#size[0] as number, output, offsets, stats, heads }
      return this.#last
    } finally {
      this.#mutex.unlock()
    }
  }

  /**
   * What a checkpoint of the thread engines saves, taken under the lock as snapshot() is: the
   * output's size and identity, and the state file's line of every source at its offset within
   * that size, made by `maker` (SourceSlots.stateLines: made again only for sources that moved).
   * Null when a source has no basis yet. While a writer holds the lock through a full disk, the
   * last one taken (see snapshot).
   */
  stateLines<B extends object>(maker: LineMaker<B>): StateLines | null {
    if (!this.#mutex.lockFor(MAIN_WAIT_MS)) {
      if (this.#lastLines) return this.#lastLines
      this.#mutex.lock()
    }
    try {
      const lines = this.#sources.stateLines(maker, this.ownerOf)
      if (lines === null) return null
      const output = this.#outputNow()
      this.#lastLines = { size: this.#size[0] as number, output, lines }
      return this.#lastLines
    } finally {
      this.#mutex.unlock()
    }
  }

  /** Under the lock: the output's identity now (null for stdout). */
  #outputNow(): Snapshot['output'] {
    if (this.share.path === '-') return null
    // Closed (the run is over; the metrics take a last look): the fd may be another file's
    // now, the identity is the last snapshot's.
    if (this.#closed) return this.#last?.output ?? this.#lastLines?.output ?? null
    const { dev, ino } = fstatSync(this.#cells[CELL.fd] as number)
    return { dev, ino }
  }

  /** A source starts at `mark.offset` with nothing written yet. */
  note(mark: SourceMark): void {
    this.#mutex.withLock(() => {
      if (!this.#sources.has(mark.key)) this.#record(mark)
    })
  }

  /** The source `key` is gone for good: its slots are freed (see SourceSlots.forget). */
  forget(key: string): void {
    this.#mutex.withLock(() => {
      this.#sources.forget(key)
      Atomics.add(this.#cells, CELL.changes, 1)
    })
  }

  /** Under the lock: the source's offset, in this thread's slot for it. */
  #record(mark: SourceMark): void {
    if (this.#sources.record(mark)) Atomics.add(this.#cells, CELL.changes, 1)
    else
      this.#onRetry(
        `more than ${SLOTS_PER_THREAD} files in one reader thread: the rest are not checkpointed`,
      )
  }

  /** Bytes in the output file (its size at open plus what every thread wrote since). */
  get size(): number {
    return this.#mutex.withLock(() => this.#size[0] as number)
  }

  /**
   * Opens the output path again (logrotate `create` + SIGHUP) and has every thread switch to it.
   * The switch is made under the lock, by this thread if the lock comes free soon, else by the
   * writer that holds it (at its next try, if it is waiting out a failed write). The old file is
   * synced, then closed once the new one is open.
   */
  reopen(): void {
    if (this.share.path === '-') return
    this.#watch.requestSwitch(openOutputSync(this.share.path))
  }

  /** See BlockSink.write: the block is out when this returns, so `done` is called before. */
  write(whole: Buffer, mark?: SourceMark, done?: () => void): undefined {
    let block = whole
    this.#mutex.lock()
    try {
      this.#enter()
      // The whole block under one lock hold, retries included: no other thread's bytes can land
      // inside it, even when the disk fills up part-way (every writer waits for space anyway).
      // Only a switch to a new file lets go of the lock, before any of the rest is written.
      let done = 0
      let backoff = FIRST_BACKOFF_MS
      let stalled = false
      while (done < block.length) {
        try {
          done += writeSync(this.#cells[CELL.fd] as number, block, done, block.length - done)
        } catch (err) {
          this.#failed(err)
          if (!stalled && err.code !== 'EAGAIN') {
            stalled = true
            this.#stallBegins(err.code)
          }
          // Sleeps, or less if the main thread has a new file for us meanwhile.
          Atomics.wait(this.#cells, CELL.nextFd, -1, err.code === 'EAGAIN' ? 1 : backoff)
          backoff = nextBackoff(backoff)
          if (Atomics.load(this.#cells, CELL.nextFd) !== -1) {
            // The output was rotated or replaced (which may be what frees the space): the whole
            // lines written stay in the old file, the rest goes to the new one once the main
            // thread has checkpointed it.
            block = block.subarray(this.#leave(block, done))
            done = 0
            switchLocked(this.#cells, this.#size)
            this.#enter()
          }
        }
      }
      if (stalled) this.#stallEnds()
      // Size and offset in the same lock hold as the bytes: a snapshot sees both or neither.
      this.#size[0] = (this.#size[0] as number) + block.length
      this.#health[HEALTH.bytes] = (this.#health[HEALTH.bytes] as number) + block.length
      if (mark) this.#record(mark)
    } finally {
      this.#mutex.unlock()
    }
    done?.()
    return undefined
  }

  /**
   * Under the lock, a write failed with `err`: counted by its code (EAGAIN, a full pipe, is
   * backpressure, not a failure), then thrown unless it is one we wait out.
   */
  #failed(err: unknown): asserts err is NodeJS.ErrnoException {
    const code = (err as NodeJS.ErrnoException).code
    if (code !== 'EAGAIN') {
      const at = HEALTH.errors + writeErrorIndex(code)
      this.#health[at] = (this.#health[at] as number) + 1
    }
    if (isErrno(err, 'EPIPE')) throw errors.outputClosed(err)
    if (!isRetryable(err)) {
      throw errors.outputWrite(this.share.path, err as NodeJS.ErrnoException)
    }
  }

  /** Under the lock: an outage begins, with the error waited out (for the main thread's report). */
  #stallBegins(code: string | undefined): void {
    this.#health[HEALTH.pausedSince] = Date.now()
    this.#cells[CELL.stallCode] = 1 + RETRYABLE.indexOf(code as never)
    Atomics.add(this.#cells, CELL.stalls, 1) // odd: an outage began
  }

  /** Under the lock: the outage ends; its time goes to the health cells. */
  #stallEnds(): void {
    Atomics.add(this.#cells, CELL.stalls, 1) // even: it ended
    const h = this.#health
    h[HEALTH.pausedMs] =
      (h[HEALTH.pausedMs] as number) + Date.now() - (h[HEALTH.pausedSince] as number)
    h[HEALTH.pausedSince] = 0
  }

  /**
   * Under the lock, before writing: makes a switch the main thread asked for, and waits (with
   * the lock released) while the gate is closed.
   */
  #enter(): void {
    for (;;) {
      if (Atomics.load(this.#cells, CELL.nextFd) !== -1) switchLocked(this.#cells, this.#size)
      if (Atomics.load(this.#cells, CELL.gate) === 0) return
      this.#mutex.unlock()
      Atomics.wait(this.#cells, CELL.gate, 1, 1000)
      this.#mutex.lock()
    }
  }

  /**
   * Under the lock, leaving the current file with `done` bytes of `block` in it: what
   * bytesToKeep says stays there and is counted in its size, the rest is cut off the file (which
   * then ends with a whole line). Returns where the rest of the block starts.
   */
  #leave(block: Buffer, done: number): number {
    const fd = this.#cells[CELL.fd] as number
    const keep = leaveMidBlock(fd, block.subarray(0, done), this.#size[0] as number)
    this.#size[0] = (this.#size[0] as number) + keep
    this.#health[HEALTH.bytes] = (this.#health[HEALTH.bytes] as number) + keep
    return keep
  }

  /** Moves whenever the snapshot would differ (for skipping idle checkpoints). */
  get changes(): number {
    return Atomics.load(this.#cells, CELL.changes) + (this.#size[0] as number)
  }

  /**
   * What was written, what failed and how long writing waited, over every thread (for
   * metrics). Read without the lock: each number is a single cell, the set may be a moment
   * apart, which a metric does not mind. Pauses: outages of the writers (a pair of CELL.stalls
   * each) and the times the main thread held writing (an output that could not be created).
   */
  health(now = Date.now()): OutputHealth {
    const h = this.#health
    const stalls = Atomics.load(this.#cells, CELL.stalls)
    const since = h[HEALTH.pausedSince] as number
    const stalledMs = (h[HEALTH.pausedMs] as number) + (since > 0 ? now - since : 0)
    const holds = this.#watch.holds
    return {
      bytes: h[HEALTH.bytes] as number,
      errors: [...h.subarray(HEALTH.errors)],
      pauses: Math.ceil(stalls / 2) + holds.count,
      pausedSeconds: (stalledMs + holds.ms(now)) / 1000,
      paused: stalls % 2 === 1 || holds.paused,
      queuedBytes: 0,
    }
  }

  /**
   * Makes the output durable (no-op for stdout and pipes). Not under the lock: fsync covers
   * every write made before it, and holding the lock would stall every reader thread meanwhile.
   * Off the calling thread too (libuv's pool), so the main loop keeps serving events; the fd
   * stays open until the fsync has run, even if a switch retires it meanwhile (see LockedWatch's #syncing).
   */
  async sync(): Promise<void> {
    if (this.share.path === '-') return
    const fd = Atomics.load(this.#cells, CELL.fd)
    this.#watch.syncStarted(fd)
    try {
      await fsyncAsync(fd)
    } catch (err) {
      if (!isErrno(err, 'EINVAL', 'EROFS')) throw err
    } finally {
      this.#watch.syncEnded(fd)
    }
  }

  /** Closes the fd (no fsync: see LoopWriter.close): only the owning thread, once every worker
   * has stopped. Idempotent. */
  close(): void {
    if (this.#closed) return
    this.#closed = true
    this.#watch.close()
  }
}
