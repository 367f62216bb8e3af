/**
 * File generations on a host: the unit the centre counts offsets in. A generation is one run of
 * content of one file: a new file, or a file again after a truncation (copytruncate, `: >`).
 * The readers name files by device and inode (the key) and tell generations apart by offsets
 * going back and by the first bytes (the head); this table gives each generation an id that
 * outlives a restart, so a line published before a SIGKILL and again after it carries the same
 * (generation, offset) and the centre writes it once.
 *
 * The rule that makes ids survive a crash: a generation's id is in a saved checkpoint before
 * any of its bytes is published (the publisher waits for that checkpoint: see Publisher). After
 * a restart the table comes back from the checkpoint: each file resumes in the generation it
 * was in, and a generation the last run had started after that checkpoint (a truncation, a new
 * file, both already published in part) is found again by where it starts and by its first
 * bytes, under its own key or, for a copytruncate copy read again from its start, under the
 * copy's key. Pure logic, no I/O.
 */
import { FINGERPRINT_BYTES, headsAgree } from '../tail/cursor.js'

export interface Generation {
  readonly id: string
  /** The file (dev:ino) it was read from, last. */
  key: string
  /** Its first bytes as far as known (up to 64). */
  head: Buffer
  /** The file offset it starts at (0, or where --from end started a file). */
  readonly origin: number
  path: string
  label: string
}

/** A generation as the state file keeps it. */
export interface SavedGeneration {
  readonly id: string
  readonly key: string
  readonly head: string
  readonly origin: number
  readonly path: string
  readonly label: string
  /** The generation its key's checkpointed offset is in. */
  readonly current: boolean
}

/** Generations kept per key begun before its current one (older ones cannot be read again). */
const KEPT_PER_KEY = 4

export class Generations {
  readonly #run: string
  #next = 0
  readonly #byId = new Map<string, Generation>()
  /** Generations from the last run not yet taken up again (see claim). */
  readonly #unclaimed = new Set<string>()
  /** key -> generation id of the checkpointed offset (from the state, until the key is written). */
  readonly #restoredCurrent = new Map<string, string>()
  /** Bumped whenever an id is handed out: a checkpoint must record it before it is used. */
  #version = 0

  readonly #restored: boolean

  constructor(run: string, saved: readonly SavedGeneration[] = []) {
    this.#run = run
    this.#restored = saved.length > 0
    for (const s of saved) {
      const g: Generation = {
        id: s.id,
        key: s.key,
        head: Buffer.from(s.head, 'base64'),
        origin: s.origin,
        path: s.path,
        label: s.label,
      }
      this.#byId.set(g.id, g)
      if (s.current) this.#restoredCurrent.set(s.key, s.id)
      else this.#unclaimed.add(s.id)
    }
  }

  /** The table came back from a state (a restart), with generations of an earlier run. */
  get restored(): boolean {
    return this.#restored
  }

  get version(): number {
    return this.#version
  }

  get(id: string): Generation | undefined {
    return this.#byId.get(id)
  }

  /**
   * The generation `key` was in at the checkpoint, if its head agrees with `head` (the head the
   * state recorded with the offset, which the resume point carries).
   */
  resumed(key: string, head: Buffer): Generation | null {
    const id = this.#restoredCurrent.get(key)
    if (id === undefined) return null
    this.#restoredCurrent.delete(key)
    const g = this.#byId.get(id)
    if (!g || !headsAgree(g.head, head)) return null
    return g
  }

  /**
   * The generation of the last run a file resumed at start-up holds at `offset` (first bytes
   * `head`), when its key's checkpoint does not name it (see resumed): a copytruncate copy
   * read on from the copied file's checkpoint, or a copy or file read from its start that the
   * last run began after its checkpoint. The same search as a first block's (begin), made
   * before anything is read, so that the start-up checkpoint records the generation as the
   * file's current one. Without it, that checkpoint saw no file in those generations and kept
   * only KEPT_PER_KEY of them per key; the rest were gone when their bytes were read, got
   * fresh ids, and what the last run had published of them was written twice (the 30-kill run
   * of 2026-12-06 23:50; test/e2e/fleet-lost-acks.test.ts).
   */
  taken(key: string, offset: number, head: Buffer, path: string): Generation | null {
    const found = this.#claim(key, offset, head) ?? this.#continued(offset, head)
    if (!found) return null
    found.key = key
    found.path = path
    if (head.length > found.head.length) found.head = Buffer.from(head)
    return found
  }

  /**
   * A new generation of `key` starting at file offset `origin` with first bytes `head`: one the
   * last run started after its checkpoint (same start, heads agreeing; the same key first, then
   * a copy's), or a fresh id. `fresh` says whether a checkpoint must record it before use.
   */
  begin(
    key: string,
    origin: number,
    head: Buffer,
    path: string,
    label: string,
  ): { gen: Generation; fresh: boolean } {
    const found = this.#claim(key, origin, head) ?? this.#continued(origin, head)
    if (found) {
      found.key = key
      found.path = path
      if (head.length > found.head.length) found.head = Buffer.from(head)
      return { gen: found, fresh: false }
    }
    const gen: Generation = {
      id: `${this.#run}.${(this.#next++).toString(36)}`,
      key,
      head: Buffer.from(head),
      origin,
      path,
      label,
    }
    this.#byId.set(gen.id, gen)
    this.#version++
    return { gen, fresh: true }
  }

