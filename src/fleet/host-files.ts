/**
 * The files a host publishes, as the sending side knows them (ahead of the acknowledgements):
 * each file's path and label, the generation its next bytes belong to, and the offset up to
 * which its bytes are queued. Decides, for each block the readers hand over, which generation
 * it is in and at which file offset it starts (the generation table of generations.ts gives
 * the ids). Pure logic.
 */
import type { SourceMark } from '../sink/sink.js'
import { headsAgree } from '../tail/cursor.js'
import type { Generation, Generations } from './generations.js'

/** A file as the sending side knows it. */
interface KeyState {
  gen: Generation | null
  /** File offset up to which its bytes are queued. */
  end: number
  path: string
  label: string
}

/** Where a block goes: its generation, the file offset it starts at, and its checkpoint's. */
export interface Placed {
  readonly gen: Generation
  readonly start: number
  /** The generation the block's mark offset is in (null: the file has begun anew). */
  readonly markGen: string | null
  /** The generation table changed (a fresh id, or one taken up again): worth a checkpoint. */
  readonly changed: boolean
  /** A fresh id was handed out for this block's generation. */
  readonly fresh: boolean
}

export class HostFiles {
  readonly #gens: Generations
  readonly #keys = new Map<string, KeyState>()
  readonly #paths = new Map<string, { path: string; label: string }>()

  constructor(gens: Generations) {
    this.#gens = gens
  }

  /** The file `key` was opened at `path`: its label and path go with its generations. */
  opened(key: string, path: string, label: string): void {
    this.#paths.set(key, { path, label })
    const ks = this.#keys.get(key)
    if (!ks) return
    ks.path = path
    ks.label = label
    if (ks.gen) {
      ks.gen.path = path
      ks.gen.label = label
    }
  }

  /** The generation `key` is in and where it ends, if any (its file is let go). */
  current(key: string): { gen: Generation; end: number } | null {
    const ks = this.#keys.get(key)
    return ks?.gen ? { gen: ks.gen, end: ks.end } : null
  }

  /** Whether `key` is known (noted, or written). */
  has(key: string): boolean {
    return this.#keys.has(key)
  }

  /**
   * A source starts at `mark.offset`: the generation the state had it in, if its head agrees,
   * else the last run's generation it holds there (Generations.taken), if any.
   */
  note(mark: SourceMark): Generation | null {
    const ks = this.#keyState(mark.key, mark.offset)
    const head = Buffer.from(mark.head ?? [])
    ks.gen =
      this.#gens.resumed(mark.key, head) ??
      (this.#gens.restored ? this.#gens.taken(mark.key, mark.offset, head, ks.path) : null)
    return ks.gen
  }

  /** The block of `fileBytes` file bytes written with `mark`: see Placed. */
  place(mark: SourceMark, fileBytes: number): Placed {
    const ks = this.#keyState(mark.key, mark.offset)
    const start = mark.offset - fileBytes
    if (start < 0) {
      // The partial last line of the generation before a truncation, finished with a newline:
      // its bytes are that generation's, after what was queued of it (Cursor.restart).
      // (A generation resumed from a state without the table has none yet: it gets one here.)
      const changed = ks.gen === null
      const gen =
        ks.gen ?? this.#gens.begin(mark.key, ks.end, Buffer.alloc(0), ks.path, ks.label).gen
      const placed = { gen, start: ks.end, markGen: null, changed, fresh: changed }
      ks.gen = null
      ks.end = 0
      return placed
    }
    const head = Buffer.from(mark.head ?? [])
    let changed = false
    if (ks.gen === null || start < ks.end || !headsAgree(ks.gen.head, head)) {
      const begun = this.#gens.begin(mark.key, start, head, ks.path, ks.label)
      ks.gen = begun.gen
      changed = begun.fresh
    } else {
      this.#gens.learnHead(ks.gen, head)
    }
    ks.end = mark.offset
    return { gen: ks.gen, start, markGen: ks.gen.id, changed, fresh: changed }
  }

  /** The file `key` is gone for good. */
  forget(key: string): void {
    this.#keys.delete(key)
  }

  /** Adds the generations the files are in now to `ids`. */
  inUse(ids: Set<string>): void {
    for (const ks of this.#keys.values()) if (ks.gen) ids.add(ks.gen.id)
  }

  #keyState(key: string, offset: number): KeyState {
    let ks = this.#keys.get(key)
    if (!ks) {
      const named = this.#paths.get(key) ?? { path: key, label: key }
      ks = { gen: null, end: offset, path: named.path, label: named.label }
      this.#keys.set(key, ks)
    }
    return ks
  }
}
