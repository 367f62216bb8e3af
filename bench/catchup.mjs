// @ts-check
/**
 * catchup: how fast `logmerge --once` merges big files that are already there, against `cat`
 * of the same files to a file on the same disk. Interleaved rounds, best of N.
 *
 * Rows per round (order rotated each round so no variant always runs first):
 *   cat          cat f1 f2 f3 f4 > out                         (the target's yardstick)
 *   cat+fsync    the same, then fsync(out) (logmerge fsyncs its output file on exit)
 *   logmerge     bin/logmerge --once --engine E f1..f4 -o out  (what the target is about)
 *   logmerge>    bin/logmerge --once --engine E f1..f4 > out   (stdout: the writer skips fsync)
 * The output file is deleted and `sync` run between runs (not timed). Inputs are read through
 * the page cache (a warm-up `cat > /dev/null` runs first): this measures the CPU and syscall
 * path, not the disk.
 */

import { spawnSync } from 'node:child_process'
import {
  closeSync,
  createReadStream,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
} from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { writeLogFile } from '../fixtures/generate.mjs'
import { BIN, fmt, MiB, markdownTable, OUT_DIR, ROOT, rssMethod, runMeasured } from './lib.mjs'

/** @typedef {import('../fixtures/generate.mjs').LogFormat} LogFormat */

/** The four inputs: one per format, each with its own fixed seed. */
const INPUTS = /** @type {const} */ ([
  { format: 'app', seed: 101 },
  { format: 'syslog', seed: 102 },
  { format: 'nginx', seed: 103 },
  { format: 'json', seed: 104 },
])
export const FULL_BYTES = 128 * MiB
export const QUICK_BYTES = 8 * MiB
/** The issue's target: logmerge at least this fraction of cat's rate. */
export const TARGET_RATIO = 0.5

/**
 * @typedef {object} InputFile
 * @property {LogFormat} format
 * @property {number} seed
 * @property {number} requestedBytes
 * @property {string} path
 * @property {number} bytes
 * @property {number} lines
 */

/**
 * Generates the inputs under bench/out/catchup-<size>/, or reuses them when the manifest says
 * they were made with the same format, seed and size and the files still have that size.
 * @param {number} bytesEach
 * @returns {Promise<InputFile[]>}
 */
export async function ensureInputs(bytesEach) {
  const dir = join(OUT_DIR, `catchup-${bytesEach}`)
  const manifestPath = join(dir, 'manifest.json')
  mkdirSync(dir, { recursive: true })
  /** @type {InputFile[]} */
  let old = []
  try {
    old = JSON.parse(readFileSync(manifestPath, 'utf8'))
  } catch {}
  /** @type {InputFile[]} */
  const files = []
  let changed = false
  for (const { format, seed } of INPUTS) {
    const path = join(dir, `${format}.log`)
    const had = old.find(
      (f) => f.format === format && f.seed === seed && f.requestedBytes === bytesEach,
    )
    const size = statSync(path, { throwIfNoEntry: false })?.size
    if (had && size === had.bytes) {
      files.push({ ...had, path })
      continue
    }
    const t0 = performance.now()
    const r = await writeLogFile(path, { format, seed, bytes: bytesEach })
    process.stderr.write(
      `catchup: generated ${relative(ROOT, path)} (${(r.bytes / MiB).toFixed(1)} MiB, ${r.lines} lines) in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`,
    )
    files.push({ format, seed, requestedBytes: bytesEach, path, bytes: r.bytes, lines: r.lines })
    changed = true
  }
  if (changed) await writeFile(manifestPath, `${JSON.stringify(files, null, 2)}\n`)
  return files
}

/** @param {string} path @returns {Promise<number>} newline bytes in the file */
async function countNewlines(path) {
  let n = 0
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * MiB })) {
    const buf = /** @type {Buffer} */ (chunk)
    let at = buf.indexOf(10)
    while (at >= 0) {
      n++
      at = buf.indexOf(10, at + 1)
    }
  }
  return n
}

/**
 * @typedef {object} Variant
 * @property {string} name      cat | cat+fsync | logmerge | logmerge+state | logmerge>
 * @property {string | null} engine
 * @property {string} command   as a user would type it (paths relative to the repo)
 * @property {(out: string) => Promise<import('./lib.mjs').Measured>} run
 */

/**
 * @typedef {object} Run
 * @property {number} round
 * @property {number} wallMs
 * @property {number | null} peakRssKiB
 * @property {number | null} code
 * @property {number} outBytes
 * @property {number} outLines
 * @property {string} stderr
 */

