/**
 * A log writer for the end-to-end tests, run as its own process so that several write at once.
 *
 *   node writer-child.mjs <path> <prefix> <count> [delayMs]
 *
 * Appends `count` lines `lineFor(prefix, 0..count-1)` to `path`, one write() per line, sleeping
 * `delayMs` after each. Like an application that survives logrotate's rename + create, it opens
 * the file by name for every line. It never creates the file: logrotate's `create` opens the new
 * file with O_EXCL and, finding one there, renames it to `<name>-<date>.backup` (lines lost to
 * logrotate, not to logmerge); so between the rename and the create we wait for the name instead.
 */
import { closeSync, constants, openSync, writeSync } from 'node:fs'
import { pathToFileURL } from 'node:url'

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789'

/**
 * The `seq`th line a writer with this prefix writes (without its newline): unique, and padded to
 * a pseudo-random length so lines differ in size; the same on every run.
 * @param {string} prefix
 * @param {number} seq
 * @returns {string}
 */
export function lineFor(prefix, seq) {
  // FNV-1a over the prefix and seq, then a small xorshift for the padding.
  let h = 0x811c9dc5
  for (const ch of `${prefix}/${seq}`) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0
  let pad = ''
  const length = 4 + (h % 60)
  for (let i = 0; i < length; i++) {
    h ^= h << 13
    h ^= h >>> 17
    h ^= h << 5
    h >>>= 0
    pad += ALPHABET[h % ALPHABET.length]
  }
  return `${prefix}-${seq}-${pad}`
}

/** @param {number} ms */
const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)

/** @param {string} path @param {Buffer} bytes */
function appendByName(path, bytes) {
  for (;;) {
    let fd
    try {
      fd = openSync(path, constants.O_WRONLY | constants.O_APPEND)
    } catch (err) {
      if (/** @type {NodeJS.ErrnoException} */ (err).code !== 'ENOENT') throw err
      sleep(1) // between a rotation's rename and its create
      continue
    }
    try {
      writeSync(fd, bytes)
    } finally {
      closeSync(fd)
    }
    return
  }
}

function main() {
  const [path, prefix, countText, delayText = '0'] = process.argv.slice(2)
  const count = Number(countText)
  const delayMs = Number(delayText)
  if (!path || !prefix || !Number.isInteger(count) || !Number.isFinite(delayMs)) {
    process.stderr.write('usage: writer-child.mjs <path> <prefix> <count> [delayMs]\n')
    process.exit(2)
  }
  for (let seq = 0; seq < count; seq++) {
    appendByName(path, Buffer.from(`${lineFor(prefix, seq)}\n`))
    if (delayMs > 0) sleep(delayMs)
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main()
