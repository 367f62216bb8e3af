/**
 * The event-loop writer: owned by one event loop, so it needs no lock. Blocks are queued and
 * written in batches with writev; past a byte high-water mark, write() hands readers a promise
 * so they wait instead of memory growing (the "memory explosion" of the notes' BetterWay55).
 *
 * This file holds the flush loop: take a batch, write it (waiting out a full disk, leaving a
 * file part-way when a new one is ready), count it. Its parts: the queue (block-queue.ts), the
 * batches (batches.ts), the write calls (output-writes.ts), who waits on the queue
 * (queue-waiters.ts), what a checkpoint sees (written-state.ts), and the file written to, its
 * switches and the path's watch (loop-output.ts).
 */
import { close, fstat, fsync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import { errors, isErrno } from '../errors.js'
import type { Logger } from '../log.js'
import { byteLength, splitAt } from './batches.js'
import { type Batch, BlockQueue, type Done } from './block-queue.js'
import { LoopOutput } from './loop-output.js'
import {
  FIRST_BACKOFF_MS,
  isRetryable,
  leaveMidBlock,
  nextBackoff,
  openOutputAsync,
  resumedMessage,
  stalledMessage,
  WRITE_ERROR_CODES,
  writeErrorIndex,
} from './output-file.js'
import { onStdoutError, STDOUT_FD, stdoutIsStream, writeSome } from './output-writes.js'
import { PauseClock } from './pause-clock.js'
import { QueueWaiters } from './queue-waiters.js'
import type { BlockSink, OutputHealth, Snapshot, SourceMark } from './sink.js'
import { type Marks, WrittenState } from './written-state.js'

const fsyncAsync = promisify(fsync)
const closeAsync = promisify(close)
const fstatAsync = promisify(fstat)

/** After this many bytes written synchronously in a row, the loop gets a turn (see #flushLoop). */
const YIELD_AFTER_BYTES = 4 * 1024 * 1024

export interface LoopWriterOptions {
  readonly highWaterBytes: number
  readonly log: Logger
  /** Called once if the output fails for good; the daemon then exits. */
  readonly onFatal: (err: Error) => void
  /** A source was noted for the first time (so a checkpoint can record it soon). */
  readonly onNewSource?: () => void
  /**
   * How often (ms) to compare the output's path with the open file, to notice it deleted,
   * moved, replaced or truncated behind our back; undefined: never.
   */
  readonly watchMs?: number
  /**
   * After switching to a new output file and before writing to it: save a checkpoint, so the
   * state names the new file before it holds a byte of ours (a crash then resumes exactly once).
   */
  readonly onSwitch?: () => Promise<void> | void
}

export class LoopWriter implements BlockSink {
  readonly path: string
  /** The file written to, switching to a new one, and the path's watch. */
  readonly #out: LoopOutput
  readonly #queue = new BlockQueue()
  /** Bytes handed to write() and not yet written: the queue's and the batch being written's. */
  #queuedBytes = 0
  #flushing: Promise<void> | null = null
  /** Readers past the high-water mark, drain() and drainTo() calls. */
  readonly #waiting = new QueueWaiters()
  /** Output size and per-source offsets: changed together, only when a whole batch is out. */
  readonly #state: WrittenState
  /** The error code we are waiting out, if any: readers wait meanwhile. */
  #retrying: string | null = null
  /** Cuts a retry's sleep short (a switch to a new file may end the wait). */
  #wake: AbortController | null = null
  #closed: Promise<void> | null = null
  #failed: Error | null = null
  /** The output is stdout and not a regular file: written through process.stdout. */
  #stdoutStream = false
  /** For health(): bytes written, failed writes by code, pauses and their time. */
  #bytesOut = 0
  readonly #errors: number[] = WRITE_ERROR_CODES.map(() => 0)
  readonly #pauses = new PauseClock()
  readonly #opts: LoopWriterOptions

  private constructor(path: string, fd: number, size: number, opts: LoopWriterOptions) {
    this.path = path
    this.#state = new WrittenState(size, opts.onNewSource)
    this.#opts = opts
    this.#out = new LoopOutput(path, fd, this.#state, opts, {
      next: () => {
        this.#wake?.abort()
        this.#flushing ??= this.#flushLoop()
      },
      heldChanged: () => this.#notePause(),
      over: () => this.#closed !== null || this.#failed !== null,
    })
  }

  /** The source `key` is gone for good: it leaves the checkpoints. */
  forget(key: string): void {
    this.#state.forget(key)
  }

  /** Opens `path` for appending ('-' is stdout). */
  static async open(path: string, opts: LoopWriterOptions): Promise<LoopWriter> {
    if (path === '-') {
      const writer = new LoopWriter(path, STDOUT_FD, 0, opts)
      writer.#stdoutStream = await stdoutIsStream()
      if (writer.#stdoutStream) onStdoutError((err) => writer.#fail(err))
      return writer
    }
    const fd = await openOutputAsync(path)
    const { size, dev, ino } = await fstatAsync(fd)
    const writer = new LoopWriter(path, fd, size, opts)
    writer.#state.identity = { dev, ino }
    if (opts.watchMs !== undefined) writer.#out.watch(opts.watchMs)
    return writer
  }

  /** Bytes in the output file (its size at open plus what we wrote since). */
  get size(): number {
    return this.#state.size
  }

  /**
   * A consistent pair for a checkpoint: the output size and, for each source, the offset up to
   * which its bytes are within that size.
   */
  snapshot(): Snapshot {
    return this.#state.snapshot()
  }

  /** Moves whenever the snapshot would differ (for skipping idle checkpoints). */
  get changes(): number {
    return this.#state.changes
  }

  /**
   * A source starts at `mark.offset` (nothing of it written yet): record where, if unknown. In
   * turn with the blocks before it: while any are queued or being written, the note waits behind
   * them, since they may hold this source's bytes under another key (a copytruncate copy's rest
   * is read through the truncated file's cursor, then the copy is noted at its end). Noted at
   * once, a checkpoint could record the copy as read before those bytes were in the output, and
   * a SIGKILL then lost them (found by the selftest on top-down).
   */
  note(mark: SourceMark): void {
    if (this.#state.has(mark.key)) return
    if (this.#flushing === null) {
      this.#state.note(mark)
      return
    }
    this.#queue.pushNote(mark)
  }

  /** fsync what is written so far (not what is queued): covers every earlier snapshot. */
  async fsync(): Promise<void> {
    const fd = this.#out.fd
    if (fd === STDOUT_FD) return
    try {
      await fsyncAsync(fd)
    } catch (err) {
      if (!isErrno(err, 'EINVAL', 'EROFS')) throw err
    }
  }

  get queuedBytes(): number {
    return this.#queuedBytes
  }

  /** What was written, what failed and how long writing waited (for metrics). */
  health(now = Date.now()): OutputHealth {
    return {
      bytes: this.#bytesOut,
      errors: [...this.#errors],
      pauses: this.#pauses.count,
      pausedSeconds: this.#pauses.ms(now) / 1000,
      paused: this.#pauses.paused,
      queuedBytes: this.#queuedBytes,
    }
  }

  /** A pause begins or ends with #retrying and the output held: counted for health(). */
  #notePause(): void {
    if (this.#retrying !== null || this.#out.held) this.#pauses.begin()
    else this.#pauses.end()
  }

  /**
   * See BlockSink.write. `mark` may also be a list: a block that holds lines of several sources
   * (the --order time merge writes runs of many files in one buffer) moves each one's offset.
   */
  write(
    block: Buffer,
    mark?: SourceMark | readonly SourceMark[],
    done?: () => void,
  ): Promise<void> | undefined {
    // The output failed for good and the run is ending: drop. No mark moves, so a checkpoint
    // never counts these bytes as written; a restart reads them again.
    if (this.#failed) return undefined
    if (block.length === 0) {
      done?.()
      return undefined // an empty writev would never make progress
    }
    this.#queue.push(block, mark, done)
    this.#queuedBytes += block.length
    this.#flushing ??= this.#flushLoop()
    // While the output cannot take bytes, readers stop reading (the lines wait in their files).
    const stuck = this.#retrying !== null || this.#out.held
    if (this.#queuedBytes < this.#opts.highWaterBytes && !stuck) return undefined
    return this.#waiting.forRoom()
  }

  /** Resolves once everything queued so far is written. */
  async drain(): Promise<void> {
    if (this.#flushing === null) return
    await this.#waiting.forIdle()
  }

  /**
   * Resolves once at most `bytes` are queued (or the output failed for good): a producer that
   * keeps what it handed over until written (the --once merge's output areas) waits for some
   * of them, and goes on filling those while the rest is written.
   */
  async drainTo(bytes: number): Promise<void> {
    if (this.#queuedBytes <= bytes || this.#flushing === null) return
    await this.#waiting.forBytes(bytes)
  }

  /** Writes out the queue and makes the output durable (no-op for stdout and pipes). */
  async sync(): Promise<void> {
    await this.drain()
    await this.fsync()
  }

  /**
   * Opens the output path again and switches to it at the next block boundary (logrotate
   * `create` + SIGHUP; also when the watch finds the output gone or replaced). The old file is
   * synced and closed once the new one is open; a block half-written when the old file failed
   * is cut from it and written whole to the new one. Resolves once switched and checkpointed.
   */
  async reopen(): Promise<void> {
    if (this.#out.fd === STDOUT_FD || this.#closed || this.#failed) return
    await this.#out.reopen()
  }

  /**
   * Writes what is queued, then closes (without fsync: durability is the checkpoint's job, which
   * calls sync() first). Idempotent: every call returns the same promise.
   */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#out.stopWatching()
      await this.drain()
      this.#out.releaseSwitchWaiters()
      if (this.#out.fd !== STDOUT_FD) await closeAsync(this.#out.fd)
    })()
    return this.#closed
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close()
  }

  async #flushLoop(): Promise<void> {
    // The blocks of this turn of the event loop (a burst of files read together) go out in one
    // batch, not one write each.
    await new Promise<void>((resolve) => setImmediate(resolve))
    let sinceYield = 0
    for (;;) {
      if (this.#out.held) await this.#out.whenUnheld()
      if (this.#out.switchPending) await this.#out.switch()
      if (this.#queue.length === 0 || this.#failed) break
      const next = this.#queue.take()
      if (!(await this.#writeBatch(next))) return
      let woke = this.#queuedBytes < this.#opts.highWaterBytes / 2 && this.#waiting.wakeWriters()
      woke = this.#waiting.wakeRoom(this.#queuedBytes, this.#flushing === null) || woke
      // Synchronous writes hold the loop (see output-writes.ts's writeSome). Whoever was just
      // given room (a reader, the --once merge filling its next area) runs before the next
      // batch, so it works while the rest is written; otherwise the loop gets a turn after a
      // few MiB (the readers' finished reads, the timers, the signals). Not after every batch: a
      // turn per 1 MiB batch cost the catch-up above a third more CPU (1.06-1.18 CPU-s against
      // 0.72-0.73, three runs each), a turn per 4 MiB did not (0.68-0.85).
      sinceYield += byteLength(next.batch)
      if (woke || sinceYield > YIELD_AFTER_BYTES) {
        sinceYield = 0
        await new Promise<void>((resolve) => setImmediate(resolve))
      }
    }
    this.#flushing = null
    this.#waiting.wakeAll()
  }

  /**
   * Writes the whole batch, waiting out the errors that pass (full disk, size limit) with a
   * growing pause, then counts it (size and marks together); false if the output failed for
   * good. A partial write is continued, not repeated, so no byte is written twice.
   */
  async #writeBatch(first: Batch): Promise<boolean> {
    let { batch, marks, dones } = first
    let bytes = byteLength(batch)
    let done = 0
    let backoff = FIRST_BACKOFF_MS
    while (done < bytes) {
      try {
        done += await writeSome(this.#out.fd, this.#stdoutStream, batch, done, bytes)
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code
        if (code !== 'EAGAIN') (this.#errors[writeErrorIndex(code)] as number)++
        if (!isRetryable(err)) {
          this.#fail(errors.outputWrite(this.path, err as NodeJS.ErrnoException))
          return false
        }
        if (this.#retrying === null && err.code !== 'EAGAIN') {
          this.#opts.log.warn(stalledMessage(this.path, err))
          this.#retrying = err.code ?? 'error'
          this.#notePause()
        }
        await this.#pause(err.code === 'EAGAIN' ? 1 : backoff)
        backoff = nextBackoff(backoff)
        if (this.#failed) return false
        // The output was rotated or replaced meanwhile (which may be what frees the space):
        // what is written stays in the old file, the rest goes to the new one.
        if (this.#out.switchPending) {
          ;({ batch, marks, dones } = this.#leave(batch, marks, dones, done))
          bytes = byteLength(batch)
          done = 0
          await this.#out.switch()
        }
      }
    }
    if (this.#retrying !== null) {
      this.#opts.log.warn(resumedMessage(this.path))
      this.#retrying = null
      this.#notePause()
    }
    this.#count(batch, marks, dones)
    return true
  }

  /**
   * Bytes written to the current file: the size and the marks move together; their blocks'
   * memory goes back to whoever lent it.
   */
  #count(batch: readonly Buffer[], marks: readonly Marks[], dones: readonly Done[]): void {
    const bytes = byteLength(batch)
    this.#state.size += bytes
    this.#bytesOut += bytes
    this.#queuedBytes -= bytes
    for (const m of marks) this.#state.apply(m)
    for (const done of dones) done?.()
  }

  /**
   * Leaving the current file with `done` bytes of `batch` in it: the whole blocks among them
   * stay there and are counted; of the block cut short, what bytesToKeep says stays, the rest
   * is cut off the file (which then ends with a whole line). Returns what is left to write to
   * the next file.
   */
  #leave(
    batch: readonly Buffer[],
    marks: readonly Marks[],
    dones: readonly Done[],
    done: number,
  ): Batch {
    const { whole, left } = splitAt(batch, done)
    this.#count(batch.slice(0, whole), marks.slice(0, whole), dones.slice(0, whole))
    const head = batch[whole] as Buffer
    const keep = leaveMidBlock(this.#out.fd, head.subarray(0, left), this.#state.size)
    this.#state.size += keep
    this.#bytesOut += keep
    this.#queuedBytes -= keep
    return {
      batch: [head.subarray(keep), ...batch.slice(whole + 1)],
      marks: marks.slice(whole),
      dones: dones.slice(whole),
    }
  }

  /** Sleeps `ms`, or less if a switch is asked for meanwhile. */
  async #pause(ms: number): Promise<void> {
    const wake = new AbortController()
    this.#wake = wake
    try {
      await sleep(ms, undefined, { signal: wake.signal })
    } catch {
      // Woken early: a new file is ready.
    } finally {
      this.#wake = null
    }
  }

  #fail(err: Error): void {
    if (this.#failed) return
    this.#failed = err
    this.#queue.clear() // the lent memory goes to the collector
    this.#queuedBytes = 0
    this.#flushing = null
    this.#wake?.abort()
    this.#waiting.wakeAll()
    this.#out.releaseAll()
    this.#opts.onFatal(err)
  }
}
