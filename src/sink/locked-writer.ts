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
 */
import { closeSync, fstatSync, fsync, writeSync } from 'node:fs'
import { promisify } from 'node:util'
import { errors, isErrno } from '../errors.js'
import type { Logger } from '../log.js'
import { Mutex } from './mutex.js'
import {
  bytesToKeep,
  checkOutput,
  cutUnfinishedLine,
  isRetryable,
  nextBackoff,
  openOutputSync,
  RETRYABLE,
  resumedMessage,
  stalledMessage,
  syncQuietly,
  WRITE_ERROR_CODES,
  writeErrorIndex,
} from './output-file.js'
import { heldMessage, type OutputChange, OutputWatch, unheldMessage } from './output-watch.js'
import { PauseClock } from './pause-clock.js'
import type { BlockSink, OutputHealth, Snapshot, SourceMark, SourceStats } from './sink.js'

const STDOUT_FD = 1
const fsyncAsync = promisify(fsync)
const FIRST_BACKOFF_MS = 50
/** How long the main thread waits for the lock before it makes do without (see snapshot()). */
const MAIN_WAIT_MS = 100

/** Source offsets recorded per thread (a region each); more files than this in one thread are
 * followed but not checkpointed (a warning says so). */
export const SLOTS_PER_THREAD = 16384
/** A slot: device, inode, offset, in use, then the stats (SourceStats' six numbers). */
const SLOT = 10
/** Bytes a slot's fingerprint takes in LockedWriterShare.heads: its length + 1, then 64 bytes. */
const HEAD_CELL = 65

/**
 * The shared Int32 cells after the output size (a Float64 at byte 0), by index in an Int32Array
 * over the whole state buffer.
 */
const CELL = {
  /** The output fd (changes on a switch). */
  fd: 2,
  /** A count of changes (for skipping idle checkpoints). */
  changes: 3,
  /** An fd opened by the main thread to switch to, or -1. */
  nextFd: 4,
  /** 1 while writes wait: a switch not yet checkpointed, or an output that cannot be created. */
  gate: 5,
  /** Outages begun and ended: odd while a write is being retried. */
  stalls: 6,
  /** The last retried error, as 1 + its index in RETRYABLE. */
  stallCode: 7,
  /** Switches made (by whichever thread held the lock). */
  switches: 8,
  /** 1 if the main thread watches the output (and so opens the gate after a switch). */
  watched: 9,
} as const
const STATE_BYTES = 4 * 10

/**
 * The Float64 cells of LockedWriterShare.health (metrics), changed under the lock by the thread
 * that writes: bytes written, when the pause under way began (ms since epoch, 0: none), the
 * milliseconds of pauses that ended, then failed writes by WRITE_ERROR_CODES index.
 */
const HEALTH = { bytes: 0, pausedSince: 1, pausedMs: 2, errors: 3 } as const
const HEALTH_CELLS = HEALTH.errors + WRITE_ERROR_CODES.length

/** What a worker needs to write through the same lock to the same fd (structured-cloneable). */
export interface LockedWriterShare {
  readonly path: string
  readonly lock: SharedArrayBuffer
  /** The source offsets, SLOTS_PER_THREAD slots per thread, changed only under the lock. */
  readonly slots: SharedArrayBuffer
  /**
   * Each slot's source fingerprint (SourceMark.head) as of its offset: HEAD_CELL bytes a slot,
   * the length + 1 first (0: none recorded), changed with the offset under the lock, so a
   * checkpoint never pairs a truncated file's new first bytes with an offset from before.
   */
  readonly heads: SharedArrayBuffer
  /** Float64 at byte 0: output size; then the Int32 cells of CELL. */
  readonly state: SharedArrayBuffer
  /** Float64 cells of HEALTH: what was written, failed writes, pauses (for metrics). */
  readonly health: SharedArrayBuffer
}

/** The main thread's watch over the output (only the thread that opened it has one). */
export interface LockedWriterWatch {
  readonly log: Logger
  /** How often (ms) to report outages and compare the output's path with the open file. */
  readonly intervalMs: number
  /** After a switch to a new file and before any byte goes to it: save a checkpoint. */
  readonly onSwitch?: () => Promise<void> | void
}

