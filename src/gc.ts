/**
 * The heap of a following daemon, and a full garbage collection at two moments.
 *
 * A daemon that follows files keeps its young generation small once started (settleHeap):
 * V8 grows it to 32 MiB (two 16 MiB halves) under the allocation of a start-up or a busy
 * spell and never gives it back while idle, which was a third of the resident memory of
 * 10,000 idle files. Its objects are short-lived (reads, events, promises), so a 2 MiB young
 * generation costs little; the batch merge of `--once --order time` keeps V8's sizing.
 *
 * The full collections (besides V8's own, and watchGarbage's for a daemon that idles):
 *
 * - At the end of `--once --order time`, to work around a Node bug that can keep the process
 *   from ever exiting (nodejs/node#54918, open in Node 20): when the event loop is empty, the
 *   main thread waits for V8's background tasks without collecting garbage, and a background
 *   TurboFan compile whose allocation needs a collection waits for the main thread. Both wait
 *   forever. Short `--once --order time` runs end while their hot code is still being compiled:
 *   on 3 small files, 11 runs in 100 of the version before this one hung at exit, 0 in 100 with
 *   this collection (and 0 in 100 in either reader mode). After a full collection the heap is
 *   far from its limit, so the compiles still running find room.
 * - Once a follow run's start-up pass is done (each reader thread too). Opening 10,000 files
 *   leaves the young generation grown to its largest (32 MiB) and the old one full of the
 *   start-up's garbage, and a daemon that then idles never collects either: measured, 135 MiB
 *   resident with 10,000 idle files, 92 MiB after this one collection (a live heap of 14 MiB).
 *
 * `--expose-gc` set at run time is the usual way to reach gc() without a command-line flag
 * (bin/logmerge runs through its shebang, which cannot portably pass one).
 */
import { getHeapSpaceStatistics, getHeapStatistics, setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

/**
 * Once a follow run's start-up pass is done: the young generation stays at the size a full
 * collection leaves it (1 MiB a half), and that collection is made now. The start-up itself
 * keeps V8's sizing: with a 1 MiB young generation, opening 10,000 files spent a third of its
 * time collecting. The thread's GarbageWatch looks again SETTLE_LOOK_MS later, when little is
 * allocated any more (see GarbageWatch).
 */
export function settleHeap(): void {
  setFlagsFromString('--semi-space-growth-factor=1')
  collectGarbage()
  const soon = Date.now() + SETTLE_LOOK_MS
  for (const watch of watches) watch.lookBy(soon)
}

/** How long after the end of start-up a thread's GarbageWatch looks (ms). */
const SETTLE_LOOK_MS = 5_000
/** This thread's GarbageWatches (module state is per thread). */
const watches = new Set<GarbageWatch>()

export function collectGarbage(): void {
  setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as () => void
  gc()
}

/** Garbage a following thread may sit on before watchGarbage collects it (bytes). */
const GARBAGE_BYTES = 8 * 1024 * 1024
/** How often watchGarbage looks (ms). */
const GARBAGE_CHECK_MS = 10_000
/** How often start()'s timer asks check() whether a look is due (lookBy may bring one forward). */
const LOOK_TICK_MS = 1_000

/** A young generation holding more than this (bytes, both halves) is given back when idle. */
const YOUNG_BYTES = 4 * 1024 * 1024
/**
 * Tries to give the young generation back at consecutive looks; after that many that gave
 * nothing back, one try every YOUNG_RETRY_LOOKS looks (see check).
 */
const YOUNG_TRIES = 3
const YOUNG_RETRY_LOOKS = 6

/** Bytes the young generation holds now (committed, both halves). */
function youngBytes(): number {
  return getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0
}

/**
 * A full collection when the heap grew by GARBAGE_BYTES since the last one, looked at every
 * GARBAGE_CHECK_MS. V8 collects the old generation when it nears a limit that grows with the
 * heap, so a daemon that was busy and then idles keeps what the busy spell left (the threads
 * engine's main thread: 70 MiB of heap for 14 MiB of live objects after 10,000 files had
 * reported in). An idle heap does not grow, so an idle daemon pays for the look only.
 *
 * Also one when the young generation is still at the size a busy spell grew it to (32 MiB after
 * a start-up of 10,000 files): V8 gives it back only in a full collection made while little is
 * allocated, which the one at the end of start-up (settleHeap) is not. Left to V8, it was given
 * back within 20 s in about half the runs; the others idled at 112 MiB resident instead of 82.
 * A try at the first look may come while start-up still allocates; after YOUNG_TRIES tries in
 * a row that gave nothing back, one every YOUNG_RETRY_LOOKS looks (a full collection of 20 MiB
 * of heap costs some 30 ms: not every 10 s for ever).
 */
export class GarbageWatch {
  #base = getHeapStatistics().used_heap_size
  #nextAt = Date.now() + GARBAGE_CHECK_MS
  /** Looks left before the young generation may be tried again. */
  #youngWait = 0
  /** Tries in a row that gave nothing back. */
  #youngFailed = 0

  constructor() {
    watches.add(this)
  }

  /** The next look no later than `at` (ms since epoch). */
  lookBy(at: number): void {
    this.#nextAt = Math.min(this.#nextAt, at)
  }

  /** For a thread that never returns to its event loop (Atomics.wait): call it now and then. */
  check(now = Date.now()): void {
    if (now < this.#nextAt) return
    this.#nextAt = now + GARBAGE_CHECK_MS
    const grew = getHeapStatistics().used_heap_size - this.#base >= GARBAGE_BYTES
    const young = this.#youngWait-- <= 0 && youngBytes() > YOUNG_BYTES
    if (!grew && !young) return
    collectGarbage()
    this.#base = getHeapStatistics().used_heap_size
    const kept = young && youngBytes() > YOUNG_BYTES
    this.#youngFailed = kept ? this.#youngFailed + 1 : 0
    this.#youngWait = this.#youngFailed >= YOUNG_TRIES ? YOUNG_RETRY_LOOKS : 0
  }

  /** Looks on a timer (unref'd); returns what stops it. */
  start(): () => void {
    const timer = setInterval(() => this.check(), LOOK_TICK_MS)
    timer.unref()
    return () => {
      clearInterval(timer)
      watches.delete(this)
    }
  }
}
