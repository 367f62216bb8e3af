/**
 * The heap of a following daemon, and a full garbage collection at two moments.
 *
 * A daemon that follows files keeps its young generation small (capYoungGeneration, and the
 * reader threads' resourceLimits): V8 grows it to 32 MiB (two 16 MiB halves) under the
 * allocation of a start-up or a busy spell and gives it back only when it collects while
 * little is allocated, which was a third of the resident memory of 10,000 idle files in their
 * first seconds. Its objects are short-lived (reads, events, promises), so a small young
 * generation costs little; the batch merge of `--once --order time` keeps V8's sizing.
 *
 * The full collections (besides V8's own, and GarbageWatch's for a daemon that idles):
 *
 * - At the end of `--once --order time`, to work around a Node bug that can keep the process
 *   from ever exiting (nodejs/node#54918, open in Node 20): when the event loop is empty, the
 *   main thread waits for V8's background tasks without collecting garbage, and a background
 *   TurboFan compile whose allocation needs a collection waits for the main thread. Both wait
 *   forever. Short `--once --order time` runs end while their hot code is still being compiled:
 *   on 3 small files, 11 runs in 100 of the version before this one hung at exit, 0 in 100 with
 *   this collection (and 0 in 100 in either reader mode). After a full collection the heap is
 *   far from its limit, so the compiles still running find room.
 * - Once a follow run's start-up pass is done (settleHeap; each reader thread too). Opening
 *   10,000 files leaves the old generation full of the start-up's garbage, and a daemon that
 *   then idles does not collect it for seconds: measured, 135 MiB resident with 10,000 idle
 *   files, 92 MiB after one collection (a live heap of 14 MiB), 80 MiB after two with the young
 *   generation capped.
 *
 * `--expose-gc` set at run time is the usual way to reach gc() without a command-line flag
 * (bin/logmerge runs through its shebang, which cannot portably pass one).
 */
