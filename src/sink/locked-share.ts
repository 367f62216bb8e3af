/**
 * The locked writer's shared memory, cell by cell: what every thread writing through the one
 * lock sees (the output fd and size, the switch and gate cells, the outage counters, the health
 * metrics, the source slots), and the one change to it that any thread may make, the switch to
 * a new fd. Apart from the writer so that the layout is read in one place: the writer
 * (locked-writer.ts), the source slots (source-slots.ts) and the owning thread's side
 * (locked-owner.ts) all index it with these constants.
 */
import { fstatSync } from 'node:fs'
import { syncQuietly, WRITE_ERROR_CODES } from './output-file.js'

export const STDOUT_FD = 1

/** Source offsets recorded per thread (a region each); more files than this in one thread are
 * followed but not checkpointed (a warning says so). */
export const SLOTS_PER_THREAD = 16384
/**
 * A slot: device, inode, offset, in use, then the stats (SourceStats' six numbers), then its
 * version: a count that moves at every record into the slot and never goes back, freed or not
 * (SourceSlots.stateLines makes a source's state-file line again only when it moved).
 */
export const SLOT = 11
/** Where a slot's version is (see SLOT). */
export const SLOT_VERSION = 10
/** Bytes a slot's fingerprint takes in LockedWriterShare.heads: its length + 1, then 64 bytes. */
export const HEAD_CELL = 65

/**
 * The shared Int32 cells after the output size (a Float64 at byte 0), by index in an Int32Array
 * over the whole state buffer.
 */
export const CELL = {
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
export const HEALTH = { bytes: 0, pausedSince: 1, pausedMs: 2, errors: 3 } as const
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

/** The shared memory for output `path`, open as `fd`, and `threads` reader threads. */
export function createShare(path: string, fd: number, threads: number): LockedWriterShare {
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
  return { path, lock: new SharedArrayBuffer(4), state, slots, heads, health }
}

/**
 * Under the lock: switches to the fd the main thread opened (the old file is synced, then
 * closed). When the main thread watches, the gate closes until it has checkpointed the new
 * file: the state names it, with its size now, before any byte of ours goes to it. `cells` and
 * `size` are views of the share's state (CELL, and the Float64 at byte 0).
 */
export function switchLocked(cells: Int32Array, size: Float64Array): void {
  const next = Atomics.exchange(cells, CELL.nextFd, -1)
  if (next === -1) return
  const old = cells[CELL.fd] as number
  syncQuietly(old) // its bytes are counted in checkpoints
  cells[CELL.fd] = next
  size[0] = fstatSync(next).size
  Atomics.add(cells, CELL.changes, 1)
  if (cells[CELL.watched] === 1) Atomics.store(cells, CELL.gate, 1)
  Atomics.add(cells, CELL.switches, 1)
  // The old fd is closed by the thread that opened it (LockedOwner's closeRetired), not here.
}
