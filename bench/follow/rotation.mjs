// @ts-check
/**
 * rotation: what following costs while files are rotated by rename. 4 writer processes
 * (./writer.mjs paced) append 2,000 lines/s each (one 100-byte line per write(2)) for 15 s
 * to NAME; every 5,000 lines a writer does `mv NAME NAME.1` and goes on in a new NAME (the old
 * NAME.1 is replaced); --quick: 6 s (2 rotations per writer; rotating more often than
 * every 2.5 s would change the case: a follower that polls once a second could then miss a
 * whole NAME.1, as @logdna/tail-file's README warns). The follower follows NAME only; the procedure is ./writing.mjs's. Reported: the follower's CPU-s from the writers' start to the output's last
 * growth, and every line exactly once and in order per writer (a line lost at a rotation
 * shows here).
 */

import { fmt, markdownTable } from '../lib.mjs'
import { bestNote, bestPeer, cell } from './report.mjs'
import { writersCase } from './writing.mjs'

export const WRITERS = 4
export const RATE = 2000
export const ROTATE_EVERY = 5000

/** @param {import('./context.mjs').FollowContext} ctx */
export async function rotation(ctx) {
  const seconds = ctx.quick ? 6 : 15
  const every = ROTATE_EVERY
  /** @type {any[]} */
  const results = []
  for (const s of ctx.subjects) {
    if (s.unavailable) {
      results.push({ subject: s.id, kind: s.kind, ok: false, error: s.unavailable })
      continue
    }
    ctx.log(
      `rotation: ${s.id}: ${WRITERS} writers x ${RATE} lines/s for ${seconds} s, mv every ${every}...`,
    )
    const r = await writersCase(ctx, s, {
      name: 'rotation',
      files: Array.from({ length: WRITERS }, (_, i) => `r${i}.log`),
      writer: (i, path) => ['paced', String(i), path, String(RATE), String(every)],
      ms: seconds * 1000,
    })
    ctx.log(
      `rotation: ${s.id}: ${'error' in r ? `FAILED: ${r.error}` : `${r.lines} lines, ${r.rotations} rotations, ${fmt(r.cpuS, 2)} CPU-s, lost ${r.lost}, dup ${r.duplicated}, out of order ${r.outOfOrder}, exit ${r.stop?.exit}`}`,
    )
    results.push(r)
  }
  const bCpu = bestPeer(results, (r) => r.cpuS, 'low')
  const table = markdownTable(
    [
      'subject',
      'lines',
      'rotations',
      'CPU-s',
      'drain ms',
      'lost / dup / out of order / malformed',
      'exit',
    ],
    results.map((r) =>
      r.error
        ? [r.subject, `**${r.error}**`, '', '', '', '', '']
        : [
            r.subject,
            r.lines,
            r.rotations,
            cell(r.cpuS, bCpu, r.kind, 2),
            r.complete ? fmt(r.drainMs, 0) : '**incomplete**',
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
    `### follow: rotation: ${WRITERS} writers x ${RATE.toLocaleString('en')} lines/s for ${seconds} s, \`mv NAME NAME.1\` every ${every.toLocaleString('en')} lines`,
    '',
    "CPU-s: the follower's utime+stime from the writers' start to the output's last growth.",
    '',
    table,
    '',
    bestNote([['CPU-s', bCpu, 2]]),
    '',
    ...notes,
    '',
    'Commands (run in bench/out/follow/rotation/):',
    '',
    ...results.filter((r) => r.command).map((r) => `    ${r.command}`),
  ].join('\n')
  return {
    markdown,
    json: { writers: WRITERS, rate: RATE, rotateEvery: every, seconds, results },
  }
}
