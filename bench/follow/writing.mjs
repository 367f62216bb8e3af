// @ts-check
/**
 * One follower, a few writer processes (./writer.mjs), one output: the shared procedure of
 * the cpu and rotation sub-benchmarks.
 *   1. DIR/in/ holds the writers' files, empty; the follower follows them by path (--from end,
 *      its state file by default) into DIR/out.log.
 *   2. Ready when a probe line appended to each file came out (./probe.mjs untilEachSeen) and
 *      the output then stayed the same size for 300 ms.
 *   3. The writers start together; the follower's CPU (utime+stime) is read when they start.
 *   4. The output's size is polled every 10 ms until it holds every line written, or did not
 *      grow for 10 s, or 120 s passed (30 s with --quick) after the last write. The follower's
 *      CPU is taken as of the output's last growth.
 *   5. SIGTERM, then the whole output is checked: each writer's lines exactly once, in order.
 */

import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { sleep } from '../lib.mjs'
import { caseDir } from './context.mjs'
import { checkWriterLines, OutputTail, sizeOf } from './output.mjs'
import { Prober } from './probe.mjs'
import { cpuSeconds, readStatus } from './proc.mjs'
import { excerpt } from './report.mjs'
import { LINE_BYTES, startWriters } from './writer.mjs'

const STALL_MS = 10_000
const epochNow = () => performance.timeOrigin + performance.now()

/**
 * @param {import('./context.mjs').FollowContext} ctx
 * @param {import('./subjects.mjs').Subject} subject
 * @param {{ name: string, files: string[], writer: (i: number, path: string) => string[], ms: number }} o
 *   files: names under in/; writer: a writer's argv (mode, index, path, ...)
 */
export async function writersCase(ctx, subject, o) {
  const { dir, done } = caseDir(ctx, o.name)
  const paths = o.files.map((f) => join(dir, 'in', f))
  for (const p of paths) writeFileSync(p, '')
  const out = join(dir, 'out.log')
  writeFileSync(out, '')
  const prober = new Prober(paths, `${o.name} ${subject.id}`)
  const tail = new OutputTail(out, (line, now) => {
    prober.onLine(line, now)
  }).start(20)
  const base = { subject: subject.id, kind: subject.kind }
  /** @type {import('./launch.mjs').Running | undefined} */
  let running
  try {
    running = subject.start({
      dir,
      paths: o.files.map((f) => `in/${f}`),
      output: 'out.log',
      from: 'end',
      nofile: ctx.nofile,
    })
    const r = running
    const ready = await prober.untilEachSeen({ alive: r.alive, capMs: 30_000 })
    if (!ready.ok) {
      const s = await r.stop()
      return {
        ...base,
        command: r.display,
        ok: false,
        error: `not following after 30 s (exit ${s.exit}): ${excerpt(r.stderr())}`,
      }
    }
    let size = sizeOf(out)
    let changedAt = performance.now()
    while (performance.now() - changedAt < 300) {
      await sleep(20)
      const s = sizeOf(out)
      if (s !== size) {
        size = s
        changedAt = performance.now()
      }
    }
    tail.stop()
    const baseBytes = size
    const writers = await startWriters(paths.map((p, i) => o.writer(i, p)))
    const cpu0 = cpuSeconds(r.pid) ?? 0
    writers.go(o.ms)
    const rs = await writers.results
    const lines = rs.reduce((s, w) => s + w.lines, 0)
    const bytes = rs.reduce((s, w) => s + w.bytes, 0)
    const firstWrite = Math.min(...rs.map((w) => w.firstWrite))
    const lastWrite = Math.max(...rs.map((w) => w.lastWrite))
    const expected = baseBytes + bytes
    let grewAt = epochNow()
    let cpuAtGrowth = cpuSeconds(r.pid) ?? cpu0
    const capMs = ctx.quick ? 30_000 : 120_000
    while (size < expected && r.alive()) {
      const t = epochNow()
      if (t - Math.max(grewAt, lastWrite) > STALL_MS || t - lastWrite > capMs) break
      await sleep(10)
      const s = sizeOf(out)
      if (s !== size) {
        size = s
        grewAt = epochNow()
        cpuAtGrowth = cpuSeconds(r.pid) ?? cpuAtGrowth
      }
    }
    const complete = size >= expected
    const status = readStatus(r.pid)
    const stopped = await r.stop()
    const check = await checkWriterLines(
      out,
      rs.map((w) => w.lines),
      LINE_BYTES,
    )
    const cpuS = cpuAtGrowth - cpu0
    const mergeS = (grewAt - firstWrite) / 1000
    return {
      ...base,
      command: r.display,
      writers: rs,
      lines,
      bytes,
      rotations: rs.reduce((s, w) => s + w.rotations, 0),
      writersLinesPerS: lines / ((lastWrite - firstWrite) / 1000),
      complete,
      outputBytes: sizeOf(out),
      expectedBytes: expected,
      mergedLinesPerS: lines / mergeS,
      drainMs: grewAt - lastWrite,
      cpuS,
      cpuSPerMillion: cpuS / (lines / 1e6),
      rssKiB: status.rssKiB,
      hwmKiB: status.hwmKiB,
      ...check,
      stop: stopped,
      ok:
        complete &&
        check.lost === 0 &&
        check.duplicated === 0 &&
        check.outOfOrder === 0 &&
        check.malformed === 0,
      stderr: excerpt(r.stderr()),
    }
  } finally {
    tail.stop()
    await running?.kill()
    done()
  }
}