import { PerformanceObserver } from 'node:perf_hooks'
import { getHeapSpaceStatistics, getHeapStatistics, setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

/**
 * A follow run's young generation grows to FOLLOW_YOUNG_BYTES and no further: V8 would grow it
 * to 32 MiB under the allocation of a start-up of 10,000 files and give that back only in a
 * full collection made once allocation has been low for some seconds (so 5-10 s after
 * "ready", in the first seconds an operator looks at). Measured on 10,000 files (async, Node
 * 20): resident 80 MiB 1.5 s after ready, against 108 MiB uncapped and 92 MiB with an 8 MiB cap;
 * ready after 780-840 ms, against 760-920 uncapped (5 runs each: no difference in the noise).
 * The cap is the growth factor set to 1 once the young generation has reached it, looked at
 * after each young collection; returns what stops looking. A flag is the process's: from then
 * on the reader threads' young generations do not grow either (their own cap, resourceLimits
 * in threaded.ts, is 4 MiB of young generation, about 1 MiB a half). Node 24's V8 grows an
 * uncapped young generation to 128 MiB; with the cap it passes 4 MiB only while an incremental
 * marking is under way (up to 10.5 MiB seen) and is back at 4 MiB when the marking ends.
 */
export function capYoungGeneration(): () => void {
  const observer = new PerformanceObserver(capYoung)
  observer.observe({ entryTypes: ['gc'] })
  stopCapping = () => {
    stopCapping = null
    observer.disconnect()
  }
  capYoung()
  return () => stopCapping?.()
}

/**
 * A new thread's heap can set the process's growth factor back to V8's least, 2 (seen on Node
 * 20: the thread engines' main thread grew its young generation to 16 MiB within 150 ms of its
 * threads' start, in a stretch of synchronous work). Called when a reader thread is online; the
 * thread engines also begin their own start-up work once all are (threaded.ts), so that the
 * look after each young collection catches a growth from there.
 */
export function capYoungAgain(): void {
  if (stopCapping) capYoung()
}

/**
 * Stops capYoungGeneration's look after each young collection; null when none is under way.
 * settleHeap stops it: from the end of start-up the growth factor stays 1, and a look at every
 * young collection of a busy daemon would be work on its hot path.
 */
let stopCapping: (() => void) | null = null

function capYoung(): void {
  if (youngBytes() >= FOLLOW_YOUNG_BYTES) setFlagsFromString('--semi-space-growth-factor=1')
}

/** A follow run's young generation at most (bytes, both halves): 2 MiB a half. */
const FOLLOW_YOUNG_BYTES = 4 * 1024 * 1024

/**
 * Once a follow run's start-up pass is done: the young generation grows no more (it stays at
 * the size it has, FOLLOW_YOUNG_BYTES at most), and the start-up's garbage is collected now. Two
 * collections: the first frees the start-up's objects, and only the second gives back the
 * pages the first left empty (its sweep must be done first): measured on 10,000 files, 52.8 MiB
 * of heap committed after the first, 24.5 after the second; resident 82 MiB instead of 109
 * until a collection V8 makes by itself 5-10 s later. The main thread's watch counts the heap's
 * growth from here on (GarbageWatch). The engines save a checkpoint just before (where the
 * start-up pass left every file), so that its garbage (10,000 files: a record of each, some
 * 5-10 MiB of objects, strings and buffers) goes with the start-up's: a daemon on which nothing
 * is written then has nothing more to collect.
 */
export function settleHeap(): void {
  stopCapping?.()
  setFlagsFromString('--semi-space-growth-factor=1')
  collectTwice()
  const used = getHeapStatistics().used_heap_size
  for (const watch of watches) watch.settled(used)
}

/**
 * Two full collections: the first frees, the second gives back the pages the first left
 * empty (see settleHeap).
 */
function collectTwice(): void {
  collectGarbage()
  collectGarbage()
}

/**
 * A checkpoint was saved. The first one after the end of start-up (the engines save one just
 * before it; this one comes when the first lines have moved offsets) leaves the garbage of a
 * record of every file (10,000 files: 5-10 MiB of strings and arrays; 17 MiB in the thread
 * engines' main thread), in use until its state file is written: this thread's watches look
 * right after it (at their next tick). A look at a set time after start-up (2 s) came while
 * that checkpoint was still being written, so its garbage stayed until V8's memory reducer
 * some 8 s later (RSS 91 MiB instead of 78-79 in between; async, 10,000 files). Later
 * checkpoints leave theirs to the watches' usual looks.
 */
export function checkpointSaved(): void {
  for (const watch of watches) watch.checkpointSaved()
}

/** This thread's GarbageWatches (module state is per thread). */
const watches = new Set<GarbageWatch>()

export function collectGarbage(): void {
  setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as () => void
  gc()
}

/** Garbage a following thread may sit on before its GarbageWatch collects it (bytes). */
const GARBAGE_BYTES = 8 * 1024 * 1024
/** How often a GarbageWatch looks (ms). */
const GARBAGE_CHECK_MS = 10_000
/** How often start()'s timer asks check() whether a look is due (settled() brings one forward). */
const LOOK_TICK_MS = 1_000

/** Bytes the young generation holds now (committed, both halves). */
function youngBytes(): number {
  return getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0
}

/**
 * A full collection when the heap grew by GARBAGE_BYTES since the last one (or since the end
 * of start-up, settleHeap), looked at every GARBAGE_CHECK_MS. V8 collects the old generation
 * when it nears a limit that grows with the heap, so a daemon that was busy and then idles
 * keeps what the busy spell left (the threads engine's main thread: 70 MiB of heap for 14 MiB
 * of live objects after 10,000 files had reported in). An idle heap does not grow, so an idle
 * daemon pays for the look only: the watch counted from its own start once, and so collected
 * the start-up's live objects again at its first look (20 ms of CPU in an idle daemon's
 * first 10 s).
 */
export class GarbageWatch {
  readonly #used: () => number
  readonly #collect: () => void
  #base: number
  #nextAt = Date.now() + GARBAGE_CHECK_MS
  /** The first checkpoint after the end of start-up is still to come (see checkpointSaved). */
  #afterCheckpoint = false

  /** `heap` replaces the heap's used bytes and the collection (tests). */
  constructor(heap?: { used: () => number; collect: () => void }) {
    this.#used = heap?.used ?? (() => getHeapStatistics().used_heap_size)
    this.#collect = heap?.collect ?? collectTwice
    this.#base = this.#used()
    watches.add(this)
  }

  /** The heap was collected at the end of start-up and holds `used` bytes now. */
  settled(used: number): void {
    this.#base = used
    this.#nextAt = Date.now() + GARBAGE_CHECK_MS
    this.#afterCheckpoint = true
  }

  /** See checkpointSaved: the first one after settled() brings the next look forward. */
  checkpointSaved(now = Date.now()): void {
    if (!this.#afterCheckpoint) return
    this.#afterCheckpoint = false
    this.#nextAt = Math.min(this.#nextAt, now)
  }

  /** For a thread that never returns to its event loop (Atomics.wait): call it now and then. */
  check(now = Date.now()): void {
    if (now < this.#nextAt) return
    this.#nextAt = now + GARBAGE_CHECK_MS
    if (this.#used() - this.#base < GARBAGE_BYTES) return
    this.#collect()
    this.#base = this.#used()
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
