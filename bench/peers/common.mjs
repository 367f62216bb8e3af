// @ts-check
/**
 * What the two npm peer scripts share: their command line, the glob expansion they do for
 * themselves (neither library takes a glob), one output file for every input, and a clean
 * stop on SIGTERM/SIGINT. The scripts follow files the way each library's README shows and do
 * nothing clever of their own, so that bench/follow.mjs measures the library.
 *
 *   node bench/peers/<peer>.mjs -o OUT [--from start|end] [--list FILE] [PATH | 'DIR/*.log']...
 *
 * --list FILE names one input a line (for 10,000 paths). A glob is expanded once, at start:
 * only `*` and `?` in the last path component (what the benchmarks use); files created later
 * are not followed (neither library watches a directory).
 */

import { createWriteStream, readdirSync, readFileSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { parseArgs } from 'node:util'

/**
 * @typedef {object} PeerArgs
 * @property {string} output
 * @property {'start' | 'end'} from
 * @property {string[]} inputs   every file to follow, globs expanded
 */

/** @param {string} pattern @returns {string[]} */
export function expandGlob(pattern) {
  const name = basename(pattern)
  if (!/[*?]/.test(name)) return [pattern]
  if (/[*?[]/.test(dirname(pattern))) {
    throw new Error(`${pattern}: only the last path component may hold * or ?`)
  }
  const re = new RegExp(
    `^${name
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
  )
  const dir = dirname(pattern)
  return readdirSync(dir)
    .filter((f) => re.test(f))
    .sort()
    .map((f) => join(dir, f))
}

/** @param {string[]} argv @returns {PeerArgs} */
export function parsePeerArgs(argv) {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      output: { type: 'string', short: 'o' },
      from: { type: 'string', default: 'end' },
      list: { type: 'string' },
    },
  })
  if (!values.output) throw new Error('-o OUT is required')
  if (values.from !== 'start' && values.from !== 'end') {
    throw new Error(`--from must be start or end, got ${JSON.stringify(values.from)}`)
  }
  const listed = values.list
    ? readFileSync(values.list, 'utf8')
        .split('\n')
        .filter((l) => l !== '')
    : []
  const inputs = [...listed, ...positionals].flatMap(expandGlob)
  if (inputs.length === 0) throw new Error('no inputs')
  return { output: values.output, from: values.from, inputs }
}

/**
 * The output file (appended to) and a per-input line framer: chunks in, whole lines out, so
 * that lines of different inputs never interleave mid-line.
 * @param {string} path
 */
export function openOutput(path) {
  const out = createWriteStream(path, { flags: 'a' })
  out.on('error', (err) => {
    process.stderr.write(`peer: ${path}: ${err.message}\n`)
    process.exit(4)
  })
  return {
    /** @param {string} line without its newline */
    line: (line) => out.write(`${line}\n`),
    /** @returns {(chunk: Buffer | string) => void} */
    framer: () => {
      let rest = ''
      return (chunk) => {
        const text = rest + (typeof chunk === 'string' ? chunk : chunk.toString('latin1'))
        const end = text.lastIndexOf('\n')
        if (end < 0) {
          rest = text
          return
        }
        rest = text.slice(end + 1)
        out.write(text.slice(0, end + 1), 'latin1')
      }
    },
    /** @returns {Promise<void>} once everything written is in the file */
    end: () => new Promise((resolve) => out.end(resolve)),
  }
}

/**
 * Runs `stop` once on the first SIGTERM or SIGINT, then exits 0 (1 if `stop` threw).
 * @param {() => Promise<void>} stop
 */
export function onStopSignal(stop) {
  let stopping = false
  const handler = () => {
    if (stopping) return
    stopping = true
    stop().then(
      () => process.exit(0),
      (err) => {
        process.stderr.write(`peer: stop failed: ${err instanceof Error ? err.message : err}\n`)
        process.exit(1)
      },
    )
  }
  process.on('SIGTERM', handler)
  process.on('SIGINT', handler)
}