/**
 * @param {InputFile[]} inputs
 * @param {string[]} engines
 * @param {string[]} extra  more logmerge arguments
 * @returns {Variant[]}
 */
function variants(inputs, engines, extra) {
  const paths = inputs.map((f) => f.path)
  const shown = paths.map((p) => relative(ROOT, p)).join(' ')
  /** @param {string} out @param {boolean} fsync */
  const cat = async (out, fsync) => {
    const fd = openSync(out, 'w')
    try {
      const t0 = performance.now()
      const r = await runMeasured('cat', paths, { stdout: fd })
      if (fsync) fsyncSync(fd)
      return { ...r, wallMs: performance.now() - t0 }
    } finally {
      closeSync(fd)
    }
  }
  /** @type {Variant[]} */
  const list = [
    {
      name: 'cat',
      engine: null,
      command: `cat ${shown} > out`,
      run: (out) => cat(out, false),
    },
    {
      name: 'cat+fsync',
      engine: null,
      command: `cat ${shown} > out; fsync(out)`,
      run: (out) => cat(out, true),
    },
  ]
  const more = extra.length > 0 ? ` ${extra.join(' ')}` : ''
  for (const engine of engines) {
    list.push({
      name: 'logmerge',
      engine,
      command: `bin/logmerge --once --engine ${engine}${more} ${shown} -o out`,
      run: (out) => runMeasured(BIN, ['--once', '--engine', engine, ...extra, ...paths, '-o', out]),
    })
    // Checkpointing's cost: the same run keeping a state file, checkpointing every 100 ms (ten
    // times the default rate). The state is removed first, or the run would resume at the end.
    const state = join(OUT_DIR, 'catchup.state.json')
    list.push({
      name: 'logmerge+state',
      engine,
      command: `bin/logmerge --once --engine ${engine}${more} --state STATE --checkpoint-interval 100 ${shown} -o out`,
      run: (out) => {
        rmSync(state, { force: true })
        const args = ['--once', '--engine', engine, ...extra, '--state', state]
        return runMeasured(BIN, [...args, '--checkpoint-interval', '100', ...paths, '-o', out])
      },
    })
    list.push({
      name: 'logmerge>',
      engine,
      command: `bin/logmerge --once --engine ${engine}${more} ${shown} > out`,
      run: async (out) => {
        const fd = openSync(out, 'w')
        try {
          return await runMeasured(BIN, ['--once', '--engine', engine, ...extra, ...paths], {
            stdout: fd,
          })
        } finally {
          closeSync(fd)
        }
      },
    })
  }
  return list
}

/**
 * @param {{ engines: string[], quick: boolean, runs: number, bytesEach?: number | undefined, extraArgs?: string[] }} opts
 */