export class LockedWriter implements BlockSink {
  readonly share: LockedWriterShare
  readonly #mutex: Mutex
  readonly #size: Float64Array
  readonly #cells: Int32Array
  readonly #onRetry: (message: string) => void
  readonly #slots: Float64Array
  readonly #heads: Uint8Array
  readonly #health: Float64Array
  /** This thread's slots: the first index of its region, and the slot of each source key. */
  readonly #region: number
  readonly #slotOf = new Map<string, number>()
  /** Slots of forgotten sources, reused first; then never-used ones (#slotsUsed so far). */
  readonly #freeSlots: number[] = []
  #slotsUsed = 0
  #closed = false
  // The main thread's side:
  #watch: LockedWriterWatch | null = null
  #timer: NodeJS.Timeout | null = null
  /** The last snapshot taken, served while a writer holds the lock through an outage. */
  #last: Snapshot | null = null
  #seenStalls = 0
  #reported = false
  #seenSwitches = 0
  #checkpointing = false
  /** The watch's decisions from tick to tick (see OutputWatch). */
  readonly #pathWatch = new OutputWatch()
  /** Times writing was held: the output went away and cannot be created again (yet); writes
   * wait at the gate meanwhile. */
  readonly #holds = new PauseClock()
  /** Every output fd this thread opened and has not closed: it closes them all (a worker
   * closing an fd another thread opened makes Node warn). */
  readonly #opened = new Set<number>()
  /**
   * Fds with an fsync on libuv's pool (how many), which #closeRetired leaves open: closed
   * before the fsync ran, it failed with EBADF (a checkpoint lost to a reopen; seen on Node 24),
   * or, the number reused by another open meanwhile, synced some other file.
   */
  readonly #syncing = new Map<number, number>()

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
    this.#region = region
    this.#slots = new Float64Array(share.slots)
    this.#heads = new Uint8Array(share.heads)
    this.#health = new Float64Array(share.health)
    this.#mutex = new Mutex(share.lock)
    this.#size = new Float64Array(share.state, 0, 1)
    this.#cells = new Int32Array(share.state)
    this.#onRetry = onRetry
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
    const state = new SharedArrayBuffer(8 + STATE_BYTES)
    new Float64Array(state, 0, 1)[0] = fd === STDOUT_FD ? 0 : fstatSync(fd).size
    const cells = new Int32Array(state)
    cells[CELL.fd] = fd
    cells[CELL.nextFd] = -1
    // Region 0 is the main thread's (where sources start, recorded before any thread reads);
    // reader thread i has region i + 1, which a snapshot reads later, so its offsets win.
    const regions = threads + 1
    const slots = new SharedArrayBuffer(
      regions * SLOTS_PER_THREAD * SLOT * Float64Array.BYTES_PER_ELEMENT,
    )
    const heads = new SharedArrayBuffer(regions * SLOTS_PER_THREAD * HEAD_CELL)
    const health = new SharedArrayBuffer(HEALTH_CELLS * Float64Array.BYTES_PER_ELEMENT)
    const writer = new LockedWriter(
      { path, lock: new SharedArrayBuffer(4), state, slots, heads, health },
      0,
      onRetry,
    )
    if (fd !== STDOUT_FD) writer.#opened.add(fd)
    if (watch) {
      cells[CELL.watched] = 1
      writer.#watch = watch
      writer.#timer = setInterval(() => writer.#tick(), watch.intervalMs)
      writer.#timer.unref()
    }
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
      const offsets = new Map<string, number>()
      const stats = new Map<string, SourceStats>()
      const heads = new Map<string, Uint8Array>()
      const s = this.#slots
      /** The region each key's slot was taken from (see ownerOf). */
      const from = new Map<string, number>()
      for (let i = 0; i < s.length; i += SLOT) {
        if (s[i + 3] !== 1) continue
        const key = `${s[i]}:${s[i + 1]}`
        // A key in two slots (noted at start-up in region 0, then recorded by its reader
        // thread): the later region's slot wins, offset, fingerprint and stats together, so
        // that a snapshot never pairs one slot's offset with another slot's fingerprint. Two
        // reader threads' slots of one key: an inode one thread's file had (deleted, its entry
        // not yet dropped) is another thread's file's now; the thread that told the main thread
        // of it last (ownerOf) wins.
        const region = Math.floor(i / (SLOTS_PER_THREAD * SLOT))
        const owner = this.ownerOf?.(key)
        if (owner !== undefined && from.get(key) === owner + 1 && region !== owner + 1) continue
        from.set(key, region)
        offsets.set(key, s[i + 2] as number)
        const at = (i / SLOT) * HEAD_CELL
        const stored = this.#heads[at] as number
        if (stored > 0) heads.set(key, this.#heads.slice(at + 1, at + stored))
        else heads.delete(key)
        const [lines, linesSplit, truncations, pendingBytes, lastActivity, bytes] = s.subarray(
          i + 4,
          i + 10,
        )
        stats.set(key, {
          lines,
          bytes,
          linesSplit,
          truncations,
          pendingBytes,
          lastActivity,
        } as SourceStats)
      }
      const fd = this.#cells[CELL.fd] as number
      // Closed (the run is over; the metrics take a last look): the fd may be another file's
      // now, the identity is the last snapshot's.
      const output =
        this.share.path === '-'
          ? null
          : this.#closed
            ? (this.#last?.output ?? null)
            : (({ dev, ino }) => ({ dev, ino }))(fstatSync(fd))
      this.#last = { size: this.#size[0] as number, output, offsets, stats, heads }
      return this.#last
    } finally {
      this.#mutex.unlock()
    }
  }

