/**
 * How one `--once --order time` merge lays out its arena (arena.ts): how large each read is,
 * how many read slots a source has, how many output areas there are and how large, and with
 * that whether a reader thread fills the slots (feed.ts). A module of its own because the
 * sizes are decided together (the reader thread needs more slots a source, in shared memory
 * WebAssembly can address) and the partition planner asks the same read size (plan.ts).
 */
import { availableParallelism } from 'node:os'
import { CopyArena } from './arena.js'
import { type ArenaMemory, MAX_WASM_BYTES, wasmAvailable } from './arena-memory.js'
import { busyCoresNow } from './busy-cores.js'
import { INLINE_SLOTS, THREAD_SLOTS } from './feed.js'
import { wantsReaderThread } from './prestart.js'

/**
 * Output areas: the merge fills some while the writer writes the others. Many of them, so that
 * it rarely waits: on 2 cores the writes (a third of the CPU time of the merge, in the kernel)
 * lag behind in bursts while other threads have the cores. With 4 areas the benchmark's merge
 * waited for the writer 180-560 ms of its ~1.1 s.
 */
const OUT_BYTES = 256 * 1024
const OUT_AREAS = 16
/** Room in a read slot for the partial line carried over from the previous read. */
const SLOT_SLACK = 64 * 1024
/** The read slots of all files together stay under this (many files: smaller reads). */
const ARENA_BUDGET = 64 * 1024 * 1024
const MIN_READ = 16 * 1024

/**
 * What each read of a merge of `sources` files asks for: the slots of all stay in budget
 * (`slots` a source: INLINE_SLOTS, or THREAD_SLOTS with the reader thread).
 */
export function readBytesFor(
  readChunkBytes: number,
  sources: number,
  slots = INLINE_SLOTS,
): number {
  return Math.max(
    MIN_READ,
    Math.min(readChunkBytes, Math.floor(ARENA_BUDGET / (slots * Math.max(1, sources)))),
  )
}

/**
 * LOGMERGE_READER_THREAD=on|off forces the choice (tests run the thread on small files, the
 * benchmark compares both); anything else, or unset, leaves it to wantsReaderThread.
 */
export function readerThreadChoice(env: NodeJS.ProcessEnv = process.env): boolean | undefined {
  const value = env.LOGMERGE_READER_THREAD
  return value === 'on' ? true : value === 'off' ? false : undefined
}

/** The arena of one merge: its read slots and output areas. */
export interface ArenaLayout {
  /** A reader thread fills the slots (the arena is then shared memory). */
  readonly threaded: boolean
  /** Read slots in all: INLINE_SLOTS a source, or THREAD_SLOTS with the reader thread. */
  readonly slots: number
  /** What each read asks for; a slot holds SLOT_SLACK more. */
  readonly slotBytes: number
  readonly outBytes: number
  readonly outAreas: number
}

export interface LayoutOptions {
  readonly readChunkBytes: number
  /** Reader thread forced on or off; undefined: as wantsReaderThread says. */
  readonly readerThread?: boolean
  /** Output areas' size and number (tests make them small); default OUT_BYTES x OUT_AREAS. */
  readonly outBytes?: number
  readonly outAreas?: number
}

/** The layout for a merge of `total` bytes in `sources` files. */
export function arenaLayout(opts: LayoutOptions, sources: number, total: number): ArenaLayout {
  const outBytes = opts.outBytes ?? OUT_BYTES
  const outAreas = opts.outAreas ?? OUT_AREAS
  const files = Math.max(1, sources)
  const threadSlotBytes = readBytesFor(opts.readChunkBytes, files, THREAD_SLOTS)
  const threadArenaBytes = CopyArena.bytesFor(
    threadSlotBytes + SLOT_SLACK,
    THREAD_SLOTS * files,
    outBytes,
    outAreas,
  )
  // The reader thread puts blocks into shared memory that only WebAssembly copies from fast
  // (arena-memory.ts): without it (--jitless), or for an arena over WebAssembly's 4 GiB
  // (some 10,000 files), the main thread reads.
  const threaded =
    (opts.readerThread ?? wantsReaderThread(total, availableParallelism(), busyCoresNow())) &&
    wasmAvailable() &&
    threadArenaBytes <= MAX_WASM_BYTES
  return {
    threaded,
    slots: (threaded ? THREAD_SLOTS : INLINE_SLOTS) * files,
    slotBytes: threaded ? threadSlotBytes : readBytesFor(opts.readChunkBytes, files, INLINE_SLOTS),
    outBytes,
    outAreas,
  }
}

/**
 * The arena laid out as `layout` says; `write` receives each full output area (CopyArena).
 * `memory`: a previous merge's, used again when large enough (a partition thread).
 */
export function layOutArena(
  layout: ArenaLayout,
  write: (bytes: Buffer) => void,
  memory: ArenaMemory | null | undefined,
): CopyArena {
  return new CopyArena(layout.slotBytes + SLOT_SLACK, layout.slots, layout.outBytes, write, {
    outAreas: layout.outAreas,
    shared: layout.threaded,
    ...(memory ? { memory } : {}),
  })
}
