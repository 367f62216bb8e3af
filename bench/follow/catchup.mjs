// @ts-check
/**
 * catchup: a daemon started on logs that are already there (or after downtime) catching up
 * while following. 4 files of 128 MiB (8 MiB with --quick, --size each; ../catchup.mjs's generated inputs
 * under bench/out/catchup-<bytes>/, made once and reused) are followed from their start:
 * logmerge `--from start` with its state file (the default, beside the output), not --once;
 * `tail -q -n +1 -F f1 f2 f3 f4 >> out`; rsyslog imfile with freshStartTail off; the npm
 * peers from position 0. Time from spawn until the output's size reaches the inputs' total
 * (polled every 5 ms; at most 120 s, 30 s with --quick); MiB/s = total / that time. `cat f1
 * f2 f3 f4 > out` (spawn to exit) is the ceiling. The inputs are read once with cat first
 * (page cache warm for everyone); the output is removed and `sync` runs after each subject.
 * The follower's CPU-s to that point is given too. An output larger than the inputs
 * (duplicates) or never reaching their size marks the row.
 */

import { spawn, spawnSync } from 'node:child_process'
import { closeSync, existsSync, openSync, rmSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { ensureInputs, FULL_BYTES, QUICK_BYTES } from '../catchup.mjs'
import { fmt, MiB, markdownTable, sleep } from '../lib.mjs'
import { caseDir } from './context.mjs'
import { sizeOf } from './output.mjs'
import { cpuSeconds, readStatus } from './proc.mjs'
import { bestNote, bestPeer, cell, excerpt } from './report.mjs'

/**
 * @param {import('./context.mjs').FollowContext} ctx
 * @param {import('./subjects.mjs').Subject} subject
 * @param {string[]} inputs absolute @param {number} total
 */
async function catchupCase(ctx, subject, inputs, total) {
  const { dir, done } = caseDir(ctx, 'catchup')
  const out = join(dir, 'out.log')
  writeFileSync(out, '')
  const capMs = ctx.quick ? 30_000 : 120_000
  const base = { subject: subject.id, kind: subject.kind }
  /** @type {import('./launch.mjs').Running | undefined} */
  let running
  try {
    const t0 = performance.now()
    running = subject.start({
      dir,
      paths: inputs.map((p) => relative(dir, p)),
      output: 'out.log',
      from: 'start',
      nofile: ctx.nofile,
    })
    const r = running
    let size = 0
    let cpu = cpuSeconds(r.pid)
    while (size < total && r.alive() && performance.now() - t0 < capMs) {
      await sleep(5)
      size = sizeOf(out)
      cpu = cpuSeconds(r.pid) ?? cpu
    }
    const ms = performance.now() - t0
    const complete = size >= total
    const status = readStatus(r.pid)
    const stateFile = existsSync(join(dir, '.out.log.logmerge-state.json'))
    await sleep(200) // anything beyond the total (duplicates) shows in the final size
    const stopped = await r.stop()
    const finalBytes = sizeOf(out)
    return {
      ...base,
      command: r.display,
      complete,
      ms,
      mibPerS: complete ? total / MiB / (ms / 1000) : null,
      mibPerSSoFar: size / MiB / (ms / 1000),
      cpuS: cpu,
      rssKiB: status.rssKiB,
      hwmKiB: status.hwmKiB,
      stateFile: subject.kind === 'logmerge' ? stateFile : null,
      finalBytes,
      stop: stopped,
      ok: complete && finalBytes === total,
      stderr: excerpt(r.stderr()),
    }
  } finally {
    await running?.kill()
    done()
    spawnSync('sync')
  }
}

/**
 * `cat inputs > out`, spawn to exit.
 * @param {import('./context.mjs').FollowContext} ctx @param {string[]} inputs @param {number} total
 */
async function catCase(ctx, inputs, total) {
  const { dir, done } = caseDir(ctx, 'catchup')
  const out = join(dir, 'out.log')
  try {
    const fd = openSync(out, 'w')
    const t0 = performance.now()
    const child = spawn(
      'cat',
      inputs.map((p) => relative(dir, p)),
      { cwd: dir, stdio: ['ignore', fd, 'inherit'] },
    )
    closeSync(fd)
    const code = await new Promise((resolve) => child.on('exit', resolve))
    const ms = performance.now() - t0
    return {
      subject: 'cat (ceiling)',
      command: `cat ${inputs.map((p) => relative(dir, p)).join(' ')} > out.log`,
      ms,
      mibPerS: total / MiB / (ms / 1000),
      finalBytes: sizeOf(out),
      exit: code,
    }
  } finally {
    rmSync(out, { force: true })
    done()
    spawnSync('sync')
  }
}

/** @param {import('./context.mjs').FollowContext} ctx */
export async function catchup(ctx) {
  const bytesEach = ctx.bytesEach ?? (ctx.quick ? QUICK_BYTES : FULL_BYTES)
  const files = await ensureInputs(bytesEach)
  const inputs = files.map((f) => f.path)
  const total = files.reduce((s, f) => s + f.bytes, 0)
  spawnSync('cat', inputs, { stdio: 'ignore' })
  ctx.log(`catchup: cat of ${fmt(total / MiB, 0)} MiB...`)
  const cat = await catCase(ctx, inputs, total)
  ctx.log(`catchup: cat: ${fmt(cat.mibPerS, 0)} MiB/s`)
  /** @type {any[]} */
  const results = []
  for (const s of ctx.subjects) {
    if (s.unavailable) {
      results.push({ subject: s.id, kind: s.kind, ok: false, error: s.unavailable })
      continue
    }
    ctx.log(`catchup: ${s.id}: 4 x ${fmt(bytesEach / MiB, 0)} MiB from the start, following...`)
    const r = await catchupCase(ctx, s, inputs, total)
    ctx.log(
      `catchup: ${s.id}: ${'error' in r ? `FAILED: ${r.error}` : r.complete ? `${fmt(r.mibPerS, 0)} MiB/s, ${fmt(r.cpuS, 2)} CPU-s, final ${r.finalBytes} of ${total} bytes` : `NOT complete: ${fmt(r.mibPerSSoFar, 0)} MiB/s so far`}`,
    )
    results.push(r)
  }
  const best = bestPeer(results, (r) => r.mibPerS, 'high')
  const tail = results.find((r) => r.subject === 'tail -F' && r.ok)
  const table = markdownTable(
    [
      'subject',
      'MiB/s',
      'x tail -F',
      'seconds',
      'CPU-s',
      'RSS MiB',
      'output bytes',
      'state file',
      'exit',
    ],
    [
      [
        '`cat` (ceiling)',
        fmt(cat.mibPerS, 0),
        tail ? fmt(cat.mibPerS / tail.mibPerS, 2) : 'n/a',
        fmt(cat.ms / 1000, 2),
        '-',
        '-',
        String(cat.finalBytes),
        '-',
        String(cat.exit),
      ],
      ...results.map((r) =>
        r.error
          ? [r.subject, `**${r.error}**`, '', '', '', '', '', '', '']
          : [
              r.subject,
              r.complete
                ? cell(r.mibPerS, best, r.kind, 0)
                : `**incomplete after ${fmt(r.ms / 1000, 0)} s: ${fmt(r.mibPerSSoFar, 0)} so far**`,
              tail && r.complete ? fmt(r.mibPerS / tail.mibPerS, 2) : 'n/a',
              fmt(r.ms / 1000, 2),
              fmt(r.cpuS, 2),
              fmt((r.rssKiB ?? Number.NaN) / 1024, 0),
              r.finalBytes === total ? String(r.finalBytes) : `**${r.finalBytes}** (of ${total})`,
              r.stateFile === null ? '-' : r.stateFile ? 'yes' : '**no**',
              `${r.stop.exit}${r.stop.killed ? ' KILLED' : ''}`,
            ],
      ),
    ],
  )
  const markdown = [
    `### follow: catchup: following 4 x ${fmt(bytesEach / MiB, 0)} MiB from the start (${fmt(total / MiB, 0)} MiB)`,
    '',
    'From spawn until the output holds every byte; the daemon keeps following (SIGTERM afterwards). Inputs in the page cache.',
    '',
    table,
    '',
    bestNote([['MiB/s', best, 0, '']]),
    '',
    ...results.filter((r) => r.stderr).map((r) => `- ${r.subject}: stderr: ${r.stderr}`),
    '',
    'Commands (run in bench/out/follow/catchup/):',
    '',
    `    ${cat.command}`,
    ...results.filter((r) => r.command).map((r) => `    ${r.command}`),
  ].join('\n')
  return { markdown, json: { bytesEach, total, cat, results } }
}