  #claim(key: string, origin: number, head: Buffer): Generation | null {
    if (head.length === 0 || this.#unclaimed.size === 0) return null
    let other: Generation | null = null
    for (const id of this.#unclaimed) {
      const g = this.#byId.get(id) as Generation
      if (g.origin !== origin || g.head.length === 0 || !headsAgree(g.head, head)) continue
      if (g.key === key) {
        this.#unclaimed.delete(id)
        return g
      }
      other ??= g
    }
    if (other) this.#unclaimed.delete(other.id)
    return other
  }

  /**
   * A file first seen at an offset past its start whose first bytes are a known generation's:
   * the readers took it for a copy of a file they followed (copytruncate) and read on from the
   * offset they had, so its bytes from `origin` on are that generation's, at the same offsets.
   * After a restart this is the copy made while down, read from the copied file's checkpoint,
   * whose generation is that file's checkpointed one; while running, the rest of the copy,
   * read after the truncation. A fresh id instead would send again, under a new name, what the
   * last run published of it past the checkpoint (and the centre would write it twice). Both
   * heads must cover the first min(64, origin) bytes: a short head proves little. The newest
   * generation that agrees is taken.
   */
  #continued(origin: number, head: Buffer): Generation | null {
    const need = Math.min(FINGERPRINT_BYTES, origin)
    if (origin === 0 || head.length < need) return null
    let found: Generation | null = null
    for (const g of this.#byId.values()) {
      if (g.origin <= origin && g.head.length >= need && headsAgree(g.head, head)) found = g
    }
    if (found) this.#unclaimed.delete(found.id)
    return found
  }

  /** The head grew (the file was short when the generation began). */
  learnHead(gen: Generation, head: Buffer): void {
    if (head.length > gen.head.length && headsAgree(gen.head, head)) gen.head = Buffer.from(head)
  }

  /** The key is gone for good (its file deleted): its generations cannot be read again. */
  forgetKey(key: string, keep: ReadonlySet<string>): void {
    for (const [id, g] of this.#byId) {
      if (g.key === key && !keep.has(id)) {
        this.#byId.delete(id)
        this.#unclaimed.delete(id)
      }
    }
    this.#restoredCurrent.delete(key)
  }

  /**
   * The table for a checkpoint: every generation still useful, `current` marking the one each
   * key's checkpointed offset is in (`currentOf`). A key keeps its current generation, every
   * generation begun after it, and the KEPT_PER_KEY newest others. Every generation begun after
   * the checkpointed one may be read again after a crash (the readers resume at the checkpoint
   * and read the copytruncate copies made since from their start), however many there are:
   * while publishing is held (a full stream, servers gone) the acknowledged checkpoint falls
   * behind by as many rotations as happen meanwhile, and a generation dropped here got a fresh
   * id after a SIGKILL and was written twice (the 200-kill soak: 24 generations, 10 and 14 per
   * file, all but the 4 newest of each, 13,540 lines). Older ones cannot be read again.
   */
  save(currentOf: ReadonlyMap<string, string | null>): SavedGeneration[] {
    const current = new Set<string>()
    for (const id of currentOf.values()) if (id !== null) current.add(id)
    for (const id of this.#restoredCurrent.values()) current.add(id)
    // Where each generation was begun among all (the table keeps them in the order begun), and
    // where each key's checkpointed generation was.
    const begun = new Map<string, number>()
    for (const id of this.#byId.keys()) begun.set(id, begun.size)
    // Under the generation's key and under the key of the checkpoint that names it: a copy
    // read on from a file's offset takes the generation to the copy's key, while the file's
    // later generations stay under the file's.
    const currentAt = new Map<string, number>()
    const anchor = (key: string, id: string) => {
      const at = begun.get(id)
      if (at !== undefined) currentAt.set(key, Math.max(at, currentAt.get(key) ?? at))
    }
    for (const id of current) {
      const g = this.#byId.get(id)
      if (g) anchor(g.key, id)
    }
    for (const [key, id] of currentOf) if (id !== null) anchor(key, id)
    for (const [key, id] of this.#restoredCurrent) anchor(key, id)
    const perKey = new Map<string, number>()
    const out: SavedGeneration[] = []
    const all = [...this.#byId.values()].reverse() // newest first
    for (const g of all) {
      const isCurrent = current.has(g.id)
      const since = currentAt.get(g.key)
      const afterCheckpoint = since !== undefined && (begun.get(g.id) ?? -1) > since
      if (!isCurrent && !afterCheckpoint) {
        const n = perKey.get(g.key) ?? 0
        if (n >= KEPT_PER_KEY) {
          this.#byId.delete(g.id)
          this.#unclaimed.delete(g.id)
          continue
        }
        perKey.set(g.key, n + 1)
      }
      out.push({
        id: g.id,
        key: g.key,
        head: g.head.toString('base64'),
        origin: g.origin,
        path: g.path,
        label: g.label,
        current: isCurrent,
      })
    }
    return out.reverse()
  }
}
