/**
 * When the event-loop shell reads each file: never two reads of one file at once (a call made
 * while a read runs is folded into one more pass); change events of a file that keeps changing
 * folded into one read the Pacer times (pacer.ts), with the one timer that serves them all;
 * every read within the limit on reads in flight (p-limit). The blocking shell needs none of
 * this: it reads one file at a time, and its thread waits for the Pacer's next due read.
 */
import type { LimitFunction } from 'p-limit'
import { Pacer } from './pacer.js'

/** A file's read under way: `again`, one more pass asked for; `later`, a change event came. */
interface Pump {
  running: Promise<void>
  again: boolean
  later: boolean
}

export interface ReadScheduleOptions<F> {
  /** The shortest time between two reads of a file that keeps changing (see Pacer). */
  readonly foldMs?: number
  /** Bounds the reads in flight. */
  readonly limit: LimitFunction
  /** Reads what is new in the file (the shell's #readNew). */
  readonly read: (file: F) => Promise<void>
  /** A due folded read: the shell reads the files that lost the name first, then this one. */
  readonly readNamed: (file: F) => Promise<void>
  /** A read ended: the file may be parked now (see InputSlots.wake). */
  readonly ended: () => void
}

export class ReadSchedule<F extends object> {
  readonly #opts: ReadScheduleOptions<F>
  readonly #pumps = new Map<F, Pump>()
  readonly #pacer: Pacer<F>
  #timer: NodeJS.Timeout | null = null
  #timerDue = 0
  #closed = false

  constructor(opts: ReadScheduleOptions<F>) {
    this.#opts = opts
    this.#pacer = new Pacer(opts.foldMs)
  }

  /** A change event for `file`: read now, or later with the changes that follow (see Pacer). */
  changed(file: F): Promise<void> {
    const running = this.#pumps.get(file)
    if (running) {
      running.later = true
      return running.running
    }
    if (this.#pacer.changed(file, performance.now())) return this.#opts.readNamed(file)
    this.#arm()
    return Promise.resolve()
  }

  /**
   * Reads what is new in `file` now. Calls made while a read runs are folded into one more
   * pass; change events made meanwhile (`later`) into a read the pacer times.
   */
  pump(file: F): Promise<void> {
    const state = this.#pumps.get(file)
    if (state) {
      state.again = true
      return state.running
    }
    const entry: Pump = { running: Promise.resolve(), again: false, later: false }
    entry.running = (async () => {
      try {
        do {
          entry.again = false
          await this.#opts.limit(() => {
            this.#pacer.reading(file, performance.now())
            return this.#opts.read(file)
          })
        } while (entry.again)
      } finally {
        this.#pumps.delete(file)
        this.#opts.ended()
        if (entry.later) void this.changed(file)
      }
    })()
    this.#pumps.set(file, entry)
    return entry.running
  }

  /**
   * Reads `file` now, from inside another file's read, which holds a slot of the limit
   * already: through pump() it would wait for another slot, which a limit of one never frees.
   * Left alone while its own pump runs (that read is under way); a pump asked for meanwhile
   * runs after.
   */
  async readInside(file: F): Promise<void> {
    if (this.#pumps.has(file)) return
    const entry: Pump = { running: Promise.resolve(), again: false, later: false }
    this.#pumps.set(file, entry)
    entry.running = this.#opts.read(file).finally(() => {
      this.#pumps.delete(file)
      if (entry.again) void this.pump(file)
      else if (entry.later) void this.changed(file)
    })
    await entry.running
  }

  /** Asks the read of `file` under way, if any, for one more pass once it is done. */
  again(file: F): void {
    const pump = this.#pumps.get(file)
    if (pump) pump.again = true
  }

  /** Whether a read of `file` is under way or asked for. */
  reading(file: F): boolean {
    return this.#pumps.has(file)
  }

  /** How many files are being read or waiting to be. */
  get reads(): number {
    return this.#pumps.size
  }

  /** The read of `file` under way, if any. */
  whenRead(file: F): Promise<void> | undefined {
    return this.#pumps.get(file)?.running
  }

  /** Every read under way. */
  running(): Promise<void>[] {
    return [...this.#pumps.values()].map((p) => p.running)
  }

  /** `file` is closed: no folded read of it is due any more. */
  forget(file: F): void {
    this.#pacer.forget(file)
  }

  /** No more folded reads. */
  close(): void {
    this.#closed = true
    if (this.#timer !== null) clearTimeout(this.#timer)
  }

  /** Arms the timer for the next read put off by the pacer (or an earlier one than armed). */
  #arm(): void {
    if (this.#closed) return
    const now = performance.now()
    const wait = this.#pacer.nextIn(now)
    if (wait === null) return
    if (this.#timer !== null) {
      if (this.#timerDue <= now + wait) return
      clearTimeout(this.#timer)
    }
    this.#timerDue = now + wait
    this.#timer = setTimeout(() => {
      this.#timer = null
      for (const f of this.#pacer.takeDue(performance.now())) void this.#opts.readNamed(f)
      this.#arm()
    }, wait)
  }
}
