// @ts-check
/**
 * latency: how long a line appended to a followed file takes to reach the output, while
 * following, with logmerge keeping its state file (its default, beside the output; checked).
 * The measuring parts are ../latency.mjs's: one process appends numbered lines at a steady
 * rate (100/s for 40 s; 2 s with --quick; one write(2) a line) and watches the output
 * (fs.watch plus a 1 ms poll), so both ends use one clock; latency is from the append's
 * write() returning to the line seen in the output. Before the measured lines, warm-up lines
 * go in every 50 ms until one comes out (the follower is following), then 300 ms of quiet.
 * The watcher's own delay (the bench appending to a file it watches) is the floor row.
 * After SIGTERM the output is counted: every line exactly once.
 *
 * Two windows of the one run are reported: the first 10 s of lines (a daemon just started)
 * and the last 10 s (after 30 s of following: a daemon as it runs). They differ because of
 * V8's optimizing compiler: a function is compiled once it has run often enough, on a thread
 * beside the main one, so at 100 lines/s the compiles of the per-line path come over the
 * first half minute, and on a 2-core machine the compile thread, the main thread and this
 * bench's 1 ms poll take turns for the cores: the main thread waits 1-4 ms now and then
 * (2026-12-08: async with `--no-opt` had p99 0.62-0.88 ms over the first 10 s against 1.60-1.85 ms
 * with it, the same p50; measured inside the follower, the wait lies between the change event
 * and the write).
 */

import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { appendLines, calibrate, OutputWatcher, summarize, waitFor } from '../latency.mjs'
import { fmt, markdownTable, sleep } from '../lib.mjs'
import { caseDir } from './context.mjs'
import { readStatus } from './proc.mjs'
import { bestNote, bestPeer, cell, excerpt } from './report.mjs'

const SEQ = /\bseq=(\d+)$/
const WARMUP = /\bwarmup=(\d+)$/

/**
 * @param {import('./context.mjs').FollowContext} ctx
 * @param {import('./subjects.mjs').Subject} subject
 * @param {number} count @param {number} rate @param {number} windowLines
 */
async function latencyCase(ctx, subject, count, rate, windowLines) {
  const { dir, done } = caseDir(ctx, 'latency')
  const input = join(dir, 'in', 'app.log')
  const out = join(dir, 'out.log')
  writeFileSync(input, '')
  writeFileSync(out, '')
  const base = { subject: subject.id, kind: subject.kind }
  const watcher = new OutputWatcher(out)
  /** @type {import('./launch.mjs').Running | undefined} */
  let running
  try {
    running = subject.start({
      dir,
      paths: ['in/app.log'],
      output: 'out.log',
      from: 'end',
      nofile: ctx.nofile,
    })
    const r = running
    watcher.start()
    for (let i = 0; !watcher.warmupSeen; i++) {
      if (i >= 300 || !r.alive()) {
        const s = await r.stop()
        return {
          ...base,
          command: r.display,
          ok: false,
          error: `not following after 15 s (exit ${s.exit}): ${excerpt(r.stderr())}`,
        }
      }
      writeFileSync(input, `warm-up line warmup=${i}\n`, { flag: 'a' })
      await sleep(50)
    }
    await sleep(300)
    const sentAt = await appendLines(input, count, rate)
    await waitFor(performance.now() + 5000, () => watcher.seen.size >= count)
    const status = readStatus(r.pid)
    const stateFile = existsSync(join(dir, '.out.log.logmerge-state.json'))
    const stopped = await r.stop()
    watcher.stop()
    /** @type {Map<number, number>} */
    const counts = new Map()
    let unexpected = 0
    for (const line of readFileSync(out, 'latin1').split('\n')) {
      if (line === '') continue
      const m = SEQ.exec(line)
      if (m) counts.set(Number(m[1]), (counts.get(Number(m[1])) ?? 0) + 1)
      else if (!WARMUP.test(line)) unexpected++
    }
    let lost = 0
    let duplicated = 0
    for (let i = 0; i < count; i++) {
      const c = counts.get(i) ?? 0
      if (c === 0) lost++
      else if (c > 1) duplicated += c - 1
    }
    const s = summarize(sentAt, watcher.seen)
    // The first and the last `windowLines` lines (see the header): just started, and running.
    const cold = summarize(sentAt.slice(0, windowLines), watcher.seen)
    const lastFrom = Math.max(0, count - windowLines)
    const warmSeen = new Map([...watcher.seen].map(([seq, t]) => [seq - lastFrom, t]))
    const warm = summarize(sentAt.slice(lastFrom), warmSeen)
    return {
      ...base,
      command: r.display,
      lines: count,
      rate,
      stateFile: subject.kind === 'logmerge' ? stateFile : null,
      lost,
      duplicated,
      unexpected,
      p50: cold.p50,
      p90: cold.p90,
      p99: cold.p99,
      max: cold.max,
      mean: cold.mean,
      warm: { p50: warm.p50, p90: warm.p90, p99: warm.p99, max: warm.max, mean: warm.mean },
      all: { p50: s.p50, p99: s.p99, max: s.max },
      samples: s.samples.map((x) => Math.round(x * 1000) / 1000),
      rssKiB: status.rssKiB,
      stop: stopped,
      ok: lost === 0 && duplicated === 0 && unexpected === 0,
      stderr: excerpt(r.stderr()),
    }
  } finally {
    watcher.stop()
    await running?.kill()
    done()
  }
}