export async function catchup(opts) {
  const bytesEach = opts.bytesEach ?? (opts.quick ? QUICK_BYTES : FULL_BYTES)
  const inputs = await ensureInputs(bytesEach)
  const totalBytes = inputs.reduce((s, f) => s + f.bytes, 0)
  const totalLines = inputs.reduce((s, f) => s + f.lines, 0)
  const out = join(OUT_DIR, 'catchup.out')
  const list = variants(inputs, opts.engines, opts.extraArgs ?? [])
  /** @type {Map<Variant, Run[]>} */
  const runs = new Map(list.map((v) => [v, []]))

  // Warm the page cache so every variant reads the inputs from memory.
  spawnSync('sh', ['-c', `cat "$@" > /dev/null`, 'sh', ...inputs.map((f) => f.path)])
  for (let round = 0; round < opts.runs; round++) {
    const order = list.map((_, i) => list[(i + round) % list.length])
    for (const v of order) {
      if (!v) continue
      rmSync(out, { force: true })
      spawnSync('sync')
      const r = await v.run(out)
      const outBytes = statSync(out, { throwIfNoEntry: false })?.size ?? 0
      const outLines = outBytes > 0 ? await countNewlines(out) : 0
      const label = v.engine ? `${v.name} (${v.engine})` : v.name
      process.stderr.write(
        `catchup: round ${round + 1}/${opts.runs} ${label}: ${(r.wallMs / 1000).toFixed(3)} s${
          r.code === 0 ? '' : ` exit ${r.code ?? r.signal}`
        }${outBytes === totalBytes ? '' : ` output ${outBytes} B != input ${totalBytes} B`}\n`,
      )
      runs.get(v)?.push({
        round: round + 1,
        wallMs: r.wallMs,
        peakRssKiB: r.peakRssKiB,
        code: r.code,
        outBytes,
        outLines,
        stderr: r.stderr.slice(0, 2000),
      })
    }
  }
  rmSync(out, { force: true })

  const rows = list.map((v) => {
    const rs = runs.get(v) ?? []
    const ok = rs.filter((r) => r.code === 0)
    const best = ok.length > 0 ? Math.min(...ok.map((r) => r.wallMs)) : Number.NaN
    const rss = rs.map((r) => r.peakRssKiB ?? 0)
    return {
      name: v.name,
      engine: v.engine,
      command: v.command,
      bestMs: best,
      mibPerSec: totalBytes / MiB / (best / 1000),
      peakRssMiB: rss.length > 0 ? Math.max(...rss) / 1024 : null,
      bytesOk: rs.every((r) => r.outBytes === totalBytes),
      linesOk: rs.every((r) => r.outLines === totalLines),
      exitOk: rs.every((r) => r.code === 0),
      runsMs: rs.map((r) => r.wallMs),
      runs: rs,
    }
  })
  const rateOf = (/** @type {string} */ name) =>
    rows.find((r) => r.name === name)?.mibPerSec ?? Number.NaN
  const catRate = rateOf('cat')
  const catFsyncRate = rateOf('cat+fsync')
  const results = rows.map((r) => ({
    ...r,
    vsCat: r.mibPerSec / catRate,
    vsCatFsync: r.mibPerSec / catFsyncRate,
    targetMet: r.name === 'logmerge' ? r.mibPerSec / catRate >= TARGET_RATIO : null,
  }))

  const table = markdownTable(
    [
      'variant',
      'engine',
      'best s',
      'MiB/s',
      'vs cat',
      'vs cat+fsync',
      'peak RSS MiB',
      'output = input',
      'runs s',
    ],
    results.map((r) => [
      r.name === 'logmerge>' ? 'logmerge > file' : r.name,
      r.engine ?? '-',
      fmt(r.bestMs / 1000, 3),
      fmt(r.mibPerSec, 0),
      `${fmt(r.vsCat * 100, 0)}%`,
      `${fmt(r.vsCatFsync * 100, 0)}%`,
      fmt(r.peakRssMiB, 0),
      r.bytesOk && r.linesOk && r.exitOk
        ? 'yes'
        : `NO (bytes ${r.bytesOk ? 'ok' : 'differ'}, lines ${r.linesOk ? 'ok' : 'differ'}, exit ${r.exitOk ? 'ok' : 'non-zero'})`,
      r.runsMs.map((ms) => (ms / 1000).toFixed(2)).join(', '),
    ]),
  )
  const verdicts = results
    .filter((r) => r.name === 'logmerge')
    .map(
      (r) =>
        `- ${r.engine}: ${fmt(r.vsCat * 100, 0)}% of cat's rate: target (>= ${TARGET_RATIO * 100}%) ${
          r.targetMet ? 'met' : 'NOT met'
        }`,
    )
  // Checkpointing's cost: the state variant against the plain one of the same engine.
  for (const r of results.filter((x) => x.name === 'logmerge+state')) {
    const plain = results.find((x) => x.name === 'logmerge' && x.engine === r.engine)
    if (!plain) continue
    const cost = 1 - r.mibPerSec / plain.mibPerSec
    verdicts.push(
      `- ${r.engine}: checkpointing every 100 ms costs ${fmt(cost * 100, 1)}% of catch-up throughput: target (< 5%) ${cost < 0.05 ? 'met' : 'NOT met'}`,
    )
  }
  const markdown = [
    `### catchup: ${inputs.length} files x ${(bytesEach / MiB).toFixed(0)} MiB = ${(totalBytes / MiB).toFixed(1)} MiB, ${totalLines} lines; best of ${opts.runs}`,
    '',
    'MiB/s = input bytes / 2^20 / wall seconds (spawn to exit, so node start-up is included).',
    `Peak RSS: ${rssMethod() === 'gnu-time' ? '/usr/bin/time -f %M' : 'sampled VmHWM from /proc (a lower bound)'}.`,
    '',
    table,
    '',
    ...verdicts,
    '',
    'Commands (`out` is bench/out/catchup.out, deleted and `sync`ed before every run):',
    '',
    ...results.map((r) => `    ${r.command}`),
  ].join('\n')
  return {
    markdown,
    json: {
      name: 'catchup',
      bytesEach,
      totalBytes,
      totalLines,
      runsPerVariant: opts.runs,
      targetRatio: TARGET_RATIO,
      rssMethod: rssMethod(),
      inputs: inputs.map((f) => ({ ...f, path: relative(ROOT, f.path) })),
      results,
    },
  }
}
