/**
 * The event-loop writer: owned by one event loop, so it needs no lock. Blocks are queued and
 * written in batches with writev; past a byte high-water mark, write() hands readers a promise
 * so they wait instead of memory growing (the "memory explosion" of the notes' BetterWay55).
 */
import { close, fstat, fstatSync, fsync, open, writev } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import { describeErrno, errors, isErrno } from '../errors.js'
import type { Logger } from '../log.js'
import type { BlockSink, Snapshot, SourceMark, SourceStats } from './sink.js'

const writevAsync = promisify(writev)
const fsyncAsync = promisify(fsync)
const closeAsync = promisify(close)
const fstatAsync = promisify(fstat)
const openAsync = promisify(open)

/** POSIX IOV_MAX on Linux: more buffers than this in one writev fail with EINVAL. */
const IOV_MAX = 1024
/** Errors we wait out (full disk, quota, file size limit, a pipe not ready) instead of dying. */
const RETRYABLE = ['EAGAIN', 'ENOSPC', 'EDQUOT', 'EFBIG', 'EIO', 'EINTR']
const STDOUT_FD = 1

export interface LoopWriterOptions {
  readonly highWaterBytes: number
  readonly log: Logger
  /** Called once if the output fails for good; the daemon then exits. */
  readonly onFatal: (err: Error) => void
  /** A source was noted for the first time (so a checkpoint can record it soon). */
  readonly onNewSource?: () => void
}

export class LoopWriter implements BlockSink {
  readonly path: string
  #fd: number
  #queue: Buffer[] = []
  /** Parallel to #queue: the source mark of each block, if any. */
  #marks: (SourceMark | undefined)[] = []
  #queuedBytes = 0
  #flushing: Promise<void> | null = null
  #waiters: (() => void)[] = []
  #idle: (() => void)[] = []
  /** Output size and per-source offsets: changed together, only when a whole batch is out. */
  #size: number
  #written = new Map<string, number>()
  #stats = new Map<string, SourceStats>()
  #changes = 0
  /** Bytes of a batch that failed part-way, already in the file but not yet in #size. */
  #partialBytes = 0
  /** Marks of blocks fully written by a batch that then failed: applied with the retry. */
  #carriedMarks: (SourceMark | undefined)[] = []
  /** The output file's identity (null for stdout), for checkpoints. */
  #identity: { dev: number; ino: number } | null = null
  /** The error code we are waiting out, if any. */
  #retrying: string | null = null
  #closed: Promise<void> | null = null
  #failed: Error | null = null
  readonly #opts: LoopWriterOptions

  private constructor(path: string, fd: number, size: number, opts: LoopWriterOptions) {
    this.path = path
    this.#fd = fd
    this.#size = size
    this.#opts = opts
  }

  /** The source `key` is gone for good: it leaves the checkpoints. */
  forget(key: string): void {
    if (!this.#written.delete(key)) return
    this.#stats.delete(key)
    this.#changes++
  }

  /** Opens `path` for appending ('-' is stdout). */
  static async open(path: string, opts: LoopWriterOptions): Promise<LoopWriter> {
    if (path === '-') {
      const writer = new LoopWriter(path, STDOUT_FD, 0, opts)
      // Errors may come after a write's callback (EPIPE on a later flush): always listen.
      process.stdout.on('error', (err: NodeJS.ErrnoException) =>
        writer.#fail(
          err.code === 'EPIPE' ? errors.outputClosed(err) : errors.outputWrite(path, err),
        ),
      )
      return writer
    }
    const fd = await openOutput(path)
    const { size, dev, ino } = await fstatAsync(fd)
    const writer = new LoopWriter(path, fd, size, opts)
    writer.#identity = { dev, ino }
    return writer
  }

  /** Bytes in the output file (its size at open plus what we wrote since). */
  get size(): number {
    return this.#size
  }

