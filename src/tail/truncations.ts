/**
 * What the readers remember of truncations, for the generation search (generation-rules.ts):
 * for a file seen truncated, the content it held and how far we had read it (so a copy of that
 * content found later is read on from there, not from 0), and for a file read again from 0,
 * since when generations copied away may lie beside it unread. No I/O: the shells report what
 * they saw and when.
 */
import { headsAgree } from './cursor.js'
import { rotationFamily } from './rotation.js'
import type { Tracked } from './tracked.js'

export class Truncations {
  /** Files read again from 0 after a truncation, none of whose new bytes we have: since when. */
  readonly #emptied = new Map<string, number>()
  /** When each file was last seen not truncated (see emptied). */
  readonly #seenWhole = new WeakMap<Tracked<unknown>, number>()
  /**
   * When each file with none of its bytes ours was first seen empty (since it last held bytes
   * of ours). If it is not empty at a later look, it may have been written, copied and
   * truncated in between (logrotate's copytruncate right after the file was created): no
   * truncation shows, as for content never read after one, so generations born since are
   * looked for the same way (the service test: the copy's first line after the next
   * generation's, about one run in twenty). The first empty look, not the last: a look made
   * between logrotate's truncate and the writer's next line (the truncation's own event makes
   * one) sees the file empty too, after the copy was born, and the search from there missed
   * the copy (the service test again, 2 runs in 229; copy-identity.test.ts).
   */
  readonly #seenEmpty = new WeakMap<Tracked<unknown>, number>()
  /** Files seen truncated whose search was made while they were still empty (see generationsToFind). */
  readonly #searchedEmpty = new Set<string>()
  /**
   * Per file seen truncated: its content's first bytes then, how far we had read it, and when
   * the truncation was seen (see truncating).
   */
  readonly #cut = new Map<string, { family: string; head: Buffer; offset: number; at: number }>()

  /**
   * The shell saw `file` truncated and read what its copy held past our offset (if it found
   * one): note where the cursor stood, before it starts again from 0. A copy of that content
   * found later (see cutOffset) has its bytes up to there in the output already.
   */
  truncating(file: Tracked<unknown>): void {
    if (file.cursor.head.length === 0) return
    const cut = { family: rotationFamily(file.path), head: file.cursor.head }
    this.#cut.set(file.key, { ...cut, offset: file.cursor.offset, at: Date.now() })
  }

  /**
   * Where a copy beginning with `head`, found at `path` and last written at `mtimeMs`, goes on
   * from: the offset the cursor of a file of the same rotation family had when that file was
   * seen truncated with this content (see truncating), or undefined when it is the copy of no
   * such content. Its bytes before that offset were read through that file: read from 0, they
   * came out twice (the kill test with in-place copies: whole generations twice). A copy is
   * written before the truncation, so before it was seen: a file written after that is no
   * copy of it, even when it begins the same way (a fixed header).
   */
  cutOffset(path: string, head: Buffer, mtimeMs: number): number | undefined {
    if (head.length === 0) return undefined
    const family = rotationFamily(path)
    for (const c of this.#cut.values())
      if (c.family === family && mtimeMs <= c.at && headsAgree(c.head, head)) return c.offset
    return undefined
  }

  /** The file `key` left the table for good: nothing of it is remembered. */
  drop(key: string): void {
    this.#cut.delete(key)
    this.#emptied.delete(key)
    this.#searchedEmpty.delete(key)
  }

  /** The shell looked at `file` at `at` and it was not truncated (see emptied). */
  sawWhole(file: Tracked<unknown>, at: number): void {
    this.#seenWhole.set(file, at)
  }

  /**
   * The shell saw `file` truncated and starts it again from 0 (see generationsToFind). The
   * truncation happened after the file was last seen whole, and so did the births of any
   * generations copied away in between: that is the time to search from. The time the
   * truncation was seen is too late: with the readers held (a full output) for longer than a
   * rotation interval, a whole generation was written, copied and truncated in between, and
   * its copy, born before the truncation was seen, was read only at the next restart, after
   * the next generation's lines (the selftest, every engine). `otherwise`: when this run never
   * saw the file whole (a remembered one), the shell's start.
   */
  emptied(file: Tracked<unknown>, otherwise: number): void {
    this.#emptied.set(file.key, this.#seenWhole.get(file) ?? otherwise)
    this.#seenWhole.delete(file)
  }

  /**
   * Before reading `file`, whose size is now `size` at a look made at `at`: if it was truncated
   * (or seen empty, see #seenEmpty) and we have none of its new bytes yet, the time of that
   * truncation (or look), so the shell first looks beside it for generations born since
   * (searchHit's `unknownSince`). A copytruncate of content we never read leaves no trace in
   * the file itself: the fingerprint we would compare is empty, so the truncation is not seen,
   * and the copy was found only by a later search, after the next generation's lines (the
   * selftest's 120 s async run: 4 whole generations late). Undefined when there is nothing to
   * look for; once the file has bytes of ours, it is forgotten. `truncated`: a truncation was
   * seen (not only the file empty), so the search is made even when the directory shows no
   * new entry: a copy written in place over an old copy adds none (see isUnknownGeneration).
   */
  generationsToFind(
    file: Tracked<unknown>,
    size: number,
    at: number,
  ): { readonly since: number; readonly truncated: boolean } | undefined {
    if (file.cursor.head.length > 0 || file.cursor.offset > 0) {
      this.#emptied.delete(file.key)
      this.#searchedEmpty.delete(file.key)
      this.#seenEmpty.delete(file)
      return undefined
    }
    const truncatedAt = this.#emptied.get(file.key)
    if (size === 0) {
      // Seen truncated: searched now, while it is still empty, and once more when it has
      // bytes. Put off until it had bytes, the read after this look took the first bytes
      // written meanwhile, and then nothing was looked for (a generation copied in place
      // between two looks lost: the mixed soak, 240 lines, on the engines whose reader looked
      // just then). Kept for the look that finds it filled: a generation written, copied and
      // truncated after this one is found then.
      if (truncatedAt !== undefined) {
        if (this.#searchedEmpty.has(file.key)) return undefined
        this.#searchedEmpty.add(file.key)
        return { since: truncatedAt, truncated: true }
      }
      // Empty, none of its bytes ours, no truncation seen: the same once it fills, unless a
      // copytruncate happened first (see #seenEmpty; the first such look is kept).
      if (!this.#seenEmpty.has(file)) this.#seenEmpty.set(file, at)
      return undefined
    }
    const since = truncatedAt ?? this.#seenEmpty.get(file)
    this.#emptied.delete(file.key)
    this.#searchedEmpty.delete(file.key)
    this.#seenEmpty.delete(file)
    return since === undefined ? undefined : { since, truncated: truncatedAt !== undefined }
  }
}
