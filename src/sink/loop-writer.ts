/**
 * The event-loop writer: owned by one event loop, so it needs no lock. Blocks are queued and
 * written in batches with writev; past a byte high-water mark, write() hands readers a promise
 * so they wait instead of memory growing (the "memory explosion" of the notes' BetterWay55).
 */
import { close, fstat, fsync, writev, writevSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import { errors, isErrno } from '../errors.js'
import type { Logger } from '../log.js'
import {
  checkOutput,
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
import { heldMessage, type OutputChange, OutputWatch, unheldMessage } from './output-watch.js'
import { PauseClock } from './pause-clock.js'
import type { BlockSink, OutputHealth, Snapshot, SourceMark, SourceStats } from './sink.js'

const writevAsync = promisify(writev)
const fsyncAsync = promisify(fsync)
const closeAsync = promisify(close)
const fstatAsync = promisify(fstat)

/** POSIX IOV_MAX on Linux: more buffers than this in one writev fail with EINVAL. */
const IOV_MAX = 1024
/**
 * A batch (one writev) takes blocks until it holds this many bytes: the writer frees the
 * blocks of a long queue a batch at a time, so that whoever waits for room (drainTo) goes on
 * while the rest is written, instead of after the whole queue.
 */
const BATCH_BYTES = 512 * 1024
/**
 * Batches of at most this many bytes are written synchronously (see #writeSome): every batch
 * of a catch-up (BATCH_BYTES, or one block of a read chunk and a held partial line).
 */
const SYNC_WRITE_MAX = 2 * 1024 * 1024
/** After this many bytes written synchronously in a row, the loop gets a turn (see #flushLoop). */
const YIELD_AFTER_BYTES = 4 * 1024 * 1024
const STDOUT_FD = 1

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
  #fd: number
  #queue: Buffer[] = []
  /** Parallel to #queue: the source mark(s) of each block, if any. */
  #marks: Marks[] = []
  /** Parallel to #queue: what to call once a block is out (see BlockSink.write's `done`). */
  #dones: Done[] = []
  #queuedBytes = 0
  #flushing: Promise<void> | null = null
  #waiters: (() => void)[] = []
  #idle: (() => void)[] = []
  /** drainTo() calls: each waits for the queue to hold at most `bytes`. */
  #room: { readonly bytes: number; readonly resolve: () => void }[] = []
  /** Output size and per-source offsets: changed together, only when a whole batch is out. */
  #size: number
  #written = new Map<string, number>()
  /** Each source's first bytes as of its offset in #written (see SourceMark.head). */
  #heads = new Map<string, Uint8Array>()
  #stats = new Map<string, SourceStats>()
  #changes = 0
  /** The output file's identity (null for stdout), for checkpoints. */
  #identity: { dev: number; ino: number } | null = null
  /** The error code we are waiting out, if any: readers wait meanwhile. */
  #retrying: string | null = null
  /** Cuts a retry's sleep short (a switch to a new file may end the wait). */
  #wake: AbortController | null = null
  /** A new fd for the output path, switched to at the next block boundary (or failed write). */
  #next: number | null = null
  /** reopen() calls waiting for the switch. */
  #switched: (() => void)[] = []
  /** Why writing is held: the output went away and cannot be created again (yet). */
  #held: string | null = null
  #unheld: (() => void)[] = []
  /** A reopen by the watch is under way. */
  #replacing = false
  /** The watch's decisions from tick to tick (see OutputWatch). */
  readonly #watch = new OutputWatch()
  /**
   * The watch's warning about a change (deleted, moved, replaced), said once the new file is
   * the one written to (see #switch), or once it cannot be opened: it says that the lines
   * written before it went to the old file, so none written after it may.
   */
  #announce: string | null = null
  #watchTimer: NodeJS.Timeout | null = null
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
    this.#fd = fd
    this.#size = size
    this.#opts = opts
  }

  /** The source `key` is gone for good: it leaves the checkpoints. */
  forget(key: string): void {
    if (!this.#written.delete(key)) return
    this.#stats.delete(key)
    this.#heads.delete(key)
    this.#changes++
  }

  /** Opens `path` for appending ('-' is stdout). */
  static async open(path: string, opts: LoopWriterOptions): Promise<LoopWriter> {
    if (path === '-') {
      const writer = new LoopWriter(path, STDOUT_FD, 0, opts)
      // A regular file (`> all.log`) is written like an output file: writev on libuv's pool,
      // beside the work of the main thread (process.stdout writes a file synchronously).
      writer.#stdoutStream = !(await fstatAsync(STDOUT_FD).then(
        (st) => st.isFile(),
        () => false, // closed or odd: process.stdout reports what goes wrong
      ))
      if (!writer.#stdoutStream) return writer
      // Errors may come after a write's callback (EPIPE on a later flush): always listen.
      process.stdout.on('error', (err: NodeJS.ErrnoException) =>
        writer.#fail(
          err.code === 'EPIPE' ? errors.outputClosed(err) : errors.outputWrite(path, err),
        ),
      )
      return writer
    }
    const fd = await openOutputAsync(path)
    const { size, dev, ino } = await fstatAsync(fd)
    const writer = new LoopWriter(path, fd, size, opts)
    writer.#identity = { dev, ino }
    if (opts.watchMs !== undefined) {
      writer.#watchTimer = setInterval(() => writer.#check(), opts.watchMs)
      writer.#watchTimer.unref()
    }
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
      heads: new Map(this.#heads),
    }
  }

  /** Moves whenever the snapshot would differ (for skipping idle checkpoints). */
  get changes(): number {
    return this.#changes
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
    if (this.#written.has(mark.key)) return
    if (this.#flushing === null) {
      this.#noteNow(mark)
      return
    }
    this.#queue.push(NOTHING)
    this.#marks.push({ note: mark })
    this.#dones.push(undefined)
  }

  #noteNow(mark: SourceMark): void {
    if (this.#written.has(mark.key)) return
    this.#written.set(mark.key, mark.offset)
    if (mark.head) this.#heads.set(mark.key, mark.head)
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

  /** A pause begins or ends with #retrying and #held: counted for health(). */
  #notePause(): void {
    if (this.#retrying !== null || this.#held !== null) this.#pauses.begin()
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
    this.#queue.push(block)
    this.#marks.push(mark)
    this.#dones.push(done)
    this.#queuedBytes += block.length
    this.#flushing ??= this.#flushLoop()
    // While the output cannot take bytes, readers stop reading (the lines wait in their files).
    const stuck = this.#retrying !== null || this.#held !== null
    if (this.#queuedBytes < this.#opts.highWaterBytes && !stuck) return undefined
    return new Promise((resolve) => this.#waiters.push(resolve))
  }

  /** Resolves once everything queued so far is written. */
  async drain(): Promise<void> {
    if (this.#flushing === null) return
    await new Promise<void>((resolve) => this.#idle.push(resolve))
  }

  /**
   * Resolves once at most `bytes` are queued (or the output failed for good): a producer that
   * keeps what it handed over until written (the --once merge's output areas) waits for some
   * of them, and goes on filling those while the rest is written.
   */
  async drainTo(bytes: number): Promise<void> {
    if (this.#queuedBytes <= bytes || this.#flushing === null) return
    await new Promise<void>((resolve) => this.#room.push({ bytes, resolve }))
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
    if (this.#fd === STDOUT_FD || this.#closed || this.#failed) return
    const fd = await openOutputAsync(this.path)
    const switched = new Promise<void>((resolve) => this.#switched.push(resolve))
    this.#switchTo(fd)
    await switched
  }

  /**
   * Writes what is queued, then closes (without fsync: durability is the checkpoint's job, which
   * calls sync() first). Idempotent: every call returns the same promise.
   */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      if (this.#watchTimer) clearInterval(this.#watchTimer)
      await this.drain()
      this.#releaseSwitchWaiters()
      if (this.#fd !== STDOUT_FD) await closeAsync(this.#fd)
    })()
    return this.#closed
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close()
  }

  #switchTo(fd: number): void {
    // A newer open wins over one not switched to yet.
    if (this.#next !== null) void closeAsync(this.#next).catch(() => {})
    this.#next = fd
    this.#wake?.abort()
    this.#flushing ??= this.#flushLoop()
  }

  async #flushLoop(): Promise<void> {
    // The blocks of this turn of the event loop (a burst of files read together) go out in one
    // batch, not one write each.
    await new Promise<void>((resolve) => setImmediate(resolve))
    let sinceYield = 0
    for (;;) {
      if (this.#held !== null) await new Promise<void>((resolve) => this.#unheld.push(resolve))
      if (this.#next !== null) await this.#switch()
      if (this.#queue.length === 0 || this.#failed) break
      const batch = this.#queue.splice(0, batchLength(this.#queue))
      const marks = this.#marks.splice(0, batch.length)
      const dones = this.#dones.splice(0, batch.length)
      if (!(await this.#writeBatch(batch, marks, dones))) return
      let woke = this.#queuedBytes < this.#opts.highWaterBytes / 2 && this.#wakeWaiters()
      woke = this.#wakeRoom() || woke
      // Synchronous writes hold the loop (see #writeSome). Whoever was just given room (a
      // reader, the --once merge filling its next area) runs before the next batch, so it
      // works while the rest is written; otherwise the loop gets a turn after a few MiB (the
      // readers' finished reads, the timers, the signals). Not after every batch: a turn per
      // 1 MiB batch cost the catch-up above a third more CPU (1.06-1.18 CPU-s against
      // 0.72-0.73, three runs each), a turn per 4 MiB did not (0.68-0.85).
      sinceYield += byteLength(batch)
      if (woke || sinceYield > YIELD_AFTER_BYTES) {
        sinceYield = 0
        await new Promise<void>((resolve) => setImmediate(resolve))
      }
    }
    this.#flushing = null
    this.#wakeWaiters()
    this.#wakeRoom()
    for (const resolve of this.#idle.splice(0)) resolve()
  }

  /**
   * Writes the whole batch, waiting out the errors that pass (full disk, size limit) with a
   * growing pause, then counts it (size and marks together); false if the output failed for
   * good. A partial write is continued, not repeated, so no byte is written twice.
   */
  async #writeBatch(first: Buffer[], firstMarks: Marks[], firstDones: Done[]): Promise<boolean> {
    let batch = first
    let marks = firstMarks
    let dones = firstDones
    let bytes = byteLength(batch)
    let done = 0
    let backoff = FIRST_BACKOFF_MS
    while (done < bytes) {
      try {
        done += await this.#writeSome(batch, done, bytes)
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
        if (this.#next !== null) {
          ;({ batch, marks, dones } = this.#leave(batch, marks, dones, done))
          bytes = byteLength(batch)
          done = 0
          await this.#switch()
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
    this.#size += bytes
    this.#bytesOut += bytes
    this.#queuedBytes -= bytes
    for (const m of marks) this.#apply(m)
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
  ): { batch: Buffer[]; marks: Marks[]; dones: Done[] } {
    let whole = 0
    let left = done
    while (whole < batch.length && (batch[whole] as Buffer).length <= left) {
      left -= (batch[whole] as Buffer).length
      whole++
    }
    this.#count(batch.slice(0, whole), marks.slice(0, whole), dones.slice(0, whole))
    const head = batch[whole] as Buffer
    const keep = leaveMidBlock(this.#fd, head.subarray(0, left), this.#size)
    this.#size += keep
    this.#bytesOut += keep
    this.#queuedBytes -= keep
    return {
      batch: [head.subarray(keep), ...batch.slice(whole + 1)],
      marks: marks.slice(whole),
      dones: dones.slice(whole),
    }
  }

  /** One writev (or stdout write) of the batch from byte `done`; returns the bytes written. */
  async #writeSome(batch: Buffer[], done: number, bytes: number): Promise<number> {
    const rest = done === 0 ? batch : skipBytes(batch, done)
    if (this.#stdoutStream) {
      await this.#writeStdout(rest)
      return bytes - done
    }
    // A batch of up to SYNC_WRITE_MAX is written at once. A trip through libuv's pool costs two
    // thread wake-ups, more than writing a few KiB to the page cache (tail/async-fs.ts has the
    // figures); and while catching up, the pool's threads are busy with the readers' reads, so
    // a write queued behind them waited while the main thread idled. Written here, the writes
    // overlap the reads instead. Measured on the 2-vCPU machine (4 x 128 MiB in the page
    // cache, --from start, async engine, three runs each): through the pool 1.02-1.20 CPU-s and
    // 595-752 MiB/s once started; synchronously 0.70-0.72 CPU-s and 1,100-1,900 MiB/s. The
    // cost is that a write to a slow disk holds the loop for its time, at most SYNC_WRITE_MAX
    // at a time; the blocking shell's writer (locked-writer.ts) always wrote this way.
    if (bytes - done <= SYNC_WRITE_MAX) return writevSync(this.#fd, rest)
    const { bytesWritten } = await writevAsync(this.#fd, rest)
    return bytesWritten
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

  /**
   * Switches to the fd in #next (the old file is synced, then closed). The state then names the
   * new file, with its size now, before any byte of ours goes to it.
   */
  async #switch(): Promise<void> {
    const next = this.#next
    if (next === null) return
    this.#next = null
    const old = this.#fd
    await fsyncAsync(old).catch(() => {}) // its bytes are in checkpoints; some files cannot sync
    const st = await fstatAsync(next)
    this.#fd = next
    this.#size = st.size
    this.#identity = { dev: st.dev, ino: st.ino }
    this.#changes++
    this.#sayChange() // every byte from here on goes to the new file
    await closeAsync(old).catch(() => {})
    try {
      await this.#opts.onSwitch?.()
    } catch (err) {
      this.#opts.log.warn(`checkpoint after reopening ${this.path}: ${(err as Error).message}`)
    }
    this.#releaseSwitchWaiters()
  }

  #releaseSwitchWaiters(): void {
    for (const resolve of this.#switched.splice(0)) resolve()
  }

  /**
   * The watch: is the open file still the one at the output path, as long as we wrote it? If
   * not, say so and open the path again, so no line goes on silently into a deleted file.
   */
  #check(): void {
    if (this.#next !== null || this.#replacing || this.#closed || this.#failed) return
    let change: OutputChange | null
    try {
      change = checkOutput(this.path, this.#fd, this.#size)
    } catch {
      return // the fd cannot be stat'ed (the device is failing): the writes will tell
    }
    const due = this.#watch.due(change, this.#held !== null, this.path)
    if (!due) return
    // Said once, not again at each tick while the path cannot be created (see #replace).
    if (due.warning !== null) this.#announce = due.warning
    void this.#replace()
  }

  /** Says the watch's warning, if one is waiting (see #announce). */
  #sayChange(): void {
    if (this.#announce !== null) this.#opts.log.warn(this.#announce)
    this.#announce = null
  }

  /** Opens the path again for the watch; while that fails, writing is held (nothing is lost). */
  async #replace(): Promise<void> {
    this.#replacing = true
    try {
      const fd = await openOutputAsync(this.path)
      if (this.#held !== null) {
        this.#opts.log.warn(unheldMessage(this.path))
        this.#held = null
        this.#notePause()
        for (const resolve of this.#unheld.splice(0)) resolve()
      }
      this.#switchTo(fd)
    } catch (err) {
      if (this.#held === null) {
        this.#sayChange()
        this.#opts.log.warn(heldMessage(this.path, err as Error))
      }
      this.#held = (err as Error).message
      this.#notePause()
    } finally {
      this.#replacing = false
    }
  }

  /**
   * stdout goes through process.stdout, which Node drives without blocking (a pipe or a
   * terminal) and which tells us when it has taken the bytes. A blocking writev on fd 1 would
   * hold a libuv thread while the reader is slow, and a held thread stops even process.exit.
   */
  async #writeStdout(batch: Buffer[]): Promise<void> {
    const out = process.stdout
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
  }

  #apply(marks: Marks): void {
    if (Array.isArray(marks)) {
      for (const m of marks) this.#apply(m)
      return
    }
    if (marks && 'note' in marks) {
      this.#noteNow(marks.note)
      return
    }
    const mark = marks as SourceMark | undefined
    if (!mark) return
    this.#changes++
    this.#written.set(mark.key, mark.offset)
    if (mark.stats) this.#stats.set(mark.key, mark.stats)
    if (mark.head) this.#heads.set(mark.key, mark.head)
  }

  /** Resolves the writers waiting for room; true if there were any. */
  #wakeWaiters(): boolean {
    const waiting = this.#waiters.splice(0)
    for (const resolve of waiting) resolve()
    return waiting.length > 0
  }

  /**
   * Resolves the drainTo() calls the queue now satisfies (all of them once it is idle); true if
   * it resolved any.
   */
  #wakeRoom(): boolean {
    if (this.#room.length === 0) return false
    const idle = this.#flushing === null
    const waiting = this.#room
    this.#room = []
    for (const w of waiting) {
      if (idle || this.#queuedBytes <= w.bytes) w.resolve()
      else this.#room.push(w)
    }
    return this.#room.length < waiting.length
  }

  #fail(err: Error): void {
    if (this.#failed) return
    this.#failed = err
    this.#queue = []
    this.#marks = []
    this.#dones = [] // the lent memory goes to the collector
    this.#queuedBytes = 0
    this.#flushing = null
    this.#wake?.abort()
    this.#wakeWaiters()
    this.#wakeRoom()
    for (const resolve of this.#idle.splice(0)) resolve()
    for (const resolve of this.#unheld.splice(0)) resolve()
    this.#releaseSwitchWaiters()
    this.#opts.onFatal(err)
  }
}

/** How many blocks from the queue's front the next batch takes (at least one): see BATCH_BYTES. */
function batchLength(queue: readonly Buffer[]): number {
  const most = Math.min(queue.length, IOV_MAX)
  let bytes = 0
  for (let n = 0; n < most; n++) {
    bytes += (queue[n] as Buffer).length
    if (bytes >= BATCH_BYTES) return n + 1
  }
  return most
}

/** What a queued block moves when it is out: its sources' offsets, or a note waiting its turn. */
type Marks = SourceMark | readonly SourceMark[] | { readonly note: SourceMark } | undefined

/** Called once a queued block is out (see BlockSink.write). */
type Done = (() => void) | undefined

/** The block queued with a note: no bytes (see note()). */
const NOTHING = Buffer.alloc(0)

const byteLength = (batch: readonly Buffer[]): number => batch.reduce((n, b) => n + b.length, 0)

/** The batch without its first `n` bytes (after a partial write). */
function skipBytes(batch: readonly Buffer[], n: number): Buffer[] {
  const rest: Buffer[] = []
  let left = n
  for (const buf of batch) {
    if (left >= buf.length) {
      left -= buf.length
      continue
    }
    rest.push(left > 0 ? buf.subarray(left) : buf)
    left = 0
  }
  return rest
}
