// @ts-check
/**
 * Peer: npm `tail` 2.2.6 (https://www.npmjs.com/package/tail) following files into one output,
 * one `new Tail(file)` per input as its README shows (fs.watch a file, read on `change`).
 * `--from start` is its `fromBeginning: true`; the default starts at the end. SIGTERM:
 * `unwatch()` every tail, finish writing, exit 0. Usage: see ./common.mjs.
 */

import { createRequire } from 'node:module'
import { onStopSignal, openOutput, parsePeerArgs } from './common.mjs'

// Loaded by a name TypeScript does not resolve: bench/node_modules is installed only for the
// benchmarks (npm ci --prefix bench), and `npx tsc --noEmit` must pass without it.
const PACKAGE = 'tail'
/** @type {{ Tail: new (file: string, opts: object) => import('node:events').EventEmitter & { unwatch(): void } }} */
const { Tail } = createRequire(import.meta.url)(PACKAGE)

const args = parsePeerArgs(process.argv.slice(2))
const out = openOutput(args.output)
const tails = args.inputs.map((file) => {
  const t = new Tail(file, { fromBeginning: args.from === 'start', encoding: 'latin1' })
  t.on('line', (/** @type {string} */ line) => out.line(line))
  t.on('error', (/** @type {unknown} */ err) => process.stderr.write(`npm tail: ${file}: ${err}\n`))
  return t
})
onStopSignal(async () => {
  for (const t of tails) t.unwatch()
  await out.end()
})
