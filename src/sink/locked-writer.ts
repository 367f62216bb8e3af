/**
 * The locked writer: any thread may call it. A Mutex in shared memory guards fs.writeSync to the
 * output fd, which every worker shares (fds belong to the process, not the thread), so two
 * threads' blocks never interleave. The output size lives in the same shared memory and changes
 * only under the lock, so a snapshot taken under the lock is consistent. Blocking is the
 * backpressure: a reader that writes waits for the disk.
 */
import { closeSync, fstatSync, fsync, openSync, writeSync } from 'node:fs'
import { promisify } from 'node:util'
import { describeErrno, errors, isErrno } from '../errors.js'
import { Mutex } from './mutex.js'
import type { BlockSink, Snapshot, SourceMark, SourceStats } from './sink.js'

const STDOUT_FD = 1
const fsyncAsync = promisify(fsync)
/** Errors we wait out (full disk, quota, size limit, a pipe not ready) instead of dying. */
const RETRYABLE = ['EAGAIN', 'ENOSPC', 'EDQUOT', 'EFBIG', 'EIO', 'EINTR']

/** Source offsets recorded per thread (a region each); more files than this in one thread are
 * followed but not checkpointed (a warning says so). */
export const SLOTS_PER_THREAD = 16384
/** A slot: device, inode, offset, in use, then the stats (SourceStats' five numbers). */
const SLOT = 9

/** What a worker needs to write through the same lock to the same fd (structured-cloneable). */
export interface LockedWriterShare {
  readonly path: string
  readonly lock: SharedArrayBuffer
  /** The source offsets, SLOTS_PER_THREAD slots per thread, changed only under the lock. */
  readonly slots: SharedArrayBuffer
  /** Float64 at byte 0: output size; Int32 at byte 8: the output fd (changes on reopen);
   * Int32 at byte 12: a count of changes (for skipping idle checkpoints). */
  readonly state: SharedArrayBuffer
}

export class LockedWriter implements BlockSink {
  readonly share: LockedWriterShare
  readonly #mutex: Mutex
  readonly #size: Float64Array
  readonly #fd: Int32Array
  readonly #changes: Int32Array
  readonly #onRetry: (message: string) => void
  readonly #slots: Float64Array
  /** This thread's slots: the first index of its region, and the slot of each source key. */
  readonly #region: number
  readonly #slotOf = new Map<string, number>()
  /** Slots of forgotten sources, reused first; then never-used ones (#slotsUsed so far). */
  readonly #freeSlots: number[] = []
  #slotsUsed = 0
  #closed = false

  private constructor(
    share: LockedWriterShare,
    region: number,
    onRetry: (message: string) => void,
  ) {
    this.share = share
    this.#region = region
    this.#slots = new Float64Array(share.slots)
    this.#mutex = new Mutex(share.lock)
    this.#size = new Float64Array(share.state, 0, 1)
    this.#fd = new Int32Array(share.state, 8, 1)
    this.#changes = new Int32Array(share.state, 12, 1)
    this.#onRetry = onRetry
  }

  /** Opens `path` for appending ('-' is stdout), in the thread that owns the output. */
  static open(path: string, threads: number, onRetry: (message: string) => void): LockedWriter {
    const fd = path === '-' ? STDOUT_FD : openOutput(path)
    const state = new SharedArrayBuffer(16)
    new Float64Array(state, 0, 1)[0] = fd === STDOUT_FD ? 0 : fstatSync(fd).size
    new Int32Array(state, 8, 1)[0] = fd
    // Region 0 is the main thread's (where sources start, recorded before any thread reads);
    // reader thread i has region i + 1, which a snapshot reads later, so its offsets win.
    const regions = threads + 1
    const slots = new SharedArrayBuffer(
      regions * SLOTS_PER_THREAD * SLOT * Float64Array.BYTES_PER_ELEMENT,
    )
    return new LockedWriter({ path, lock: new SharedArrayBuffer(4), state, slots }, 0, onRetry)
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
   * each source's offset up to which its bytes are within that size.
   */
  snapshot(): Snapshot {
    return this.#mutex.withLock(() => {
      const offsets = new Map<string, number>()
      const stats = new Map<string, SourceStats>()
      const s = this.#slots
      for (let i = 0; i < s.length; i += SLOT) {
        if (s[i + 3] !== 1) continue
        const key = `${s[i]}:${s[i + 1]}`
        offsets.set(key, s[i + 2] as number)
        const [lines, linesSplit, truncations, pendingBytes, lastActivity] = s.subarray(
          i + 4,
          i + 9,
        )
        stats.set(key, {
          lines,
          linesSplit,
          truncations,
          pendingBytes,
          lastActivity,
        } as SourceStats)
      }
      const fd = this.#fd[0] as number
      const output =
        this.share.path === '-' ? null : (({ dev, ino }) => ({ dev, ino }))(fstatSync(fd))
      return { size: this.#size[0] as number, output, offsets, stats }
    })
  }

