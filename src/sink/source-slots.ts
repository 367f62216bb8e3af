/**
 * The locked writer's source slots: the table in shared memory where each thread records,
 * under the lock, each source's offset, fingerprint and stats (a region of SLOTS_PER_THREAD
 * slots a thread), and how a snapshot reads every region back into one map. Apart from the
 * writer because the table has rules of its own (whose slot wins when a key is in two, how
 * region 0's start-up notes are freed) that have nothing to do with the output file. Every
 * method runs under the writer's lock.
 */
import {
  HEAD_CELL,
  type LockedWriterShare,
  SLOT,
  SLOT_VERSION,
  SLOTS_PER_THREAD,
} from './locked-share.js'
import type { SourceMark, SourceStats } from './sink.js'

/** What the slots hold for a snapshot, by source key. */
export interface SlotsRead {
  readonly offsets: Map<string, number>
  readonly stats: Map<string, SourceStats>
  readonly heads: Map<string, Uint8Array>
}

/**
 * How stateLines makes a source's line (the checkpointer's side: the slots know no records).
 * `basis` is what the line depends on besides the slot (the reader's description of the
 * source), compared by identity; undefined when there is none yet.
 */
export interface LineMaker<B extends object> {
  basis(key: string): B | undefined
  /** `head`: a view of the slot's fingerprint, valid during the call only (null: none). */
  line(basis: B, offset: number, head: Uint8Array | null, stats: SourceStats): string
}

/**
 * What stateLines made of one slot last: its line, for as long as the slot's version and the
 * basis are the same.
 */
interface LineMade {
  readonly dev: number
  readonly ino: number
  readonly key: string
  readonly version: number
  readonly basis: object
  readonly line: string
}

export class SourceSlots {
  readonly #slots: Float64Array
  readonly #heads: Uint8Array
  /** This thread's slots: the first index of its region, and the slot of each source key. */
  readonly #region: number
  readonly #slotOf = new Map<string, number>()
  /** Slots of forgotten sources, reused first; then never-used ones (#slotsUsed so far). */
  readonly #freeSlots: number[] = []
  #slotsUsed = 0
  /** By slot number (index / SLOT): what stateLines made of it last (the main thread's). */
  readonly #made: (LineMade | undefined)[] = []

  constructor(share: LockedWriterShare, region: number) {
    this.#slots = new Float64Array(share.slots)
    this.#heads = new Uint8Array(share.heads)
    this.#region = region
  }

  /** Whether this thread has a slot for `key`. */
  has(key: string): boolean {
    return this.#slotOf.has(key)
  }

  /**
   * The source's offset (with its fingerprint and stats, when the mark has them), in this
   * thread's slot for it; false if this thread's region is full (the source is not recorded).
   */
  record(mark: SourceMark): boolean {
    let slot = this.#slotOf.get(mark.key)
    if (slot === undefined) {
      slot = this.#freeSlots.pop() ?? this.#nextSlot()
      if (slot === undefined) return false
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
    const st = mark.stats
    if (st)
      this.#slots.set(
        [st.lines, st.linesSplit, st.truncations, st.pendingBytes, st.lastActivity, st.bytes ?? 0],
        slot + 4,
      )
    this.#slots[slot + SLOT_VERSION] = (this.#slots[slot + SLOT_VERSION] as number) + 1
    return true
  }