  /**
   * A consistent pair for a checkpoint: the output size and, for each source, the offset up to
   * which its bytes are within that size.
   */
  snapshot(): Snapshot {
    return {
      size: this.#size,
      output: this.#identity,
      offsets: new Map(this.#written),
      stats: new Map(this.#stats),
    }
  }

  /** Moves whenever the snapshot would differ (for skipping idle checkpoints). */
  get changes(): number {
    return this.#changes
  }

  /** A source starts at `mark.offset` (nothing of it written yet): record where, if unknown. */
  note(mark: SourceMark): void {
    if (this.#written.has(mark.key)) return
    this.#written.set(mark.key, mark.offset)
    if (mark.stats) this.#stats.set(mark.key, mark.stats)
    this.#changes++
    this.#opts.onNewSource?.()
  }

  /** fsync what is written so far (not what is queued): covers every earlier snapshot. */
  async fsync(): Promise<void> {
    if (this.#fd === STDOUT_FD) return
    try {
      await fsyncAsync(this.#fd)
    } catch (err) {
      if (!isErrno(err, 'EINVAL', 'EROFS')) throw err
    }
  }

  get queuedBytes(): number {
    return this.#queuedBytes
  }

  write(block: Buffer, mark?: SourceMark): Promise<void> | undefined {
    // The output failed for good and the run is ending: drop. No mark moves, so a checkpoint
    // never counts these bytes as written; a restart reads them again.
    if (this.#failed) return undefined
    if (block.length === 0) return undefined // an empty writev would never make progress
    this.#queue.push(block)
    this.#marks.push(mark)
    this.#queuedBytes += block.length
    this.#flushing ??= this.#flushLoop()
    if (this.#queuedBytes < this.#opts.highWaterBytes) return undefined
    return new Promise((resolve) => this.#waiters.push(resolve))
  }

  /** Resolves once everything queued so far is written. */
  async drain(): Promise<void> {
    if (this.#flushing === null) return
    await new Promise<void>((resolve) => this.#idle.push(resolve))
  }

  /** Writes out the queue and makes the output durable (no-op for stdout and pipes). */
  async sync(): Promise<void> {
    await this.drain()
    if (this.#fd === STDOUT_FD) return
    try {
      await fsyncAsync(this.#fd)
    } catch (err) {
      if (!isErrno(err, 'EINVAL', 'EROFS')) throw err // not syncable (a pipe, /dev/null)
    }
  }

  /**
   * Opens the output path again and switches to it once the queue is written (logrotate
   * `create` + SIGHUP). The old fd is closed only once the new one is open.
   */
  async reopen(): Promise<void> {
    if (this.#fd === STDOUT_FD) return
    const fd = await openOutput(this.path)
    // Swap only with no batch in flight (checked and swapped without an await in between).
    while (this.#flushing !== null) await this.drain()
    const old = this.#fd
    this.#fd = fd
    const st = fstatSync(fd)
    this.#size = st.size
    this.#identity = { dev: st.dev, ino: st.ino }
    this.#changes++
    await closeAsync(old)
  }

  /**
   * Writes what is queued, then closes (without fsync: durability is the checkpoint's job, which
   * calls sync() first). Idempotent: every call returns the same promise.
   */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      await this.drain()
      if (this.#fd !== STDOUT_FD) await closeAsync(this.#fd)
    })()
    return this.#closed
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close()
  }

  async #flushLoop(): Promise<void> {
    let backoff = 50
    while (this.#queue.length > 0) {
      const batch = this.#queue.splice(0, IOV_MAX)
      const marks = this.#marks.splice(0, batch.length)
      try {
        await this.#writeAll(batch)
        backoff = 50
      } catch (err) {
        if (isErrno(err, ...RETRYABLE)) {
          // Nothing is lost: put the unwritten rest back at the front and wait.
          if (this.#retrying === null) {
            this.#opts.log.warn(
              `cannot write output ${this.path}: ${describeErrno(err)}; retrying, readers paused`,
            )
          }
          this.#retrying = err.code ?? 'error'
          const done = marks.length - batch.length
          this.#carriedMarks.push(...marks.slice(0, done))
          this.#queue.unshift(...batch)
          this.#marks.unshift(...marks.slice(done))
          await sleep(backoff)
          backoff = Math.min(backoff * 2, 5000)
          continue
        }
        this.#fail(errors.outputWrite(this.path, err as NodeJS.ErrnoException))
        return
      }
      if (this.#retrying !== null) {
        this.#opts.log.warn(`output ${this.path} is writable again; resumed`)
        this.#retrying = null
      }
      this.#size += this.#partialBytes
      this.#partialBytes = 0
      for (const m of this.#carriedMarks.splice(0)) this.#apply(m)
      for (const m of marks) this.#apply(m)
      if (this.#queuedBytes < this.#opts.highWaterBytes / 2) this.#wakeWaiters()
    }
    this.#flushing = null
    this.#wakeWaiters()
    for (const resolve of this.#idle.splice(0)) resolve()
  }

  /** writev until every byte is out; a short write leaves `batch` holding only the unwritten rest. */
  async #writeAll(batch: Buffer[]): Promise<void> {
    if (this.#fd === STDOUT_FD) return this.#writeStdout(batch)
    while (batch.length > 0) {
      const { bytesWritten: n } = await writevAsync(this.#fd, batch)
      this.#partialBytes += n
      this.#queuedBytes -= n
      dropWritten(batch, n)
    }
  }

  /**
   * stdout goes through process.stdout, which Node drives without blocking (a pipe or a
   * terminal) and which tells us when it has taken the bytes. A blocking writev on fd 1 would
   * hold a libuv thread while the reader is slow, and a held thread stops even process.exit.
   */
  async #writeStdout(batch: Buffer[]): Promise<void> {
    const out = process.stdout
    const bytes = batch.reduce((n, b) => n + b.length, 0)
    await new Promise<void>((resolve) => {
      out.cork()
      // A failed write also emits 'error' (handled in open): only success resolves here.
      const last = batch.length - 1
      for (const [i, buf] of batch.entries()) {
        if (i < last) out.write(buf)
        else out.write(buf, (err) => err || resolve())
      }
      out.uncork()
    })
    this.#partialBytes += bytes
    this.#queuedBytes -= bytes
    batch.length = 0
  }

  #apply(mark: SourceMark | undefined): void {
    if (!mark) return
    this.#changes++
    this.#written.set(mark.key, mark.offset)
    if (mark.stats) this.#stats.set(mark.key, mark.stats)
  }

  #wakeWaiters(): void {
    for (const resolve of this.#waiters.splice(0)) resolve()
  }

  #fail(err: Error): void {
    if (this.#failed) return
    this.#failed = err
    this.#queue = []
    this.#queuedBytes = 0
    this.#flushing = null
    this.#wakeWaiters()
    for (const resolve of this.#idle.splice(0)) resolve()
    this.#opts.onFatal(err)
  }
}

/** Removes the first `n` bytes from `batch` in place. */
function dropWritten(batch: Buffer[], n: number): void {
  let left = n
  while (left > 0 && batch.length > 0) {
    const first = batch[0] as Buffer
    if (first.length <= left) {
      left -= first.length
      batch.shift()
    } else {
      batch[0] = first.subarray(left)
      left = 0
    }
  }
}

async function openOutput(path: string): Promise<number> {
  try {
    return await openAsync(path, 'a', 0o644)
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    if (e.code === 'ENOENT' || e.code === 'ENOTDIR') throw errors.outputDir(path, e)
    throw errors.outputOpen(path, e)
  }
}
