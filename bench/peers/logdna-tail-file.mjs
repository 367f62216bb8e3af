// @ts-check
/**
 * Peer: npm `@logdna/tail-file` 4.0.2 (https://www.npmjs.com/package/@logdna/tail-file)
 * following files into one output, one `TailFile` per input with its defaults (it polls each
 * file's size once a second and keeps a FileHandle open per file). `--from start` is
 * `startPos: 0`; the default starts at the end. SIGTERM: `quit()` every tail (it reads what
 * is left), finish writing, exit 0. Usage: see ./common.mjs.
 */

import { createRequire } from 'node:module'
import { onStopSignal, openOutput, parsePeerArgs } from './common.mjs'

/**
 * The part of its API used here (its own index.d.ts is not reachable: see npm-tail.mjs).
 * @typedef {import('node:stream').Readable & { start(): Promise<void>, quit(): Promise<void> }} TailFileStream
 */
const PACKAGE = '@logdna/tail-file'
/** @type {new (file: string, opts: { startPos?: number }) => TailFileStream} */
const TailFile = createRequire(import.meta.url)(PACKAGE)

const args = parsePeerArgs(process.argv.slice(2))
const out = openOutput(args.output)
const tails = args.inputs.map((file) => {
  const t = new TailFile(file, args.from === 'start' ? { startPos: 0 } : {})
  t.on('data', out.framer())
  t.on('tail_error', (/** @type {Error} */ err) =>
    process.stderr.write(`@logdna/tail-file: ${file}: ${err.message}\n`),
  )
  return t
})
onStopSignal(async () => {
  await Promise.all(tails.map((t) => t.quit()))
  await out.end()
})
await Promise.all(
  tails.map((t, i) =>
    t.start().catch((/** @type {Error} */ err) => {
      process.stderr.write(`@logdna/tail-file: ${args.inputs[i]}: cannot start: ${err.message}\n`)
      process.exitCode = 3
    }),
  ),
)
