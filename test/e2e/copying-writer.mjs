/**
 * A log writer that rotates its own file by copytruncate with the copy written in place (issue
 * 16, item 2), run as its own process so that several write at once.
 *
 *   node copying-writer.mjs <path> <prefix> <count> <linesPerSecond> <rotateEvery>
 *
 * Appends `count` lines `lineFor(prefix, 0..count-1)` to `path` through one descriptor held
 * with O_APPEND, one write() per line, paced to `linesPerSecond` on the monotonic clock. Every
 * `rotateEvery` lines it copies `path` to `path.1` with fs.copyFileSync, which rewrites an
 * existing `path.1` in place (opened without O_EXCL, truncated, written: the copy keeps the
 * inode of the copy before it), then truncates `path`, with no line written in between: every
 * line is in the copy or in the file, none lost by the rotation itself. Only one copy is kept,
 * so a generation is on disk until the next rotation overwrites it. Each rotation is recorded on
 * stdout (time in ms, the lines the copy holds, its inode and size). Behind its pace it catches
 * up, except after a pause of more than PAUSE_MS (stopped by the test while logmerge restarts).
 */
import {
  closeSync,
  constants,
  copyFileSync,
  ftruncateSync,
  openSync,
  statSync,
  writeSync,
} from 'node:fs'
import { lineFor } from './writer-child.mjs'

/** A gap between two lines longer than this (ms) is a pause: the pace goes on after it. */
const PAUSE_MS = 250

/** @param {number} ms */
const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)

function main() {
  const [path, prefix, countText, rateText, everyText] = process.argv.slice(2)
  const count = Number(countText)
  const rate = Number(rateText)
  const every = Number(everyText)
  if (
    !path ||
    !prefix ||
    !Number.isInteger(count) ||
    !(rate > 0) ||
    !Number.isInteger(every) ||
    every < 1
  ) {
    process.stderr.write(
      'usage: copying-writer.mjs <path> <prefix> <count> <linesPerSecond> <rotateEvery>\n',
    )
    process.exit(2)
  }
  const fd = openSync(path, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT, 0o644)
  let start = performance.now()
  let late = 0
  for (let seq = 0; seq < count; seq++) {
    // How late this line is. Lateness that grew by more than PAUSE_MS since the line before
    // is a pause (SIGSTOP by the test while logmerge restarts, or a stall that long), not
    // caught up: the lines and copies due meanwhile would come at once when it ends.
    const lateNow = performance.now() - (start + (seq * 1000) / rate)
    if (lateNow - late > PAUSE_MS) start += lateNow - late
    else late = Math.max(0, lateNow)
    if (seq > 0 && seq % every === 0) {
      copyFileSync(path, `${path}.1`)
      const copied = statSync(`${path}.1`)
      ftruncateSync(fd, 0)
      // The record of its rotations, on stdout (kept with a failed test's directory).
      writeSync(
        1,
        `${Date.now()} copied ${prefix}-${seq - every}..${prefix}-${seq - 1} to ${path}.1 (inode ${copied.ino}, ${copied.size} bytes), truncated\n`,
      )
    }
    writeSync(fd, `${lineFor(prefix, seq)}\n`)
    // Ahead of the pace: sleep until this line is due (a millisecond at least, in batches).
    const ahead = start + ((seq + 1) * 1000) / rate - performance.now()
    if (ahead >= 1) sleep(Math.floor(ahead))
  }
  closeSync(fd)
}

main()