/** @param {import('./context.mjs').FollowContext} ctx */
export async function latency(ctx) {
  const seconds = ctx.quick ? 2 : 40
  const windowSeconds = ctx.quick ? 2 : 10
  const rate = 100
  const count = seconds * rate
  const windowLines = windowSeconds * rate
  const floor = await calibrate(ctx.root, Math.min(count, 200), rate)
  ctx.log(`latency: watcher floor p50 ${fmt(floor.p50, 3)} ms, p99 ${fmt(floor.p99, 3)} ms`)
  /** @type {any[]} */
  const results = []
  for (const s of ctx.subjects) {
    if (s.unavailable) {
      results.push({ subject: s.id, kind: s.kind, ok: false, error: s.unavailable })
      continue
    }
    ctx.log(`latency: ${s.id}: ${count} lines at ${rate}/s...`)
    const r = await latencyCase(ctx, s, count, rate, windowLines)
    ctx.log(
      `latency: ${s.id}: ${'error' in r ? `FAILED: ${r.error}` : `first ${windowSeconds} s: p50 ${fmt(r.p50, 2)} ms, p99 ${fmt(r.p99, 2)} ms, max ${fmt(r.max, 1)} ms; last ${windowSeconds} s: p50 ${fmt(r.warm?.p50, 2)} ms, p99 ${fmt(r.warm?.p99, 2)} ms, max ${fmt(r.warm?.max, 1)} ms; lost ${r.lost}, dup ${r.duplicated}`}`,
    )
    results.push(r)
  }
  const b50 = bestPeer(results, (r) => r.p50, 'low')
  const b99 = bestPeer(results, (r) => r.p99, 'low')
  const bMax = bestPeer(results, (r) => r.max, 'low')
  const w50 = bestPeer(results, (r) => r.warm?.p50, 'low')
  const w99 = bestPeer(results, (r) => r.warm?.p99, 'low')
  const wMax = bestPeer(results, (r) => r.warm?.max, 'low')
  const first = `first ${windowSeconds} s`
  const last = `last ${windowSeconds} s`
  const table = markdownTable(
    [
      'subject',
      `${first}: p50 ms`,
      'p90 ms',
      'p99 ms',
      'max ms',
      `${last}: p50 ms`,
      'p99 ms',
      'max ms',
      'lost / dup',
      'state file',
      'exit',
    ],
    [
      [
        '(watcher floor)',
        fmt(floor.p50, 3),
        fmt(floor.p90, 3),
        fmt(floor.p99, 3),
        fmt(floor.max, 3),
        '-',
        '-',
        '-',
        '-',
        '-',
        '-',
      ],
      ...results.map((r) =>
        r.error
          ? [r.subject, `**${r.error}**`, '', '', '', '', '', '', '', '', '']
          : [
              r.subject,
              cell(r.p50, b50, r.kind, 2),
              fmt(r.p90, 2),
              cell(r.p99, b99, r.kind, 2),
              cell(r.max, bMax, r.kind, 1),
              cell(r.warm.p50, w50, r.kind, 2),
              cell(r.warm.p99, w99, r.kind, 2),
              cell(r.warm.max, wMax, r.kind, 1),
              `${r.lost} / ${r.duplicated}`,
              r.stateFile === null ? '-' : r.stateFile ? 'yes' : '**no**',
              `${r.stop.exit}${r.stop.killed ? ' KILLED' : ''}`,
            ],
      ),
    ],
  )
  const markdown = [
    `### follow: latency: one writer, ${rate} lines/s for ${seconds} s`,
    '',
    "From the append (write() returned) to the line in the output file; one process, one clock (../latency.mjs's watcher).",
    `The ${first} of lines (just started: V8 still compiling the per-line path, see bench/follow/latency.mjs) and the ${last} (following for ${seconds - windowSeconds} s before).`,
    '',
    table,
    '',
    bestNote([
      [`${first} p50`, b50, 2, ' ms'],
      [`${first} p99`, b99, 2, ' ms'],
      [`${first} max`, bMax, 1, ' ms'],
      [`${last} p50`, w50, 2, ' ms'],
      [`${last} p99`, w99, 2, ' ms'],
      [`${last} max`, wMax, 1, ' ms'],
    ]),
    '',
    ...results.filter((r) => r.stderr).map((r) => `- ${r.subject}: stderr: ${r.stderr}`),
    '',
    'Commands (run in bench/out/follow/latency/):',
    '',
    ...results.filter((r) => r.command).map((r) => `    ${r.command}`),
  ].join('\n')
  return {
    markdown,
    json: {
      seconds,
      windowSeconds,
      rate,
      lines: count,
      floor: { ...floor, samples: undefined },
      results,
    },
  }
}