  /** A source starts at `mark.offset` with nothing written yet. */
  note(mark: SourceMark): void {
    this.#mutex.withLock(() => {
      if (!this.#slotOf.has(mark.key)) this.#record(mark)
    })
  }

  /**
   * The source `key` is gone for good: its slot is freed for another file, and so is its
   * start-up note in region 0 (the main thread's), which no reader thread owns. Left there, the
   * note kept the source in every snapshot after its thread had forgotten it (and the main
   * thread had dropped what it knew of it), and the threads engines' checkpoints, finding an
   * offset for a source nobody knew, were put off for good.
   */
  forget(key: string): void {
    this.#mutex.withLock(() => {
      const slot = this.#slotOf.get(key)
      if (slot !== undefined) {
        this.#free(slot)
        this.#slotOf.delete(key)
        this.#freeSlots.push(slot)
      }
      if (this.#region !== 0) this.#forgetStartupNote(key)
      Atomics.add(this.#cells, CELL.changes, 1)
    })
  }

  /** Under the lock: marks `slot` unused (its fingerprint with it). */
  #free(slot: number): void {
    this.#slots[slot + 3] = 0
    this.#heads[(slot / SLOT) * HEAD_CELL] = 0
  }

  /**
   * Under the lock, in a reader thread: frees region 0's slot of `key`, if it has one. Region 0
   * is filled from its start and never freed by its owner; an inode is never 0, so the first
   * slot with inode 0 ends the used part.
   */
  #forgetStartupNote(key: string): void {
    const [dev, ino] = key.split(':').map(Number)
    const s = this.#slots
    for (let i = 0; i < SLOTS_PER_THREAD * SLOT && s[i + 1] !== 0; i += SLOT) {
      if (s[i + 3] === 1 && s[i] === dev && s[i + 1] === ino) this.#free(i)
    }
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
    if (mark.head) {
      const at = (slot / SLOT) * HEAD_CELL
      const head = mark.head.subarray(0, HEAD_CELL - 1)
      this.#heads[at] = head.length + 1
      this.#heads.set(head, at + 1)
    }
    Atomics.add(this.#cells, CELL.changes, 1)
    const st = mark.stats
    if (st)
      this.#slots.set(
        [st.lines, st.linesSplit, st.truncations, st.pendingBytes, st.lastActivity, st.bytes ?? 0],
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
   * Opens the output path again (logrotate `create` + SIGHUP) and has every thread switch to it.
   * The switch is made under the lock, by this thread if the lock comes free soon, else by the
   * writer that holds it (at its next try, if it is waiting out a failed write). The old file is
   * synced, then closed once the new one is open.
   */
  reopen(): void {
    if (this.share.path === '-') return
    this.#requestSwitch(openOutputSync(this.share.path))
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
          const code = (err as NodeJS.ErrnoException).code
          if (code !== 'EAGAIN') {
            const at = HEALTH.errors + writeErrorIndex(code)
            this.#health[at] = (this.#health[at] as number) + 1
          }
          if (isErrno(err, 'EPIPE')) throw errors.outputClosed(err)
          if (!isRetryable(err)) {
            throw errors.outputWrite(this.share.path, err as NodeJS.ErrnoException)
          }
          if (!stalled && err.code !== 'EAGAIN') {
            stalled = true
            this.#health[HEALTH.pausedSince] = Date.now()
            this.#cells[CELL.stallCode] = 1 + RETRYABLE.indexOf(err.code as never)
            Atomics.add(this.#cells, CELL.stalls, 1) // odd: an outage began
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
            this.#switchLocked()
            this.#enter()
          }
        }
      }
      if (stalled) {
        Atomics.add(this.#cells, CELL.stalls, 1) // even: it ended
        const h = this.#health
        h[HEALTH.pausedMs] =
          (h[HEALTH.pausedMs] as number) + Date.now() - (h[HEALTH.pausedSince] as number)
        h[HEALTH.pausedSince] = 0
      }
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
   * Under the lock, before writing: makes a switch the main thread asked for, and waits (with
   * the lock released) while the gate is closed.
   */
  #enter(): void {
    for (;;) {
      if (Atomics.load(this.#cells, CELL.nextFd) !== -1) this.#switchLocked()
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
    const keep = bytesToKeep(fd, block.subarray(0, done))
    this.#size[0] = (this.#size[0] as number) + keep
    this.#health[HEALTH.bytes] = (this.#health[HEALTH.bytes] as number) + keep
    cutUnfinishedLine(fd, this.#size[0] as number, done - keep)
    return keep
  }

  /**
   * Under the lock: switches to the fd the main thread opened (the old file is synced, then
   * closed). When the main thread watches, the gate closes until it has checkpointed the new
   * file: the state names it, with its size now, before any byte of ours goes to it.
   */
  #switchLocked(): void {
    const next = Atomics.exchange(this.#cells, CELL.nextFd, -1)
    if (next === -1) return
    const old = this.#cells[CELL.fd] as number
    syncQuietly(old) // its bytes are counted in checkpoints
    this.#cells[CELL.fd] = next
    this.#size[0] = fstatSync(next).size
    Atomics.add(this.#cells, CELL.changes, 1)
    if (this.#cells[CELL.watched] === 1) Atomics.store(this.#cells, CELL.gate, 1)
    Atomics.add(this.#cells, CELL.switches, 1)
    // The old fd is closed by the thread that opened it (#closeRetired), not here.
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
    const holds = this.#holds
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
   * stays open until the fsync has run, even if a switch retires it meanwhile (see #syncing).
   */
  async sync(): Promise<void> {
    if (this.share.path === '-') return
    const fd = Atomics.load(this.#cells, CELL.fd)
    this.#syncing.set(fd, (this.#syncing.get(fd) ?? 0) + 1)
    try {
      await fsyncAsync(fd)
    } catch (err) {
      if (!isErrno(err, 'EINVAL', 'EROFS')) throw err
    } finally {
      const left = (this.#syncing.get(fd) ?? 1) - 1
      if (left > 0) this.#syncing.set(fd, left)
      else this.#syncing.delete(fd)
    }
  }

  /** Closes the fd (no fsync: see LoopWriter.close): only the owning thread, once every worker
   * has stopped. Idempotent. */
  close(): void {
    if (this.#closed) return
    this.#closed = true
    if (this.#timer) clearInterval(this.#timer)
    if (this.share.path === '-') return
    Atomics.store(this.#cells, CELL.nextFd, -1)
    for (const fd of this.#opened) closeSync(fd)
    this.#opened.clear()
  }

  /**
   * Main thread: closes the fds it opened that no thread writes to any more. Under the lock, so
   * no writer switches meanwhile; if a writer holds it, at a later tick.
   */
  #closeRetired(): void {
    if (this.#opened.size < 2 || !this.#mutex.lockFor(10)) return
    try {
      const current = Atomics.load(this.#cells, CELL.fd)
      const pending = Atomics.load(this.#cells, CELL.nextFd)
      for (const fd of this.#opened) {
        if (fd === current || fd === pending || this.#syncing.has(fd)) continue
        closeSync(fd)
        this.#opened.delete(fd)
      }
    } finally {
      this.#mutex.unlock()
    }
  }

  // -------------------------------------------------------------------------------------------
  // The main thread's watch
  // -------------------------------------------------------------------------------------------

  #tick(): void {
    if (this.#closed) return
    this.#reportOutage()
    this.#closeRetired()
    if (Atomics.load(this.#cells, CELL.switches) !== this.#seenSwitches) void this.#afterSwitch()
    else if (Atomics.load(this.#cells, CELL.nextFd) !== -1) this.#trySwitch()
    else this.#checkPath()
  }

  /** Says once when writes began to fail and once when they went through again. */
  #reportOutage(): void {
    const log = this.#watch?.log
    const stalls = Atomics.load(this.#cells, CELL.stalls)
    if (!log || stalls === this.#seenStalls) return
    this.#seenStalls = stalls
    if (!this.#reported) {
      const code = RETRYABLE[(this.#cells[CELL.stallCode] as number) - 1] ?? 'EIO'
      const err = Object.assign(new Error(code), { code })
      log.warn(stalledMessage(this.share.path, err))
      this.#reported = true
    }
    if (stalls % 2 === 0) {
      log.warn(resumedMessage(this.share.path))
      this.#reported = false
    }
  }

  /**
   * Is the open file still the one at the output path, as long as we wrote it? If not, say so
   * and open the path again, so no line goes on silently into a deleted file. While the path
   * cannot be created, writes wait at the gate (the lines wait in their files).
   */
  #checkPath(): void {
    const { path } = this.share
    const log = this.#watch?.log
    if (path === '-' || !log) return
    let change: OutputChange | null = null
    try {
      if (this.#mutex.lockFor(10)) {
        try {
          change = checkOutput(path, this.#cells[CELL.fd] as number, this.#size[0] as number)
        } finally {
          this.#mutex.unlock()
        }
      } else {
        // A writer holds the lock (maybe through a full disk): identity only, no size check.
        change = checkOutput(path, Atomics.load(this.#cells, CELL.fd), 0)
      }
    } catch {
      return // the fd cannot be stat'ed (the device is failing): the writes will tell
    }
    const held = this.#holds.paused
    const due = this.#pathWatch.due(change, held, path)
    if (!due) return
    // The warning is said once the new file is handed over (or cannot be opened), not before:
    // it says that the lines written before it went to the old file, and a write between the
    // warning and the hand-over went there too (see LoopWriter's #announce).
    let fd: number
    try {
      fd = openOutputSync(path)
    } catch (err) {
      if (!held) {
        if (due.warning) log.warn(due.warning)
        log.warn(heldMessage(path, err as Error))
        this.#holds.begin()
        Atomics.store(this.#cells, CELL.gate, 1)
      }
      return
    }
    if (held) {
      log.warn(unheldMessage(path))
      this.#holds.end()
    }
    this.#requestSwitch(fd)
    // From here every write switches first (see #enter).
    if (due.warning) log.warn(due.warning)
  }

  /** Main thread: hands `fd` to whoever switches first (this thread, if the lock is free). */
  #requestSwitch(fd: number): void {
    this.#opened.add(fd)
    Atomics.store(this.#cells, CELL.nextFd, fd) // a newer open wins over one not switched to
    Atomics.notify(this.#cells, CELL.nextFd) // a writer waiting out a failed write wakes
    this.#trySwitch()
  }

  #trySwitch(): void {
    if (this.#mutex.lockFor(MAIN_WAIT_MS)) {
      try {
        this.#switchLocked()
      } finally {
        this.#mutex.unlock()
      }
      this.#closeRetired()
    }
    if (Atomics.load(this.#cells, CELL.switches) !== this.#seenSwitches) void this.#afterSwitch()
  }

  /** Main thread, after a switch: checkpoint the new file, then let the writers go on. */
  async #afterSwitch(): Promise<void> {
    if (this.#checkpointing) return
    this.#checkpointing = true
    try {
      for (;;) {
        const switches = Atomics.load(this.#cells, CELL.switches)
        this.#seenSwitches = switches
        try {
          await this.#watch?.onSwitch?.()
        } catch (err) {
          this.#watch?.log.warn(
            `checkpoint after reopening ${this.share.path}: ${(err as Error).message}`,
          )
        }
        // Another switch meanwhile: checkpoint that file too before opening the gate.
        if (Atomics.load(this.#cells, CELL.switches) === switches) break
      }
    } finally {
      this.#checkpointing = false
    }
    this.#closeRetired()
    if (this.#holds.paused) return
    Atomics.store(this.#cells, CELL.gate, 0)
    Atomics.notify(this.#cells, CELL.gate)
  }
}