  /** A source starts at `mark.offset` with nothing written yet. */
  note(mark: SourceMark): void {
    this.#mutex.withLock(() => {
      if (!this.#slotOf.has(mark.key)) this.#record(mark)
    })
  }

  /** The source `key` is gone for good: its slot is freed for another file. */
  forget(key: string): void {
    this.#mutex.withLock(() => {
      const slot = this.#slotOf.get(key)
      if (slot === undefined) return
      this.#slots[slot + 3] = 0
      this.#slotOf.delete(key)
      this.#freeSlots.push(slot)
      Atomics.add(this.#changes, 0, 1)
    })
  }

  /** Under the lock: the source's offset, in this thread's slot for it. */
  #record(mark: SourceMark): void {
    let slot = this.#slotOf.get(mark.key)
    if (slot === undefined) {
      slot = this.#freeSlots.pop() ?? this.#nextSlot()
      if (slot === undefined) {
        this.#onRetry(
          `more than ${SLOTS_PER_THREAD} files in one reader thread: the rest are not checkpointed`,
        )
        return
      }
      this.#slotOf.set(mark.key, slot)
      const [dev, ino] = mark.key.split(':').map(Number)
      this.#slots[slot] = dev as number
      this.#slots[slot + 1] = ino as number
      this.#slots[slot + 3] = 1
    }
    this.#slots[slot + 2] = mark.offset
    Atomics.add(this.#changes, 0, 1)
    const st = mark.stats
    if (st)
      this.#slots.set(
        [st.lines, st.linesSplit, st.truncations, st.pendingBytes, st.lastActivity],
        slot + 4,
      )
  }

  /** The first never-used slot of this thread's region, or undefined when all are used. */
  #nextSlot(): number | undefined {
    if (this.#slotsUsed >= SLOTS_PER_THREAD) return undefined
    return (this.#region * SLOTS_PER_THREAD + this.#slotsUsed++) * SLOT
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

  write(block: Buffer, mark?: SourceMark): undefined {
    this.#mutex.lock()
    try {
      // The whole block under one lock hold, retries included: no other thread's bytes can land
      // inside it, even when the disk fills up part-way (every writer waits for space anyway).
      let off = 0
      let backoff = 50
      while (off < block.length) {
        try {
          off += writeSync(this.#fd[0] as number, block, off, block.length - off)
        } catch (err) {
          if (isErrno(err, 'EPIPE')) throw errors.outputClosed(err)
          if (!isErrno(err, ...RETRYABLE)) {
            throw errors.outputWrite(this.share.path, err as NodeJS.ErrnoException)
          }
          if (err.code !== 'EAGAIN') {
            this.#onRetry(
              `cannot write output ${this.share.path}: ${describeErrno(err)}; retrying, readers paused`,
            )
          }
          sleepSync(err.code === 'EAGAIN' ? 1 : backoff)
          backoff = Math.min(backoff * 2, 5000)
        }
      }
      // Size and offset in the same lock hold as the bytes: a snapshot sees both or neither.
      this.#size[0] = (this.#size[0] as number) + block.length
      if (mark) this.#record(mark)
    } finally {
      this.#mutex.unlock()
    }
    return undefined
  }

  /** Moves whenever the snapshot would differ (for skipping idle checkpoints). */
  get changes(): number {
    return Atomics.load(this.#changes, 0) + (this.#size[0] as number)
  }

  /**
   * Makes the output durable (no-op for stdout and pipes). Not under the lock: fsync covers
   * every write made before it, and holding the lock would stall every reader thread meanwhile.
   * Off the calling thread too (libuv's pool), so the main loop keeps serving events.
   */
  async sync(): Promise<void> {
    if (this.share.path === '-') return
    try {
      await fsyncAsync(this.#fd[0] as number)
    } catch (err) {
      if (!isErrno(err, 'EINVAL', 'EROFS')) throw err
    }
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
