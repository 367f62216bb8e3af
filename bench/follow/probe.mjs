// @ts-check
/**
 * When is a follower following? Probe lines appended to followed files answer it from the
 * outside, the same way for logmerge and every peer.
 *
 * untilFollowing: from the follower's spawn, a probe line `probe=<k> <tag>` is appended every
 * 20 ms to the next of the given files (a stride coprime with their number, so consecutive
 * probes land far apart and all files get their turn). "Following at" is the write time of
 * the first probe after which every probe was delivered (each given up to `graceMs`). A probe
 * written before its file was opened is legitimately skipped under --from end, and simply
 * moves the mark later. Probing stops once at least `spanMs` of consecutive probes came out
 * and every later one is out or younger than the grace; the last ones then get their grace,
 * and if one of them is missing probing resumes. Bounded by `capMs`.
 *
 * untilEachSeen: a probe in each file, again every 50 ms until every file's probe came out
 * (for the few-file cases, before writers start).
 */

import { appendFileSync } from 'node:fs'
import { percentile, sleep } from '../lib.mjs'

/**
 * @typedef {object} Following
 * @property {number | null} followingAtMs  from spawn to the write of the first probe after
 *                                          which all were delivered; null if never
 * @property {number | null} firstSeenMs    from spawn to the first probe seen in the output
 * @property {number} probes                written
 * @property {number} skipped               never delivered (all before followingAt)
 * @property {number | null} deliveryP50Ms  delivery time of the probes from followingAt on
 * @property {number | null} deliveryMaxMs
 * @property {boolean} capped               gave up at capMs
 */

/** @param {number} a @param {number} b @returns {number} */
function gcd(a, b) {
  return b === 0 ? a : gcd(b, a % b)
}

/** @param {number} n @returns {number} a step through 0..n-1 that visits every index */
export function spreadStride(n) {
  let s = Math.max(1, Math.round(n * 0.618))
  while (n > 1 && gcd(s, n) !== 1) s++
  return s
}

export class Prober {
  /** @type {{ file: number, writtenAt: number, seenAt: number | null }[]} */
  probes = []
  #files
  #tag
  /** @type {Set<number>} files with a probe seen */
  #fileSeen = new Set()

  /** @param {string[]} files absolute paths @param {string} tag */
  constructor(files, tag) {
    this.#files = files
    this.#tag = tag
  }

  /**
   * Hand every output line here first.
   * @param {string} line @param {number} seenAt
   * @returns {boolean} true if it was a probe line
   */
  onLine(line, seenAt) {
    if (!line.startsWith('probe=')) return false
    const p = this.probes[Number.parseInt(line.slice(6), 10)]
    if (p && p.seenAt === null) {
      p.seenAt = seenAt
      this.#fileSeen.add(p.file)
    }
    return true
  }

  /** @param {number} file index into the files */
  #write(file) {
    const k = this.probes.length
    appendFileSync(/** @type {string} */ (this.#files[file]), `probe=${k} ${this.#tag}\n`)
    this.probes.push({ file, writtenAt: performance.now(), seenAt: null })
  }

  /**
   * The first index from which every probe is delivered or still within its grace.
   * @param {number} now @param {number} graceMs
   */
  #candidate(now, graceMs) {
    let i = this.probes.length - 1
    while (i >= 0) {
      const p = /** @type {typeof this.probes[number]} */ (this.probes[i])
      if (p.seenAt === null && now - p.writtenAt >= graceMs) break
      i--
    }
    return i + 1
  }

  /** @param {number} from @returns {number} writtenAt span of the delivered run from `from` */
  #deliveredSpan(from) {
    let d = from
    while (d < this.probes.length && this.probes[d]?.seenAt !== null) d++
    if (d === from) return -1
    return (this.probes[d - 1]?.writtenAt ?? 0) - (this.probes[from]?.writtenAt ?? 0)
  }

  /**
   * @param {{ t0: number, alive: () => boolean, capMs: number, everyMs?: number, graceMs?: number, spanMs?: number }} o
   * @returns {Promise<Following>}
   */
  async untilFollowing(o) {
    const everyMs = o.everyMs ?? 20
    const graceMs = o.graceMs ?? 5000
    const spanMs = o.spanMs ?? 2000
    const n = this.#files.length
    const stride = spreadStride(n)
    let turn = 0
    let capped = false
    let f = 0
    while (true) {
      // Probe until a long enough run came out.
      while (true) {
        if (performance.now() - o.t0 > o.capMs || !o.alive()) {
          capped = o.alive()
          break
        }
        this.#write((turn * stride) % n)
        turn++
        const now = performance.now()
        f = this.#candidate(now, graceMs)
        if (this.#deliveredSpan(f) >= spanMs) break
        await sleep(everyMs)
      }
      // The last probes get their grace.
      const lastWrite = this.probes[this.probes.length - 1]?.writtenAt ?? 0
      while (
        performance.now() - lastWrite < graceMs &&
        this.probes.some((p, k) => k >= f && p.seenAt === null) &&
        o.alive()
      ) {
        await sleep(10)
      }
      f = this.#candidate(Number.POSITIVE_INFINITY, 0)
      if (capped || !o.alive() || this.#deliveredSpan(f) >= spanMs) break
    }
    const after = this.probes.slice(f)
    const delays = after.map((p) => (p.seenAt ?? 0) - p.writtenAt).sort((a, b) => a - b)
    const seen = this.probes
      .filter((p) => p.seenAt !== null)
      .map((p) => /** @type {number} */ (p.seenAt))
    return {
      followingAtMs: f < this.probes.length ? (this.probes[f]?.writtenAt ?? 0) - o.t0 : null,
      firstSeenMs: seen.length > 0 ? Math.min(...seen) - o.t0 : null,
      probes: this.probes.length,
      skipped: this.probes.filter((p) => p.seenAt === null).length,
      deliveryP50Ms: delays.length > 0 ? percentile(delays, 50) : null,
      deliveryMaxMs: delays.length > 0 ? (delays[delays.length - 1] ?? null) : null,
      capped,
    }
  }

  /**
   * @param {{ alive: () => boolean, capMs: number, everyMs?: number }} o
   * @returns {Promise<{ ok: boolean, ms: number }>}
   */
  async untilEachSeen(o) {
    const t0 = performance.now()
    while (this.#fileSeen.size < this.#files.length) {
      if (performance.now() - t0 > o.capMs || !o.alive())
        return { ok: false, ms: performance.now() - t0 }
      for (let i = 0; i < this.#files.length; i++) if (!this.#fileSeen.has(i)) this.#write(i)
      await sleep(o.everyMs ?? 50)
    }
    return { ok: true, ms: performance.now() - t0 }
  }
}
