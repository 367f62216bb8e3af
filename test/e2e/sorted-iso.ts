/**
 * Sorted ISO-timestamped files and their oracle, `LC_ALL=C sort -m -s -k1,1` (fixed-width ISO
 * times, so text order is time order; sort -s keeps equal times in file order, as the merge
 * does). Used by the --once --order time tests.
 */
import { execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'

/** What LC_ALL=C sort -m -s -k1,1 writes for `files`. */
export function sortMerge(files: readonly string[]): Buffer {
  return execFileSync('sort', ['-m', '-s', '-k1,1', ...files], {
    env: { PATH: process.env.PATH, LC_ALL: 'C' },
    maxBuffer: 256 * 1024 * 1024,
  })
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
  let state = seed
  const random = () => {
    state = (state * 1103515245 + 12345) % 2 ** 31
    return state / 2 ** 31
  }
  const base = Date.parse('2026-11-24T08:00:00Z')
  return Array.from({ length: n }, (_, f) => {
    let t = base
    const text: string[] = []
    for (let i = 0; i < lines; i++) {
      t += Math.floor(random() * 3) * 7 // steps of 0, 7 or 14 ms: equal times are common
      const padded = random() < (long ? 1 / long.longEvery : 0.002)
      const [least, most] = long?.longBytes ?? [6000, 6000]
      const length = long ? least + Math.floor(random() * (most - least)) : 6000
      const pad = padded ? ' '.padEnd(length, 'x') : ''
      text.push(
        `${new Date(t).toISOString()} file${f} line ${i} value=${Math.floor(random() * 1e6)}${pad}`,
      )
    }
    const path = join(dir, `iso${f}.log`)
    writeFileSync(path, `${text.join('\n')}\n`)
    return path
  })
}
