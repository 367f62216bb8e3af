/**
 * Sorted ISO-timestamped files and their oracle, `LC_ALL=C sort -m -s -k1,1` (fixed-width ISO
 * times, so text order is time order; sort -s keeps equal times in file order, as the merge
 * does). Used by the --once --order time tests.
 *
 * Both are kept for the rest of the test file's process: several tests (and the same test for
 * each reader) ask for the same files by seed, and making 40 MB of them and sorting them took
 * 2-3 s of each such test. The files are written afresh into each test's directory; the sort is
 * reused only while the files are as they were written (size and mtime).
 */
import { execFileSync } from 'node:child_process'
import { statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

/** The contents of the files `sortedIsoFiles` made, by their arguments. */
const made = new Map<string, readonly Buffer[]>()
/** Which made file is at each path, and its size and mtime when written. */
const written = new Map<string, { key: string; size: number; mtimeMs: number }>()
/** sortMerge's output, by the keys of its files in order. */
const merged = new Map<string, Buffer>()

/** The key of the made file at `path` while it is unchanged, else undefined. */
function madeKeyOf(path: string): string | undefined {
  const was = written.get(path)
  const st = statSync(path, { throwIfNoEntry: false })
  return was && st && st.size === was.size && st.mtimeMs === was.mtimeMs ? was.key : undefined
}

/** What LC_ALL=C sort -m -s -k1,1 writes for `files`. */
export function sortMerge(files: readonly string[]): Buffer {
  const keys = files.map(madeKeyOf)
  const key = keys.every((k) => k !== undefined) ? keys.join('|') : undefined
  const known = key === undefined ? undefined : merged.get(key)
  if (known) return known
  const out = execFileSync('sort', ['-m', '-s', '-k1,1', ...files], {
    env: { PATH: process.env.PATH, LC_ALL: 'C' },
    maxBuffer: 256 * 1024 * 1024,
  })
  if (key !== undefined) merged.set(key, out)
  return out
}

/**
 * `n` files of `lines` lines each (`iso0.log`, ...), every one sorted by a fixed-width ISO
 * time, with many equal times across files (and within one), a payload that may hold spaces,
 * and a few lines longer than a 4 KiB read. Each line names its file: ` file<i> `.
 * `long`: about one line in `longEvery` is padded to a length in `longBytes` instead.
 */
export function sortedIsoFiles(
  dir: string,
  n: number,
  lines: number,
  seed: number,
  long?: { readonly longEvery: number; readonly longBytes: readonly [number, number] },
): string[] {
  const key = JSON.stringify([n, lines, seed, long ?? null])
  let contents = made.get(key)
  if (contents === undefined) {
    contents = makeIsoFiles(n, lines, seed, long)
    made.set(key, contents)
  }
  return contents.map((bytes, f) => {
    const path = join(dir, `iso${f}.log`)
    writeFileSync(path, bytes)
    const st = statSync(path)
    written.set(path, { key: `${key}#${f}`, size: st.size, mtimeMs: st.mtimeMs })
    return path
  })
}

function makeIsoFiles(
  n: number,
  lines: number,
  seed: number,
  long?: { readonly longEvery: number; readonly longBytes: readonly [number, number] },
): Buffer[] {
  let state = seed
  const random = () => {
    state = (state * 1103515245 + 12345) % 2 ** 31
    return state / 2 ** 31
  }
  const base = Date.parse('2026-11-24T08:00:00Z')
  // toISOString once a second: the rest of a time is its milliseconds.
  let second = Number.NaN
  let prefix = ''
  const iso = (t: number): string => {
    const s = Math.floor(t / 1000)
    if (s !== second) {
      second = s
      prefix = new Date(s * 1000).toISOString().slice(0, 20)
    }
    return `${prefix}${String(t - s * 1000).padStart(3, '0')}Z`
  }
  return Array.from({ length: n }, (_, f) => {
    let t = base
    let buf = Buffer.allocUnsafe(lines * 64)
    let at = 0
    for (let i = 0; i < lines; i++) {
      t += Math.floor(random() * 3) * 7 // steps of 0, 7 or 14 ms: equal times are common
      const padded = random() < (long ? 1 / long.longEvery : 0.002)
      const [least, most] = long?.longBytes ?? [6000, 6000]
      const length = long ? least + Math.floor(random() * (most - least)) : 6000
      const pad = padded ? ' '.padEnd(length, 'x') : ''
      const line = `${iso(t)} file${f} line ${i} value=${Math.floor(random() * 1e6)}${pad}\n`
      if (at + line.length > buf.length) {
        const bigger = Buffer.allocUnsafe(Math.max(buf.length * 2, at + line.length))
        buf.copy(bigger, 0, 0, at)
        buf = bigger
      }
      at += buf.write(line, at, 'latin1')
    }
    return buf.subarray(0, at)
  })
}
