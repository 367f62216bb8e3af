/**
 * The locked writer: any thread may call it. A Mutex in shared memory guards fs.writeSync to the
 * output fd, which every worker shares (fds belong to the process, not the thread), so two
 * threads' blocks never interleave. The output size lives in the same shared memory and changes
 * only under the lock, so a snapshot taken under the lock is consistent. Blocking is the
 * backpressure: a reader that writes waits for the disk.
 */
import { closeSync, fstatSync, fsyncSync, openSync, writeSync } from 'node:fs'
import { describeErrno, errors, isErrno } from '../errors.js'
import { Mutex } from './mutex.js'
import type { BlockSink, SourceMark } from './sink.js'

const STDOUT_FD = 1
/** Errors we wait out (full disk, quota, size limit, a pipe not ready) instead of dying. */
const RETRYABLE = ['EAGAIN', 'ENOSPC', 'EDQUOT', 'EFBIG', 'EIO', 'EINTR']

/** What a worker needs to write through the same lock to the same fd (structured-cloneable). */
export interface LockedWriterShare {
  readonly path: string
  readonly lock: SharedArrayBuffer
  /** Float64 at byte 0: output size; Int32 at byte 8: the output fd (changes on reopen). */
  readonly state: SharedArrayBuffer
}

export class LockedWriter implements BlockSink {
  readonly share: LockedWriterShare
  readonly #mutex: Mutex
  readonly #size: Float64Array
  readonly #fd: Int32Array
  readonly #onRetry: (message: string) => void
  #closed = false

  private constructor(share: LockedWriterShare, onRetry: (message: string) => void) {
    this.share = share
    this.#mutex = new Mutex(share.lock)
    this.#size = new Float64Array(share.state, 0, 1)
    this.#fd = new Int32Array(share.state, 8, 1)
    this.#onRetry = onRetry
  }

  /** Opens `path` for appending ('-' is stdout), in the thread that owns the output. */
  static open(path: string, onRetry: (message: string) => void): LockedWriter {
    const fd = path === '-' ? STDOUT_FD : openOutput(path)
    const state = new SharedArrayBuffer(16)
    new Float64Array(state, 0, 1)[0] = fd === STDOUT_FD ? 0 : fstatSync(fd).size
    new Int32Array(state, 8, 1)[0] = fd
    return new LockedWriter({ path, lock: new SharedArrayBuffer(4), state }, onRetry)
  }

  /** The same writer, in another thread. */
  static attach(share: LockedWriterShare, onRetry: (message: string) => void): LockedWriter {
    return new LockedWriter(share, onRetry)
  }

  /** Bytes in the output file (its size at open plus what every thread wrote since). */
  get size(): number {
    return this.#mutex.withLock(() => this.#size[0] as number)
  }

  /**
   * Opens the output path again (logrotate `create` + SIGHUP) and switches every thread to it
   * under the lock; the old fd is closed only once the new one is open.
   */
  reopen(): void {
    if (this.share.path === '-') return
    const fd = openOutput(this.share.path)
    const old = this.#mutex.withLock(() => {
      const was = this.#fd[0] as number
      this.#fd[0] = fd
      this.#size[0] = fstatSync(fd).size
      return was
    })
    closeSync(old)
  }

  write(block: Buffer, _mark?: SourceMark): undefined {
    let backoff = 50
    let off = 0
    while (off < block.length) {
      this.#mutex.lock()
      let failure: NodeJS.ErrnoException | null = null
      try {
        // The whole block under one lock hold: no other thread's bytes can land inside it.
        while (off < block.length) {
          const n = writeSync(this.#fd[0] as number, block, off, block.length - off)
          off += n
          this.#size[0] = (this.#size[0] as number) + n
        }
      } catch (err) {
        if (!isErrno(err, ...RETRYABLE))
          throw errors.outputWrite(this.share.path, err as NodeJS.ErrnoException)
        failure = err
      } finally {
        this.#mutex.unlock()
      }
      if (failure) {
        // A block is written whole or retried from where it stopped; nothing read is dropped.
        if (failure.code !== 'EAGAIN') {
          this.#onRetry(
            `cannot write output ${this.share.path}: ${describeErrno(failure)}; retrying, readers paused`,
          )
        }
        sleepSync(failure.code === 'EAGAIN' ? 1 : backoff)
        backoff = Math.min(backoff * 2, 5000)
      }
    }
    return undefined
  }

  /** Makes the output durable (no-op for stdout and pipes). */
  sync(): void {
    if (this.share.path === '-') return
    this.#mutex.withLock(() => {
      try {
        fsyncSync(this.#fd[0] as number)
      } catch (err) {
        if (!isErrno(err, 'EINVAL', 'EROFS')) throw err
      }
    })
  }

  /** Closes the fd (no fsync: see LoopWriter.close): only the owning thread, once every worker
   * has stopped. Idempotent. */
  close(): void {
    if (this.#closed) return
    this.#closed = true
    if (this.share.path !== '-') closeSync(this.#fd[0] as number)
  }
}

function openOutput(path: string): number {
  try {
    return openSync(path, 'a', 0o644)
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    throw e.code === 'ENOENT' || e.code === 'ENOTDIR'
      ? errors.outputDir(path, e)
      : errors.outputOpen(path, e)
  }
}

const sleeper = new Int32Array(new SharedArrayBuffer(4))
/** Blocks this thread for `ms` (Atomics.wait on a cell nobody notifies). */
export function sleepSync(ms: number): void {
  Atomics.wait(sleeper, 0, 0, ms)
}
