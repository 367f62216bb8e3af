/**
 * One simulated application writing numbered lines to its log, run by a timer in the selftest
 * process itself (so it keeps writing while logmerge is killed, and the selftest knows exactly
 * which line went into which file). Like a real application it holds its file open with
 * O_APPEND, and switches to a new file only when told (logrotate's postrotate signal).
 */
import { closeSync, fchmodSync, openSync, writeSync } from 'node:fs'
import type { SeqRange, WrittenStream } from './check.js'
import { lineFor } from './lines.js'
import type { Random } from './random.js'

export const ROTATIONS = ['rename', 'copytruncate', 'truncate'] as const
export type Rotation = (typeof ROTATIONS)[number]

/** Mode of the log files: readable by logmerge even when it runs as another user. */
export const READABLE = 0o644

export class Writer {
  readonly id: number
  /** The log's name. */
  readonly path: string
  /** How this writer's file is rotated (null: never). */
  readonly rotation: Rotation | null
  /** Rotations done so far (also the highest numbered old generation, path.N). */
  rotations = 0
  /** A rotation or a permission flip is in progress on this file. */
  busy = false
  /** Not writing at all (a truncation waits for logmerge to have everything). */
  paused = false
  /** No line split across two writes (around a rotation's critical moments). */
  wholeLinesOnly = false
  readonly #random: Random
  #fd: number
  #seq = 0
  #generation = 0
  readonly #generationStarts: number[] = [0]
  readonly #race: SeqRange[] = []
  readonly #late: SeqRange[] = []
  /** The unwritten end of a line split across two writes. */
  #rest: Buffer | null = null

  constructor(id: number, path: string, rotation: Rotation | null, random: Random) {
    this.id = id
    this.path = path
    this.rotation = rotation
    this.#random = random
    this.#fd = openSync(path, 'a', READABLE)
    fchmodSync(this.#fd, READABLE) // whatever the umask: logmerge may run as another user
  }

  /** Lines written so far. */
  get seq(): number {
    return this.#seq
  }

  /**
   * Appends `count` lines in one write. Sometimes (`split`) the last line is cut in two and only
   * its first part written now: a reader meets a partial line, which it must hold, not emit.
   */
  write(count: number, split: boolean): void {
    if (this.paused) return
    const parts: Buffer[] = []
    if (this.#rest) parts.push(this.#rest)
    this.#rest = null
    for (let i = 0; i < count; i++) {
      parts.push(Buffer.from(`${lineFor(this.id, this.#seq++, this.#generation)}\n`, 'latin1'))
    }
    const last = parts[parts.length - 1]
    if (split && !this.wholeLinesOnly && count > 0 && last && last.length > 1) {
      const cut = this.#random.int(1, last.length - 1)
      parts[parts.length - 1] = last.subarray(0, cut)
      this.#rest = last.subarray(cut)
    }
    if (parts.length > 0) writeAll(this.#fd, Buffer.concat(parts))
  }

  /** Writes the rest of a split line, so the file ends with a whole line. */
  finishLine(): void {
    if (this.#rest) writeAll(this.#fd, this.#rest)
    this.#rest = null
  }

  /**
   * The following lines go to a new generation: through `fd` (a new file after a rename), or
   * through the same descriptor (the file was truncated in place).
   */
  startGeneration(fd?: number): void {
    this.finishLine()
    if (fd !== undefined) {
      closeSync(this.#fd)
      this.#fd = fd
    }
    this.#generation++
    this.#generationStarts.push(this.#seq)
  }

  /** Lines from `from` to the current one were written between a copy and its truncate. */
  recordRace(from: number): void {
    if (this.#seq > from) this.#race.push({ from, to: this.#seq })
  }

  /** Lines from `from` to the current one went into a file already renamed away. */
  recordLate(from: number): void {
    if (this.#seq > from) this.#late.push({ from, to: this.#seq })
  }

  get generation(): number {
    return this.#generation
  }

  /** What was written, for the check. */
  written(): WrittenStream {
    return {
      writer: this.id,
      count: this.#seq,
      generationStarts: [...this.#generationStarts],
      race: [...this.#race],
      late: [...this.#late],
    }
  }

  close(): void {
    this.finishLine()
    closeSync(this.#fd)
  }
}

function writeAll(fd: number, bytes: Buffer): void {
  let done = 0
  while (done < bytes.length) done += writeSync(fd, bytes, done)
}
