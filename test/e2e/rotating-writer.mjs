/**
 * A log writer that rotates its own file by renaming it, run as its own process so that several
 * write at once and logmerge's kills never stop them (issue 16's outside reproduction).
 *
 *   node rotating-writer.mjs <path> <prefix> <count> <linesPerSecond> <rotateEvery>
 *
 * Appends `count` lines `lineFor(prefix, 0..count-1)` to `path` through one held descriptor, one
 * write() per line, paced to `linesPerSecond` on the monotonic clock. Every `rotateEvery` lines
 * it renames `path` to `path.K` (K = 1, 2, ...: a new name each time, so every generation stays
 * on disk under one name) and opens a new `path`, as an application with built-in rotation does.
 * It opens `path` with O_CREAT: it may exist already (the first generation, created empty).
 */
import { closeSync, constants, openSync, renameSync, writeSync } from 'node:fs'
import { lineFor } from './writer-child.mjs'

/** @param {number} ms */
const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)

/** @param {string} path */
const create = (path) =>
  openSync(path, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT, 0o644)

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
      'usage: rotating-writer.mjs <path> <prefix> <count> <linesPerSecond> <rotateEvery>\n',
    )
    process.exit(2)
  }
  let fd = create(path)
  let generation = 0
  const start = performance.now()
  for (let seq = 0; seq < count; seq++) {
    if (seq > 0 && seq % every === 0) {
      closeSync(fd)
      renameSync(path, `${path}.${++generation}`)
      fd = create(path)
    }
    writeSync(fd, `${lineFor(prefix, seq)}\n`)
    // Ahead of the pace: sleep until this line is due (a millisecond at least, in batches).
    const ahead = start + ((seq + 1) * 1000) / rate - performance.now()
    if (ahead >= 1) sleep(Math.floor(ahead))
  }
  closeSync(fd)
}

main()
