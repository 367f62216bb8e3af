// @ts-check
/**
 * cpu: what following costs per line. 8 writer processes (./writer.mjs fast) append to their
 * own followed file as fast as they can for 10 s (2 s with --quick), ONE ~100-byte line PER
 * write(2), all starting together; the procedure is ./writing.mjs's.
 *   CPU-s per million lines = the follower's utime+stime from the writers' start to the
 *   output's last growth / lines written x 10^6. Merged lines/s = lines / (the output's last
 *   growth - the first write). The writers share the 2 cores with the follower, so their own
 *   rate is given too (it differs between followers).
 * Every writer's lines must come out exactly once and in order, whole.
 */

import { fmt, markdownTable } from '../lib.mjs'
import { bestNote, bestPeer, cell } from './report.mjs'
import { writersCase } from './writing.mjs'

export const WRITERS = 8

/** @param {import('./context.mjs').FollowContext} ctx */
export async function cpu(ctx) {
  const seconds = ctx.quick ? 2 : 10
  /** @type {any[]} */
  const results = []
  for (const s of ctx.subjects) {
    if (s.unavailable) {
      results.push({ subject: s.id, kind: s.kind, ok: false, error: s.unavailable })
      continue
    }
    ctx.log(`cpu: ${s.id}: ${WRITERS} writers at full speed for ${seconds} s...`)
    const r = await writersCase(ctx, s, {
      name: 'cpu',
      files: Array.from({ length: WRITERS }, (_, i) => `w${i}.log`),
      writer: (i, path) => ['fast', String(i), path],
      ms: seconds * 1000,
    })
    ctx.log(
      `cpu: ${s.id}: ${'error' in r ? `FAILED: ${r.error}` : `${r.lines} lines, ${fmt(r.cpuSPerMillion, 2)} CPU-s per million, ${fmt(r.mergedLinesPerS, 0)} lines/s, lost ${r.lost}, dup ${r.duplicated}, out of order ${r.outOfOrder}, exit ${r.stop?.exit}`}`,
    )
    results.push(r)
  }
  const bCpu = bestPeer(results, (r) => r.cpuSPerMillion, 'low')
  const bRate = bestPeer(results, (r) => r.mergedLinesPerS, 'high')
  const table = markdownTable(
    [
      'subject',
      'lines',
      'writers lines/s',
      'merged lines/s',
      'drain ms',
      'CPU-s',
      'CPU-s per million lines',
      'lost / dup / out of order / malformed',
      'exit',
    ],
    results.map((r) =>
      r.error
        ? [r.subject, `**${r.error}**`, '', '', '', '', '', '', '']
        : [
            r.subject,
            r.lines,
            fmt(r.writersLinesPerS, 0),
            cell(r.mergedLinesPerS, bRate, r.kind, 0),
            r.complete ? fmt(r.drainMs, 0) : '**incomplete**',
            fmt(r.cpuS, 2),
            cell(r.cpuSPerMillion, bCpu, r.kind, 2),
            `${r.lost} / ${r.duplicated} / ${r.outOfOrder} / ${r.malformed}`,
            `${r.stop.exit}${r.stop.killed ? ' KILLED' : ''}`,
          ],
    ),
  )
  const notes = results.flatMap((r) => [
    ...(r.examples?.length > 0 ? [`- ${r.subject}: e.g. ${r.examples.join('; ')}`] : []),
    ...(r.stderr ? [`- ${r.subject}: stderr: ${r.stderr}`] : []),
  ])
  const markdown = [
    `### follow: cpu: ${WRITERS} writers at full speed for ${seconds} s, one 100-byte line per write(2)`,
    '',
    "CPU-s: the follower's utime+stime from the writers' start to the output's last growth. drain: the output's last growth - the last write.",
    '',
    table,
    '',
    bestNote([
      ['CPU-s per million', bCpu, 2],
      ['merged lines/s', bRate, 0],
    ]),
    '',
    ...notes,
    '',
    'Commands (run in bench/out/follow/cpu/):',
    '',
    ...results.filter((r) => r.command).map((r) => `    ${r.command}`),
  ].join('\n')
  return { markdown, json: { writers: WRITERS, seconds, results } }
}
