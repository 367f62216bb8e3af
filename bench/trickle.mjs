// @ts-check
/**
 * trickle: a following daemon with many files, a few of which get a line now and then — the
 * host where most logs are quiet. Every such line moves one offset, so a checkpoint follows,
 * and a checkpoint records every file: this measures what that costs.
 *
 *   node bench/trickle.mjs                                  # 10,000 files, 4 lines/s, 20 s
 *   node bench/trickle.mjs --engine threads --runs 2
 *   node bench/trickle.mjs --logmerge /tmp/base --logmerge . # A/B, runs alternate
 *   node bench/trickle.mjs --warm        # every file written to once first (a daemon that has
 *                                        # run a while: every source has stats in the writer)
 *
 * DIR (bench/out/trickle) holds N files of one line each. Each run: logmerge 'DIR/in/*.log' -o
 * DIR/out.log --from end --state DIR/state.json; following once a probe line appended to one
 * file every 50 ms is in the output; 3 s later a window of --seconds in which --rate lines a
 * second go to files picked at random. CPU = utime+stime over the window (% of one core), RSS
 * at its end; every line written must be in the output once (checked after SIGTERM).
 */

import { spawn } from 'node:child_process'
import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { cpuSeconds, readStatus } from './follow/proc.mjs'
import { fmt, gitInfo, markdownTable, OUT_DIR, sleep } from './lib.mjs'

const { values } = parseArgs({
  options: {
    files: { type: 'string', default: '10000' },
    rate: { type: 'string', default: '4' },
    seconds: { type: 'string', default: '20' },
    engine: { type: 'string', default: 'async' },
    runs: { type: 'string', default: '2' },
    warm: { type: 'boolean', default: false },
    logmerge: { type: 'string', multiple: true },
  },
})
const N = Number(values.files)
const RATE = Number(values.rate)
const SECONDS = Number(values.seconds)
const checkouts = (values.logmerge ?? ['.']).map((p) => resolve(p))
const DIR = join(OUT_DIR, 'trickle')
const name = (/** @type {number} */ i) => join(DIR, 'in', `f${String(i).padStart(6, '0')}.log`)

/** One run of the checkout at `root`. @param {string} root */
async function run(root) {
  rmSync(join(DIR, 'state.json'), { force: true })
  writeFileSync(join(DIR, 'out.log'), '')
  const out = join(DIR, 'out.log')
  const args = [`${DIR}/in/*.log`, '-o', out, '--from', 'end', '--state', join(DIR, 'state.json')]
  const child = spawn(
    join(root, 'bin', 'logmerge'),
    [...args, '--engine', values.engine ?? 'async'],
    {
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  )
  const pid = /** @type {number} */ (child.pid)
  const started = Date.now()
  let probes = 0
  while (!readFileSync(out, 'utf8').includes('probe')) {
    if (Date.now() - started > 30_000) throw new Error(`${root}: not following after 30 s`)
    appendFileSync(name(0), `probe ${++probes}\n`)
    await sleep(50)
  }
  const following = (Date.now() - started) / 1000
  if (values.warm) {
    for (let i = 0; i < N; i++) appendFileSync(name(i), `warm ${i}\n`)
    const until = Date.now() + 60_000
    while ((readFileSync(out, 'utf8').match(/^warm /gm) ?? []).length < N) {
      if (Date.now() > until) throw new Error(`${root}: the warm-up lines not all out after 60 s`)
      await sleep(200)
    }
  }
  await sleep(3000)
  const cpu0 = cpuSeconds(pid) ?? 0
  const t0 = performance.now()
  let lines = 0
  while (performance.now() - t0 < SECONDS * 1000) {
    appendFileSync(name(Math.floor(Math.random() * N)), `trickle ${++lines}\n`)
    await sleep(1000 / RATE)
  }
  const cpu = ((cpuSeconds(pid) ?? 0) - cpu0) / ((performance.now() - t0) / 1000)
  const rss = (readStatus(pid).rssKiB ?? 0) / 1024
  await sleep(1000)
  child.kill('SIGTERM')
  const code = await new Promise((r) => child.on('exit', (c, s) => r(c ?? s)))
  const seen = readFileSync(out, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('trickle '))
  const once = new Set(seen).size === seen.length && seen.length === lines
  return { following, lines, cpu: cpu * 100, rss, code, once }
}

mkdirSync(join(DIR, 'in'), { recursive: true })
if (!existsSync(name(N - 1))) {
  rmSync(join(DIR, 'in'), { recursive: true, force: true })
  mkdirSync(join(DIR, 'in'))
  for (let i = 0; i < N; i++) writeFileSync(name(i), `quiet file=${i} one short line\n`)
}
/** @type {string[][]} */
const rows = []
for (let r = 0; r < Number(values.runs); r++) {
  for (const root of checkouts) {
    const m = await run(root)
    const git = gitInfo(root)
    process.stderr.write(`trickle: ${root}: CPU ${fmt(m.cpu, 2)} %, RSS ${fmt(m.rss, 0)} MiB\n`)
    rows.push([
      `${root} (${git.commit})`,
      fmt(m.following, 2),
      String(m.lines),
      fmt(m.cpu, 2),
      fmt(m.rss, 0),
      m.once ? 'yes' : '**NO**',
      String(m.code),
    ])
  }
}
console.log(
  `### trickle: ${N.toLocaleString('en')} files${values.warm ? ', each written to once first' : ''}, ${RATE} lines/s to random ones for ${SECONDS} s (--engine ${values.engine})\n`,
)
console.log(
  markdownTable(
    [
      'logmerge',
      'following after s',
      'lines',
      'CPU % of a core',
      'RSS MiB at the end',
      'every line once',
      'exit',
    ],
    rows,
  ),
)
