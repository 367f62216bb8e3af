// @ts-check
/**
 * follow: the daemon's follow path at scale (issue 15), every engine beside its peers in one
 * run. Peers, where installed: GNU `tail -F` (coreutils), rsyslogd's imfile in inotify mode,
 * npm `tail` 2.2.6 and npm `@logdna/tail-file` 4.0.2, each following the same files into one
 * output file. Every figure of a logmerge row is also given as a ratio to the best peer that
 * did the case correctly.
 *
 * Sub-benchmarks (each in its own file under bench/follow/, whose header says exactly what is
 * measured and how; each is bounded in time):
 *   burst      N idle files (1,000 and 10,000; glob or paths; empty or one line each), one line
 *              appended to each: time until all are in the output, lines out at 0.2 s ... 60 s;
 *              at the largest N a second burst and SIGTERM right after: exit, time, exactly once
 *   idle       10,000 idle files: time until following (probe rule), CPU % of a core over a
 *              20 s window, RSS, threads, fds; then 2,000 files under `ulimit -n 1024`: the
 *              delivery time of appends to files the follower holds no fd for (parked)
 *   cpu        8 writers at full speed, one ~100-byte line per write(2), 10 s: CPU-s per
 *              million lines, lines/s, exactly once and in order per writer
 *   rotation   4 writers x 2,000 lines/s for 15 s, mv-rotation every 5,000 lines: CPU-s,
 *              exactly once and in order
 *   latency    one writer at 100 lines/s for 40 s: append-to-output p50/p99/max (with a state
 *              file) over the first 10 s (just started) and the last 10 s (following 30 s)
 *   catchup    a daemon `--from start` on 4 x 128 MiB (state file, following): MiB/s until the
 *              output holds everything, beside `tail -F -n +1` and `cat` (the ceiling)
 *
 * How to run (build first: `npm run build`; the npm peers once: `npm ci --prefix bench`,
 * which installs bench/package.json's exact versions into bench/node_modules; rsyslogd and
 * GNU tail come from Debian's rsyslog and coreutils; prlimit from util-linux):
 *
 *   node bench/run.mjs follow                        # everything: every engine, every peer
 *   node bench/run.mjs follow --quick                # N = 100/500, short windows: a smoke test
 *   node bench/run.mjs follow --quick --peers none   # the smoke test without the peers
 *   node bench/run.mjs follow --only burst,idle --engine async --engine threads
 *   node bench/run.mjs follow --only cpu --engine none --peers tail,rsyslog    # peers alone
 *   node bench/run.mjs follow --only burst --engine async --peers none --logmerge /work/main
 *        # A/B in one run: this checkout is A, each --logmerge DIR (its own built dist/) is
 *        # B, C...; rows "async A", "async B"
 *   node bench/run.mjs follow --only burst --files 2000 --keep   # other N; keep the files
 *   node bench/run.mjs follow --dir /dev/shm/lm                   # cases on a tmpfs
 *
 * How long: a full run of every engine is long (burst alone about 40 min at today's speed,
 * because each logmerge case at 10,000 files runs into the 60 s cap and the 15 s SIGKILL
 * grace); --quick took 8 min with every engine and peer, 3.7 min with --peers none, on a
 * machine with a load average of 10-14 on 2 cores. Use --only and --engine to narrow.
 *
 * Markdown on stdout (progress on stderr); JSON in bench/out/results-follow.json and one
 * bench/out/results-follow-<sub>.json per sub-benchmark. Case files live in
 * bench/out/follow/<case>/ (DIR/follow/<case>/ with --dir) while a case runs and are removed
 * after it (unless --keep).
 * The machine has to be quiet for the figures to mean anything: the load average and the CPU
 * pressure (/proc/pressure/cpu) before and after each sub-benchmark are printed beside it.
 */

import { spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { join, resolve } from 'node:path'
import { burst } from './follow/burst.mjs'
import { catchup } from './follow/catchup.mjs'
import { cpu } from './follow/cpu.mjs'
import { idle } from './follow/idle.mjs'
import { latency } from './follow/latency.mjs'
import { hardNofile, nofileLimit } from './follow/proc.mjs'
import { RATIO_NOTE } from './follow/report.mjs'
import { rotation } from './follow/rotation.mjs'
import { describeBuild, makeSubjects, PEERS } from './follow/subjects.mjs'
import { machineInfo, markdownTable, OUT_DIR, ROOT, writeResults } from './lib.mjs'

/** @typedef {import('./follow/context.mjs').FollowContext} FollowContext */

/** @type {Record<string, (ctx: FollowContext) => Promise<{ markdown: string, json: object }>>} */
export const FOLLOW_BENCHMARKS = {
  burst,
  idle,
  cpu,
  rotation,
  latency,
  catchup,
}

/**
 * @param {string | undefined} text
 * @returns {import('./follow/subjects.mjs').PeerName[]}
 */
export function parsePeers(text) {
  if (text === undefined || text === 'all') return [...PEERS]
  if (text === 'none') return []
  const names = text.split(',').filter((x) => x !== '')
  for (const n of names) {
    if (!PEERS.includes(/** @type {any} */ (n))) {
      throw new RangeError(
        `--peers: unknown peer ${JSON.stringify(n)}; expected ${PEERS.join(', ')}, all or none`,
      )
    }
  }
  return /** @type {import('./follow/subjects.mjs').PeerName[]} */ (names)
}

/**
 * @param {string | undefined} text
 * @returns {string[]}
 */
export function parseOnly(text) {
  if (text === undefined) return Object.keys(FOLLOW_BENCHMARKS)
  const names = text.split(',').filter((x) => x !== '')
  for (const n of names) {
    if (!Object.hasOwn(FOLLOW_BENCHMARKS, n)) {
      throw new RangeError(
        `--only: unknown sub-benchmark ${JSON.stringify(n)}; expected ${Object.keys(FOLLOW_BENCHMARKS).join(', ')}`,
      )
    }
  }
  return names
}

/** @returns {string} the load averages and the CPU pressure (PSI "some" avg10, avg60) */
const load = () => {
  let psi = ''
  try {
    const m = /^some avg10=(\S+) avg60=(\S+)/m.exec(readFileSync('/proc/pressure/cpu', 'utf8'))
    if (m) psi = `; CPU pressure ${m[1]} % / ${m[2]} %`
  } catch {}
  return `${loadavg()
    .map((x) => x.toFixed(2))
    .join(', ')}${psi}`
}

/**
 * @param {{ engines: string[], quick: boolean, extraArgs: string[], only?: string | undefined, logmerge?: string[] | undefined, peers?: string | undefined, files?: number[] | undefined, keep?: boolean | undefined, dir?: string | undefined, bytesEach?: number | undefined }} opts
 */
export async function follow(opts) {
  const only = parseOnly(opts.only)
  if (spawnSync('prlimit', ['--version']).status !== 0) {
    throw new Error("prlimit (util-linux) is needed to set the followers' open-file limits")
  }
  const peers = parsePeers(opts.peers)
  const builds = [ROOT, ...(opts.logmerge ?? []).map((d) => resolve(d))].map((root, i) =>
    describeBuild(root, String.fromCharCode(65 + i)),
  )
  const subjects = makeSubjects({ engines: opts.engines, builds, peers, extraArgs: opts.extraArgs })
  const root = join(opts.dir ?? OUT_DIR, 'follow')
  mkdirSync(root, { recursive: true })
  /** @type {FollowContext} */
  const ctx = {
    subjects,
    quick: opts.quick,
    files: opts.files,
    bytesEach: opts.bytesEach,
    root,
    nofile: hardNofile(),
    keep: opts.keep ?? false,
    probe: opts.quick
      ? { capMs: 20_000, graceMs: 2000, spanMs: 1000 }
      : { capMs: 60_000, graceMs: 5000, spanMs: 2000 },
    log: (msg) => process.stderr.write(`follow: ${msg}\n`),
  }
  const machine = machineInfo()
  const header = [
    `### follow: the daemon's follow path${opts.quick ? ' (--quick)' : ''}`,
    '',
    markdownTable(
      ['subject', 'what', 'runs here'],
      subjects.map((s) => [s.id, s.describe, s.unavailable ? `**no: ${s.unavailable}**` : 'yes']),
    ),
    '',
    `Builds: ${builds.map((b) => `${b.label} = ${b.root} (${b.commit}${b.dirty.length > 0 ? `, uncommitted ${b.dirty.join(' ')}` : ''}, dist ${b.dist})`).join('; ')}.`,
    RATIO_NOTE,
    `Followers run with an open-file limit of ${ctx.nofile} (soft = hard, via prlimit) unless a case says otherwise; the bench's own limit is ${nofileLimit('self')}.`,
  ].join('\n')
  /** @type {string[]} */
  const parts = [header]
  /** @type {Record<string, object>} */
  const json = {}
  for (const name of only) {
    const bench =
      /** @type {(ctx: FollowContext) => Promise<{ markdown: string, json: object }>} */ (
        FOLLOW_BENCHMARKS[name]
      )
    const before = load()
    const t0 = performance.now()
    const r = await bench(ctx)
    const section = {
      ...r.json,
      loadBefore: before,
      loadAfter: load(),
      wallSeconds: Math.round((performance.now() - t0) / 1000),
    }
    json[name] = section
    await writeResults(`follow-${name}`, {
      machine,
      builds,
      subjects: subjects.map((s) => ({
        id: s.id,
        describe: s.describe,
        unavailable: s.unavailable,
      })),
      quick: opts.quick,
      ...section,
    })
    parts.push(
      `${r.markdown}\n\n(load average before ${before}; after ${section.loadAfter}; ${section.wallSeconds} s. CPU pressure: the share of time runnable tasks waited for a CPU, 10 s / 60 s averages: above a few % the machine is shared and the figures are noisy)`,
    )
  }
  return {
    markdown: parts.join('\n\n'),
    json: {
      name: 'follow',
      builds,
      subjects: subjects.map((s) => ({
        id: s.id,
        describe: s.describe,
        unavailable: s.unavailable,
      })),
      nofile: ctx.nofile,
      sections: json,
    },
  }
}
