// @ts-check
/**
 * copytruncate with copies written in place (issue 16, item 2): whether every line comes out
 * exactly once, following and across SIGKILLs.
 *
 *   node bench/copy-in-place.mjs [--engine E] [--writers 4] [--rate 2000] [--every 5000]
 *     [--lines 30000] [--kills 0] [--kill-min-ms 800] [--kill-span-ms 800]
 *     [--checkpoint-interval 1s] [--bin PATH]
 *
 * `--writers` writer processes (test/e2e/copying-writer.mjs) each append `--lines` numbered
 * lines at `--rate` lines/s to their own file and every `--every` lines copy it over `F.1`
 * with fs.copyFileSync (which rewrites an existing F.1 in place, keeping its inode) and
 * truncate it, with no line written in between: every line is on disk in F or F.1 when it is
 * written, and stays there until the next copy overwrites F.1. logmerge (`--bin`, default this
 * checkout's) follows the files from the start with a state file; `--kills` times it is
 * SIGKILLed after a random `--kill-min-ms` + [0, `--kill-span-ms`) ms and started again. At the
 * end the output is compared with what the writers wrote: lines missing, lines written twice,
 * and lines out of order within a writer (a generation after the next one's lines).
 *
 * With kills, a restart reads again what came after the last checkpoint; only the newest copy
 * is kept, so a generation not checkpointed before the next copy overwrites it is gone from
 * disk. Keep `--checkpoint-interval` well below the rotation interval (`--every` / `--rate`).
 */
import { spawn } from 'node:child_process'
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { lineFor } from '../test/e2e/writer-child.mjs'
import { BIN, OUT_DIR, ROOT } from './lib.mjs'

const { values } = parseArgs({
  options: {
    engine: { type: 'string', default: 'async' },
    writers: { type: 'string', default: '4' },
    rate: { type: 'string', default: '2000' },
    every: { type: 'string', default: '5000' },
    lines: { type: 'string', default: '30000' },
    kills: { type: 'string', default: '0' },
    'kill-min-ms': { type: 'string', default: '800' },
    'kill-span-ms': { type: 'string', default: '800' },
    'checkpoint-interval': { type: 'string', default: '1s' },
    bin: { type: 'string', default: BIN },
  },
})
const engine = String(values.engine)
const writers = Number(values.writers)
const lines = Number(values.lines)
const kills = Number(values.kills)
const WRITER = join(ROOT, 'test', 'e2e', 'copying-writer.mjs')

const dir = join(OUT_DIR, `copy-in-place-${engine}`)
rmSync(dir, { recursive: true, force: true })
mkdirSync(dir, { recursive: true })
const names = Array.from({ length: writers }, (_, i) => `w${i}`)
const files = names.map((n) => join(dir, `${n}.log`))
for (const f of files) writeFileSync(f, '')
const out = join(dir, 'out.log')
const argv = [
  ...files,
  ...['-o', out, '--engine', engine, '--from', 'start', '--state', join(dir, 'state.json')],
  ...['--checkpoint-interval', String(values['checkpoint-interval']), '--log-level', 'info'],
]

let stderr = ''
/** Starts logmerge; resolves once it says it is ready. */
async function start() {
  const lm = spawn(String(values.bin), argv, { stdio: ['ignore', 'ignore', 'pipe'] })
  const closed = new Promise((resolve) => lm.on('close', resolve))
  let said = ''
  lm.stderr.on('data', (b) => {
    said += b
    stderr += b
  })
  while (!said.includes('ready')) {
    if (lm.exitCode !== null) throw new Error(`logmerge exited at start:\n${said}`)
    await sleep(20)
  }
  return { lm, closed }
}

let run = await start()
const children = names.map((n, i) =>
  spawn(
    process.execPath,
    [WRITER, String(files[i]), n, String(lines), String(values.rate), String(values.every)],
    { stdio: 'inherit' },
  ),
)
const written = Promise.all(children.map((c) => new Promise((resolve) => c.on('close', resolve))))
for (let k = 0; k < kills; k++) {
  await sleep(Number(values['kill-min-ms']) + Math.random() * Number(values['kill-span-ms']))
  run.lm.kill('SIGKILL')
  await run.closed
  run = await start()
}
await written
const all = names.flatMap((n) => Array.from({ length: lines }, (_, seq) => lineFor(n, seq)))
const outputLines = () => readFileSync(out, 'latin1').split('\n').slice(0, -1)
for (let waited = 0; waited < 30_000 && outputLines().length < all.length; waited += 100)
  await sleep(100)
await sleep(500) // anything more (a line twice) arrives too
run.lm.kill('SIGTERM')
await run.closed
writeFileSync(join(dir, 'stderr.txt'), stderr)

const output = outputLines()
const seen = new Map()
for (const l of output) seen.set(l, (seen.get(l) ?? 0) + 1)
const missing = all.filter((l) => !seen.has(l)).length
const doubled = [...seen.values()].filter((n) => n > 1).length
let late = 0
const newest = new Map()
for (const l of output) {
  const [w, seq] = l.split('-')
  if ((newest.get(w) ?? -1) > Number(seq)) late++
  newest.set(w, Math.max(newest.get(w) ?? -1, Number(seq)))
}
const rotations = Math.floor((lines - 1) / Number(values.every)) * writers
console.log(
  `${engine}: ${writers} writers x ${lines} lines at ${values.rate}/s, ${rotations} in-place copies, ${kills} SIGKILLs: ${output.length} lines out of ${all.length}; missing ${missing}, doubled ${doubled}, out of order ${late}`,
)
process.exitCode = missing + doubled > 0 ? 1 : 0
