// @ts-check
/**
 * How many lines copytruncate loses, and whose fault each is.
 *
 *   node bench/copytruncate.mjs [--engine E] [--rotations 20] [--rate 5000]
 *
 * A writer appends sequence-numbered lines at a steady rate while logrotate (copytruncate,
 * every copy kept) rotates the file again and again and logmerge follows it. At the end every
 * written sequence number is looked for on disk (the live file and every copy) and in
 * logmerge's output:
 *   - missing from every file on disk: written between logrotate's copy and its truncate, so
 *     lost by logrotate itself (no tool reading the files can have it);
 *   - on disk but not in the output: lost by logmerge (must be 0);
 *   - in the output twice: duplicated by logmerge (must be 0).
 */
import { execFileSync, spawn } from 'node:child_process'
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { BIN, OUT_DIR } from './lib.mjs'

const { values } = parseArgs({
  options: {
    engine: { type: 'string', default: 'async' },
    rotations: { type: 'string', default: '20' },
    rate: { type: 'string', default: '5000' },
  },
})
const engine = String(values.engine)
const rotations = Number(values.rotations)
const rate = Number(values.rate)
const logrotate =
  ['/usr/sbin/logrotate', '/sbin/logrotate'].find((p) => existsSync(p)) ?? 'logrotate'

const dir = join(OUT_DIR, `copytruncate-${engine}`)
rmSync(dir, { recursive: true, force: true })
mkdirSync(dir, { recursive: true })
const log = join(dir, 'app.log')
const out = join(dir, 'out.log')
writeFileSync(log, '')
writeFileSync(join(dir, 'lr.conf'), `${log} {\n  copytruncate\n  rotate 1000\n  missingok\n}\n`, {
  mode: 0o644,
})

const lm = spawn(BIN, ['--engine', engine, '--from', 'start', '--no-state', log, '-o', out], {
  stdio: 'ignore',
})
await sleep(1000)

// The writer: O_APPEND, one write per line, `rate` lines a second in small bursts.
let seq = 0
let writing = true
const fd = openSync(log, 'a')
const writer = (async () => {
  const started = performance.now()
  while (writing) {
    const due = Math.floor(((performance.now() - started) / 1000) * rate)
    while (seq < due) writeSync(fd, `seq-${seq++}-${'x'.repeat(40)}\n`)
    await sleep(1)
  }
})()
for (let r = 0; r < rotations; r++) {
  await sleep(250)
  execFileSync(logrotate, ['-f', '-s', join(dir, 'lr.state'), join(dir, 'lr.conf')])
}
writing = false
await writer
closeSync(fd)
await sleep(2000)
lm.kill('SIGTERM')
await new Promise((resolve) => lm.once('exit', resolve))

/** @param {string} text */
const seqs = (text) =>
  text
    .split('\n')
    .filter((l) => l.startsWith('seq-'))
    .map((l) => Number(l.split('-')[1]))
const onDisk = new Set(
  readdirSync(dir)
    .filter((n) => n.startsWith('app.log'))
    .flatMap((n) => seqs(readFileSync(join(dir, n), 'latin1'))),
)
const inOutput = new Map()
for (const s of seqs(readFileSync(out, 'latin1'))) inOutput.set(s, (inOutput.get(s) ?? 0) + 1)
let lostByLogrotate = 0
let lostByLogmerge = 0
for (let s = 0; s < seq; s++) {
  if (!onDisk.has(s)) lostByLogrotate++
  else if (!inOutput.has(s)) lostByLogmerge++
}
const duplicated = [...inOutput.values()].filter((n) => n > 1).length
const result = {
  engine,
  rotations,
  ratePerSecond: rate,
  written: seq,
  lostByLogrotate,
  lostByLogmerge,
  duplicated,
}
console.log(JSON.stringify(result))
writeFileSync(
  join(OUT_DIR, `results-copytruncate-${engine}.json`),
  `${JSON.stringify(result, null, 2)}\n`,
)
process.exitCode = lostByLogmerge === 0 && duplicated === 0 ? 0 : 1