  /**
   * The source `key` is gone for good: its slot is freed for another file, and so is its
   * start-up note in region 0 (the main thread's), which no reader thread owns. Left there, the
   * note kept the source in every snapshot after its thread had forgotten it (and the main
   * thread had dropped what it knew of it), and the threads engines' checkpoints, finding an
   * offset for a source nobody knew, were put off for good.
   */
  forget(key: string): void {
    const slot = this.#slotOf.get(key)
    if (slot !== undefined) {
      this.#free(slot)
      this.#slotOf.delete(key)
      this.#freeSlots.push(slot)
    }
    if (this.#region !== 0) this.#forgetStartupNote(key)
  }

  /**
   * Every region's slots in use, by key. A key in two slots (noted at start-up in region 0, then
   * recorded by its reader thread): the later region's slot wins, offset, fingerprint and stats
   * together, so that a snapshot never pairs one slot's offset with another slot's fingerprint.
   * Two reader threads' slots of one key: an inode one thread's file had (deleted, its entry not
   * yet dropped) is another thread's file's now; the thread that told the main thread of it last
   * (`ownerOf`, when the caller knows it) wins.
   */
  read(ownerOf: ((key: string) => number | undefined) | undefined): SlotsRead {
    const offsets = new Map<string, number>()
    const stats = new Map<string, SourceStats>()
    const heads = new Map<string, Uint8Array>()
    const s = this.#slots
    /** The region each key's slot was taken from (see ownerOf). */
    const from = new Map<string, number>()
    for (let i = 0; i < s.length; i += SLOT) {
      if (s[i + 3] !== 1) continue
      const key = `${s[i]}:${s[i + 1]}`
      const region = Math.floor(i / (SLOTS_PER_THREAD * SLOT))
      const owner = ownerOf?.(key)
      if (owner !== undefined && from.get(key) === owner + 1 && region !== owner + 1) continue
      from.set(key, region)
      offsets.set(key, s[i + 2] as number)
      const at = (i / SLOT) * HEAD_CELL
      const stored = this.#heads[at] as number
      if (stored > 0) heads.set(key, this.#heads.slice(at + 1, at + stored))
      else heads.delete(key)
      stats.set(key, this.#statsAt(i))
    }
    return { offsets, stats, heads }
  }

  /**
   * The state file's source lines, in read()'s order and with read()'s rule for a key in two
   * slots: for each source the slots hold, `maker`'s line from its basis and the slot's offset,
   * fingerprint and stats. A slot whose version and basis are the ones of the last call gives
   * the line made then: nothing is made for a source that did not move. Before, every
   * checkpoint of the thread engines made, through read(), a key, a fingerprint copy, a stats
   * object, two records and a line for every source: with 10,000 files and a few lines a second
   * into some of them, 10 % of a core and some 20 MiB of garbage a checkpoint (the main
   * thread's heap swung between 20 and 110 MiB). What is kept instead is each slot's line and
   * key. Null when a source has no basis yet (see sourcesAt): the checkpoint is put off.
   */
  stateLines<B extends object>(
    maker: LineMaker<B>,
    ownerOf: ((key: string) => number | undefined) | undefined,
  ): string[] | null {
    const lines: string[] = []
    /** Each key's place in `lines`, and the region its line was taken from. */
    const at = new Map<string, number>()
    const regionAt: number[] = []
    const s = this.#slots
    for (let i = 0; i < s.length; i += SLOT) {
      if (s[i + 3] !== 1) continue
      const n = i / SLOT
      const dev = s[i] as number
      const ino = s[i + 1] as number
      let made = this.#made[n]
      if (made !== undefined && (made.dev !== dev || made.ino !== ino)) made = undefined
      const key = made?.key ?? `${dev}:${ino}`
      const region = Math.floor(n / SLOTS_PER_THREAD)
      const place = at.get(key)
      if (place !== undefined) {
        const owner = ownerOf?.(key)
        if (owner !== undefined && regionAt[place] === owner + 1 && region !== owner + 1) continue
      }
      const basis = maker.basis(key)
      if (basis === undefined) return null
      const version = s[i + SLOT_VERSION] as number
      if (made === undefined || made.version !== version || made.basis !== basis) {
        const line = maker.line(basis, s[i + 2] as number, this.#headView(n), this.#statsAt(i))
        made = { dev, ino, key, version, basis, line }
        this.#made[n] = made
      }
      if (place === undefined) {
        at.set(key, lines.length)
        regionAt.push(region)
        lines.push(made.line)
      } else {
        regionAt[place] = region
        lines[place] = made.line
      }
    }
    return lines
  }

  /** Slot number `n`'s fingerprint, a view into the shared memory (null: none). */
  #headView(n: number): Uint8Array | null {
    const at = n * HEAD_CELL
    const stored = this.#heads[at] as number
    return stored > 0 ? this.#heads.subarray(at + 1, at + stored) : null
  }

  /** The stats in the slot at index `i`. */
  #statsAt(i: number): SourceStats {
    const [lines, linesSplit, truncations, pendingBytes, lastActivity, bytes] =
      this.#slots.subarray(i + 4, i + 10)
    return { lines, bytes, linesSplit, truncations, pendingBytes, lastActivity } as SourceStats
  }

  /** Marks `slot` unused (its fingerprint with it). */
  #free(slot: number): void {
    this.#slots[slot + 3] = 0
    this.#heads[(slot / SLOT) * HEAD_CELL] = 0
  }

  /**
   * In a reader thread: frees region 0's slot of `key`, if it has one. Region 0 is filled from
   * its start and never freed by its owner; an inode is never 0, so the first slot with inode 0
   * ends the used part.
   */
  #forgetStartupNote(key: string): void {
    const [dev, ino] = key.split(':').map(Number)
    const s = this.#slots
    for (let i = 0; i < SLOTS_PER_THREAD * SLOT && s[i + 1] !== 0; i += SLOT) {
      if (s[i + 3] === 1 && s[i] === dev && s[i + 1] === ino) this.#free(i)
    }
  }

  /** The first never-used slot of this thread's region, or undefined when all are used. */
  #nextSlot(): number | undefined {
    if (this.#slotsUsed >= SLOTS_PER_THREAD) return undefined
    return (this.#region * SLOTS_PER_THREAD + this.#slotsUsed++) * SLOT
  }
}
