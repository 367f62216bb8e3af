// @ts-check
/**
 * What every follow sub-benchmark is given, and the case directories they work in: each case
 * gets a fresh directory under bench/out/follow/, removed when the case is over (inputs of
 * 10,000 files and outputs of a GiB are not kept).
 */

import { mkdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'

/**
 * @typedef {object} FollowContext
 * @property {import('./subjects.mjs').Subject[]} subjects  logmerge rows first, then peers
 * @property {boolean} quick
 * @property {number[] | undefined} files  --files: the burst's N (and idle's N: the largest)
 * @property {number | undefined} bytesEach  --size: catchup's bytes per input file
 * @property {string} root                 bench/out/follow
 * @property {number} nofile               the open-file limit followers get (the hard limit)
 * @property {boolean} keep                keep case directories (--keep)
 * @property {(msg: string) => void} log   progress on stderr
 * @property {{ capMs: number, graceMs: number, spanMs: number }} probe  ./probe.mjs's
 *   untilFollowing bounds: 60 s, 5 s, 2 s (20 s, 2 s, 1 s with --quick)
 */

/**
 * @param {FollowContext} ctx @param {string} name
 * @returns {{ dir: string, done: () => void }}
 */
export function caseDir(ctx, name) {
  const dir = join(ctx.root, name)
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(join(dir, 'in'), { recursive: true })
  return {
    dir,
    done: () => {
      if (!ctx.keep) rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** @param {number} i @param {number} n @returns {string} i zero-padded to n-1's width */
export function pad(i, n) {
  return String(i).padStart(String(Math.max(1, n - 1)).length, '0')
}
