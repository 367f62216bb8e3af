// @ts-check
/**
 * checkpoint: what keeping a state file costs `logmerge --once` catching up over big files,
 * per engine, in one run (issue 4's target: under 5 % of catch-up throughput).
 *
 * Variants per engine, interleaved round by round (order rotated so none always runs first):
 *   no state      bin/logmerge --once --no-state f1..f4 -o out, then fsync(out) (timed)
 *   state 1s      bin/logmerge --once --state S f1..f4 -o out          (the default interval)
 *   state 100ms   the same with --checkpoint-interval 100ms            (ten times as often)
 * A run with a state fsyncs its output before the final checkpoint; the baseline is given the
 * same fsync so that both pay the disk's writeback and only the checkpoints differ.
 *
 * By default inputs, output and state live on tmpfs (/dev/shm): there fsync is free and what is
 * measured is logmerge's own work. `--dir PATH` puts them elsewhere (a disk).
 */

import { execFileSync } from 'node:child_process'
import { closeSync, copyFileSync, fsyncSync, mkdirSync, openSync, rmSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { ensureInputs } from './catchup.mjs'
import { BIN, fmt, MiB, markdownTable, runMeasured } from './lib.mjs'

const TARGET = 0.05

/**
 * @typedef {object} Variant
 * @property {string} name
 * @property {string} engine
 * @property {(out: string, state: string) => Promise<number>} run  wall ms; throws on failure
 */

/**
 * @param {string[]} paths
 * @param {string} engine
 * @param {string[]} extra
 * @returns {Variant[]}
 */
function variants(paths, engine, extra) {
  /** @param {string[]} args */
  const logmerge = async (args) => {
    const r = await runMeasured(BIN, ['--once', '--engine', engine, ...extra, ...args])
    if (r.code !== 0) throw new Error(`logmerge ${args.join(' ')} exited ${r.code}: ${r.stderr}`)
    return r.wallMs
  }
  return [
    {
      name: 'no state',
      engine,
      run: async (out) => {
        const t0 = performance.now()
        await logmerge(['--no-state', ...paths, '-o', out])
        const fd = openSync(out, 'r+')
        try {
          fsyncSync(fd)
        } finally {
          closeSync(fd)
        }
        return performance.now() - t0
      },
    },
    {
      name: 'state 1s',
      engine,
      run: (out, state) => logmerge(['--state', state, ...paths, '-o', out]),
    },
    {
      name: 'state 100ms',
      engine,
      run: (out, state) =>
        logmerge(['--state', state, '--checkpoint-interval', '100ms', ...paths, '-o', out]),
    },
  ]
}

/** @param {number[]} xs @returns {number} */
function median(xs) {
  const s = [...xs].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 === 1
    ? /** @type {number} */ (s[mid])
    : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2
}

/**
 * @param {{ engines: string[], quick: boolean, runs: number, bytesEach?: number | undefined, extraArgs?: string[], dir?: string | undefined }} opts
 */
export async function checkpoint(opts) {
  const bytesEach = opts.bytesEach ?? (opts.quick ? 8 * MiB : 128 * MiB)
  const inputs = await ensureInputs(bytesEach)
  const dir = opts.dir ?? join('/dev/shm', `logmerge-checkpoint-bench-${process.pid}`)
  mkdirSync(dir, { recursive: true })
  const totalBytes = inputs.reduce((s, f) => s + f.bytes, 0)
  try {
    const paths = inputs.map((f) => {
      const to = join(dir, `${f.format}.log`)
      copyFileSync(f.path, to)
      return to
    })
    const out = join(dir, 'out.log')
    const state = join(dir, 'state.json')
    const list = opts.engines.flatMap((e) => variants(paths, e, opts.extraArgs ?? []))
    /** @type {Map<Variant, number[]>} */
    const times = new Map(list.map((v) => [v, []]))
    // Round 0 warms up (tmpfs pages for the output, the page cache, the build) and is not kept.
    for (let round = 0; round <= opts.runs; round++) {
      for (let i = 0; i < list.length; i++) {
        const v = /** @type {Variant} */ (list[(i + round) % list.length])
        rmSync(out, { force: true })
        rmSync(state, { force: true })
        const ms = await v.run(out, state)
        const size = statSync(out).size
        if (size !== totalBytes)
          throw new Error(`${v.engine} ${v.name}: output ${size} B != ${totalBytes} B`)
        if (round > 0) times.get(v)?.push(ms)
        process.stderr.write(
          `checkpoint: round ${round}/${opts.runs} ${v.engine} ${v.name}: ${(ms / 1000).toFixed(3)} s\n`,
        )
      }
    }
    const rows = list.map((v) => {
      const ms = times.get(v) ?? []
      const base = list.find((b) => b.engine === v.engine && b.name === 'no state')
      const baseMs = times.get(/** @type {Variant} */ (base)) ?? []
      return {
        engine: v.engine,
        name: v.name,
        bestMs: Math.min(...ms),
        medianMs: median(ms),
        costBest: Math.min(...ms) / Math.min(...baseMs) - 1,
        costMedian: median(ms) / median(baseMs) - 1,
        // Each round's run against the same round's baseline, so drift in the machine's load
        // between rounds cancels out; the median of those ratios is the figure the target uses.
        costPaired: median(ms.map((m, r) => m / (baseMs[r] ?? Number.NaN))) - 1,
        runsMs: ms,
      }
    })
    const fs = execFileSync('findmnt', ['-n', '-o', 'FSTYPE', '-T', dir], {
      encoding: 'utf8',
    }).split('\n')[0]
    const table = markdownTable(
      [
        'engine',
        'variant',
        'best s',
        'median s',
        'MiB/s (best)',
        'cost (best)',
        'cost (median)',
        'cost (paired)',
        'runs s',
      ],
      rows.map((r) => [
        r.engine,
        r.name,
        fmt(r.bestMs / 1000, 3),
        fmt(r.medianMs / 1000, 3),
        fmt(totalBytes / MiB / (r.bestMs / 1000), 0),
        r.name === 'no state' ? '-' : `${fmt(r.costBest * 100, 1)}%`,
        r.name === 'no state' ? '-' : `${fmt(r.costMedian * 100, 1)}%`,
        r.name === 'no state' ? '-' : `${fmt(r.costPaired * 100, 1)}%`,
        r.runsMs.map((ms) => (ms / 1000).toFixed(2)).join(', '),
      ]),
    )
    const verdicts = rows
      .filter((r) => r.name === 'state 1s')
      .map(
        (r) =>
          `- ${r.engine}: a state at the default interval costs ${fmt(r.costPaired * 100, 1)}% (median of the rounds' ratios; of the medians ${fmt(r.costMedian * 100, 1)}%, of the bests ${fmt(r.costBest * 100, 1)}%): target (< ${TARGET * 100}%) ${r.costPaired < TARGET ? 'met' : 'NOT met'}`,
      )
    const markdown = [
      `### checkpoint: ${inputs.length} files x ${(bytesEach / MiB).toFixed(0)} MiB in ${dir} (${fs}); ${opts.runs} interleaved rounds`,
      '',
      'cost = wall time with a state / wall time of the same engine without one (+ fsync of the output) - 1; paired: the median over rounds of that ratio within one round. Round 0 (warm-up) is not counted.',
      '',
      table,
      '',
      ...verdicts,
    ].join('\n')
    return {
      markdown,
      json: { name: 'checkpoint', dir, bytesEach, totalBytes, runs: opts.runs, rows },
    }
  } finally {
    if (opts.dir === undefined) rmSync(dir, { recursive: true, force: true })
  }
}
