/**
 * Pauses of writing and their time, for OutputHealth's pauses, pausedSeconds and paused: the
 * event-loop writer's (a write being waited out, or writing held) and the locked writer's holds
 * (the main thread could not create the output again). The locked writer's outages are counted
 * in shared memory instead (locked-share.ts's HEALTH), since any thread may be the one waiting.
 */
export class PauseClock {
  /** Pauses begun. */
  #count = 0
  /** Milliseconds of the pauses that ended. */
  #endedMs = 0
  /** When the pause under way began (ms since epoch), or null. */
  #since: number | null = null

  /** A pause begins (nothing if one is under way). */
  begin(now = Date.now()): void {
    if (this.#since !== null) return
    this.#count++
    this.#since = now
  }

  /** The pause under way ends (nothing if none is). */
  end(now = Date.now()): void {
    if (this.#since === null) return
    this.#endedMs += now - this.#since
    this.#since = null
  }

  get count(): number {
    return this.#count
  }

  get paused(): boolean {
    return this.#since !== null
  }

  /** Milliseconds paused, the pause under way included. */
  ms(now: number): number {
    return this.#endedMs + (this.#since === null ? 0 : now - this.#since)
  }
}
