// @ts-check
/**
 * idle: what following many files that do not change costs, and whether files beyond the
 * open-file limit are still followed promptly.
 *
 * Idle (N = 10,000; 500 with --quick; the largest --files if given). DIR/in/ holds N files of
 * one line each; the follower gets the glob `in/*.log` (tail: the shell's expansion), --from
 * end, the state file by default and the hard open-file limit.
 *   1. Time until following: ./probe.mjs's untilFollowing rule over all N files (a probe every
 *      20 ms to a rotating choice of file, from spawn).
 *   2. 2 s later (1 s with --quick), a 20 s window (3 s with --quick) with nothing written: CPU = utime+stime
 *      from /proc/<pid>/stat over the window in % of one core (and the largest 1-s share);
 *      VmRSS (largest of the 1-s samples, and the last: what an idle daemon settles at, its
 *      heap given back), VmHWM, threads and open fds from /proc. Then the CPU of a second
 *      window as long (skipped with --quick): an idle daemon once the one-off collections of
 *      its first seconds (V8's memory reducer, some 8 s after the last full collection, in
 *      each thread's heap) are over.
 *   3. SIGTERM: exit code and time (SIGKILL after 15 s).
 *
 * Parked (N = 2,000 files under an open-file limit of 1,024; 600 under 256 with --quick):
 *   1. The same start and following rule (under `prlimit --nofile=L:L`).
 *   2. 50 appends (10 with --quick), one every 200 ms, each to a file picked at random among
 *      those the follower holds no fd for at that moment (read from /proc/<pid>/fd; for a
 *      follower that holds none, any file): the delivery time of each, from the write(2) to
 *      the line in the output. Target: within 1 s. Lines not out 10 s after the last are lost.
 */

import { appendFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fmt, markdownTable, percentile, sleep } from '../lib.mjs'
import { caseDir, pad } from './context.mjs'
import { OutputTail } from './output.mjs'
import { Prober } from './probe.mjs'
import { cpuSeconds, nofileLimit, openPaths, readStatus } from './proc.mjs'
import { bestNote, bestPeer, cell, excerpt } from './report.mjs'

const STOP_GRACE_MS = 15_000

/**
 * @param {import('./context.mjs').FollowContext} ctx @param {string} name @param {number} n
 * @returns {{ dir: string, done: () => void, files: string[] }}
 */
function makeFiles(ctx, name, n) {
  const c = caseDir(ctx, name)
  const files = Array.from({ length: n }, (_, i) => join(c.dir, 'in', `f${pad(i, n)}.log`))
  files.forEach((f, i) => {
    writeFileSync(f, `idle file=${pad(i, n)} one short line\n`)
  })
  writeFileSync(join(c.dir, 'out.log'), '')
  return { ...c, files }
}

/**
 * @param {import('./context.mjs').FollowContext} ctx
 * @param {import('./subjects.mjs').Subject} subject
 * @param {number} n @param {number} windowMs
 */
async function idleCase(ctx, subject, n, windowMs) {
  const { dir, done, files } = makeFiles(ctx, `idle-${n}`, n)
  const prober = new Prober(files, `idle ${subject.id}`)
  const tail = new OutputTail(join(dir, 'out.log'), (line, now) => {
    prober.onLine(line, now)
  }).start()
  const base = { subject: subject.id, kind: subject.kind, n }
  /** @type {import('./launch.mjs').Running | undefined} */
  let running
  try {
    const t0 = performance.now()
    running = subject.start({
      dir,
      glob: 'in/*.log',
      output: 'out.log',
      from: 'end',
      nofile: ctx.nofile,
    })
    const r = running
    const following = await prober.untilFollowing({ t0, alive: r.alive, ...ctx.probe })
    if (!r.alive()) {
      const s = await r.stop()
      return {
        ...base,
        command: r.display,
        ok: false,
        error: `exited during start-up (${s.exit}): ${excerpt(r.stderr())}`,
      }
    }
    await sleep(ctx.quick ? 1000 : 2000)
    tail.setPoll(null)
    /** @type {ReturnType<typeof readStatus>[]} */
    const samples = [readStatus(r.pid)]
    /** @type {number[]} */
    const perSecond = []
    const w0 = performance.now()
    const c0 = cpuSeconds(r.pid) ?? 0
    let prev = c0
    let prevT = w0
    while (performance.now() - w0 < windowMs && r.alive()) {
      await sleep(Math.min(1000, windowMs - (performance.now() - w0)))
      const c = cpuSeconds(r.pid) ?? prev
      const t = performance.now()
      perSecond.push(((c - prev) / ((t - prevT) / 1000)) * 100)
      prev = c
      prevT = t
      samples.push(readStatus(r.pid))
    }
    const windowS = (performance.now() - w0) / 1000
    const cpuPercent = ((prev - c0) / windowS) * 100
    let laterCpuPercent = null
    if (!ctx.quick && r.alive()) {
      const l0 = performance.now()
      await sleep(windowMs)
      const c = cpuSeconds(r.pid)
      if (c !== null) laterCpuPercent = ((c - prev) / ((performance.now() - l0) / 1000)) * 100
    }
    const end = samples[samples.length - 1]
    const max = (/** @type {(s: ReturnType<typeof readStatus>) => number | null} */ f) => {
      const xs = samples.map(f).filter((x) => x !== null)
      return xs.length > 0 ? Math.max(...xs) : null
    }
    const alive = r.alive()
    const stopped = await r.stop(STOP_GRACE_MS)
    return {
      ...base,
      command: r.display,
      nofile: ctx.nofile,
      following,
      windowS,
      cpuPercent,
      cpuPercentPerSecond: perSecond.map((x) => Math.round(x * 10) / 10),
      cpuPercentMax1s: perSecond.length > 0 ? Math.max(...perSecond) : null,
      laterCpuPercent,
      rssKiBMax: max((s) => s.rssKiB),
      rssKiBEnd: end?.rssKiB ?? null,
      hwmKiB: end?.hwmKiB ?? null,
      threads: max((s) => s.threads),
      fds: max((s) => s.fds),
      samples,
      stop: stopped,
      ok: alive && following.followingAtMs !== null,
      stderr: excerpt(r.stderr()),
    }
  } finally {
    tail.stop()
    await running?.kill()
    done()
  }
}

/**
 * @param {import('./context.mjs').FollowContext} ctx
 * @param {import('./subjects.mjs').Subject} subject
 * @param {{ n: number, limit: number, appends: number }} o
 */
async function parkedCase(ctx, subject, o) {
  const { dir, done, files } = makeFiles(ctx, `parked-${o.n}`, o.n)
  const prober = new Prober(files, `parked ${subject.id}`)
  /** @type {{ file: number, notHeld: boolean, writtenAt: number, seenAt: number | null }[]} */
  const appends = []
  const PARKED = /^parked=(\d+) /
  const tail = new OutputTail(join(dir, 'out.log'), (line, now) => {
    if (prober.onLine(line, now)) return
    const a = appends[Number(PARKED.exec(line)?.[1] ?? -1)]
    if (a && a.seenAt === null) a.seenAt = now
  }).start()
  const base = { subject: subject.id, kind: subject.kind, n: o.n, limit: o.limit }
  /** @type {import('./launch.mjs').Running | undefined} */
  let running
  try {
    const t0 = performance.now()
    running = subject.start({
      dir,
      glob: 'in/*.log',
      output: 'out.log',
      from: 'end',
      nofile: o.limit,
    })
    const r = running
    const following = await prober.untilFollowing({ t0, alive: r.alive, ...ctx.probe })
    if (!r.alive()) {
      const s = await r.stop()
      return {
        ...base,
        command: r.display,
        ok: false,
        error: `exited during start-up (${s.exit}): ${excerpt(r.stderr())}`,
      }
    }
    const limitSeen = nofileLimit(r.pid)
    let fdsMax = 0
    for (let k = 0; k < o.appends && r.alive(); k++) {
      const held = openPaths(r.pid)
      fdsMax = Math.max(fdsMax, held.size)
      const free = files.map((_, i) => i).filter((i) => !held.has(files[i] ?? ''))
      const pool = free.length > 0 ? free : files.map((_, i) => i)
      const file = /** @type {number} */ (pool[Math.floor(Math.random() * pool.length)])
      appendFileSync(/** @type {string} */ (files[file]), `parked=${k} file=${pad(file, o.n)}\n`)
      appends.push({ file, notHeld: free.length > 0, writtenAt: performance.now(), seenAt: null })
      await sleep(200)
    }
    const last = appends[appends.length - 1]?.writtenAt ?? performance.now()
    while (
      appends.some((a) => a.seenAt === null) &&
      performance.now() - last < 10_000 &&
      r.alive()
    ) {
      await sleep(10)
    }
    tail.drain()
    const stopped = await r.stop(STOP_GRACE_MS)
    const delays = appends
      .filter((a) => a.seenAt !== null)
      .map((a) => /** @type {number} */ (a.seenAt) - a.writtenAt)
      .sort((a, b) => a - b)
    const lost = appends.length - delays.length
    return {
      ...base,
      command: `prlimit --nofile=${o.limit}:${o.limit} -- ${r.display}`,
      limitSeen,
      following,
      fdsMax,
      appends: appends.length,
      notHeld: appends.filter((a) => a.notHeld).length,
      within1s: delays.filter((d) => d <= 1000).length,
      p50Ms: delays.length > 0 ? percentile(delays, 50) : null,
      maxMs: delays.length > 0 ? (delays[delays.length - 1] ?? null) : null,
      lost,
      delaysMs: appends.map((a) =>
        a.seenAt === null ? null : Math.round((a.seenAt - a.writtenAt) * 10) / 10,
      ),
      stop: stopped,
      ok: lost === 0,
      stderr: excerpt(r.stderr()),
    }
  } finally {
    tail.stop()
    await running?.kill()
    done()
  }
}

/** @param {import('./context.mjs').FollowContext} ctx */
export async function idle(ctx) {
  const n = ctx.files ? Math.max(...ctx.files) : ctx.quick ? 500 : 10_000
  const windowMs = ctx.quick ? 3000 : 20_000
  const parked = ctx.quick
    ? { n: 600, limit: 256, appends: 10 }
    : { n: 2000, limit: 1024, appends: 50 }
  const idleResults = []
  for (const s of ctx.subjects) {
    if (s.unavailable) {
      idleResults.push({ subject: s.id, kind: s.kind, n, ok: false, error: s.unavailable })
      continue
    }
    ctx.log(`idle: ${s.id}: ${n} idle files, ${windowMs / 1000} s window...`)
    const r = await idleCase(ctx, s, n, windowMs)
    ctx.log(
      `idle: ${s.id}: ${'error' in r ? `FAILED: ${r.error}` : `following at ${fmt((r.following?.followingAtMs ?? Number.NaN) / 1000, 2)} s, CPU ${fmt(r.cpuPercent, 2)} %, RSS ${fmt((r.rssKiBMax ?? Number.NaN) / 1024, 0)} MiB (${fmt((r.rssKiBEnd ?? Number.NaN) / 1024, 0)} at the end), exit ${r.stop?.exit}`}`,
    )
    idleResults.push(r)
  }
  const parkedResults = []
  for (const s of ctx.subjects) {
    if (s.unavailable) {
      parkedResults.push({
        subject: s.id,
        kind: s.kind,
        n: parked.n,
        limit: parked.limit,
        ok: false,
        error: s.unavailable,
      })
      continue
    }
    ctx.log(`idle: ${s.id}: ${parked.n} files under an open-file limit of ${parked.limit}...`)
    const r = await parkedCase(ctx, s, parked)
    ctx.log(
      `idle: ${s.id}: parked: ${'error' in r ? `FAILED: ${r.error}` : `${r.within1s}/${r.appends} within 1 s, max ${fmt(r.maxMs, 0)} ms, lost ${r.lost}, exit ${r.stop?.exit}`}`,
    )
    parkedResults.push(r)
  }
  return {
    markdown: idleMarkdown(idleResults, parkedResults, n, windowMs, parked),
    json: { n, windowMs, parked, idle: idleResults, parkedResults },
  }
}

/**
 * @param {any[]} rs @param {any[]} ps @param {number} n @param {number} windowMs
 * @param {{ n: number, limit: number, appends: number }} parked
 */
function idleMarkdown(rs, ps, n, windowMs, parked) {
  const bFollow = bestPeer(rs, (r) => (r.following?.followingAtMs ?? Number.NaN) / 1000, 'low')
  const bCpu = bestPeer(rs, (r) => r.cpuPercent, 'low')
  const bRss = bestPeer(rs, (r) => (r.rssKiBMax ?? Number.NaN) / 1024, 'low')
  const mib = (/** @type {number | null} */ k) => (k === null ? null : k / 1024)
  const table = markdownTable(
    [
      'subject',
      'following after s',
      'probe delivery p50 / max ms',
      'CPU % of a core',
      'max 1-s CPU %',
      'CPU % the next window',
      'RSS MiB (VmRSS max)',
      'RSS MiB at the end',
      'VmHWM MiB',
      'threads',
      'fds',
      'SIGTERM: exit, time',
    ],
    rs.map((r) =>
      r.error
        ? [r.subject, `**${r.error}**`, '', '', '', '', '', '', '', '', '', '']
        : [
            r.subject,
            r.following.followingAtMs === null
              ? '**never**'
              : cell(r.following.followingAtMs / 1000, bFollow, r.kind, 2),
            `${fmt(r.following.deliveryP50Ms, 1)} / ${fmt(r.following.deliveryMaxMs, 0)}`,
            cell(r.cpuPercent, bCpu, r.kind, 2),
            fmt(r.cpuPercentMax1s, 1),
            fmt(r.laterCpuPercent, 2),
            cell(mib(r.rssKiBMax), bRss, r.kind, 0),
            fmt(mib(r.rssKiBEnd), 0),
            fmt(mib(r.hwmKiB), 0),
            r.threads ?? 'n/a',
            r.fds ?? 'n/a',
            `${r.stop.exit}${r.stop.killed ? ' KILLED' : ''}, ${fmt(r.stop.stopMs / 1000, 2)} s`,
          ],
    ),
  )
  const bMax = bestPeer(ps, (r) => r.maxMs, 'low')
  const pTable = markdownTable(
    [
      'subject',
      'open-file limit',
      'fds held (max)',
      'following after s',
      'appends',
      'to files not held open',
      'out within 1 s',
      'p50 ms',
      'max ms',
      'lost',
      'exit',
    ],
    ps.map((r) =>
      r.error
        ? [r.subject, `**${r.error}**`, '', '', '', '', '', '', '', '', '', '']
        : [
            r.subject,
            r.limitSeen ?? r.limit,
            r.fdsMax,
            r.following.followingAtMs === null
              ? '**never**'
              : fmt(r.following.followingAtMs / 1000, 2),
            r.appends,
            r.notHeld,
            r.within1s === r.appends ? String(r.within1s) : `**${r.within1s}**`,
            fmt(r.p50Ms, 1),
            cell(r.maxMs, bMax, r.kind, 0),
            r.lost === 0 ? '0' : `**${r.lost}**`,
            String(r.stop.exit),
          ],
    ),
  )
  const notes = [
    ...rs
      .filter((r) => r.fds !== null && r.fds >= r.nofile - 16)
      .map((r) => `- ${r.subject}: it held ${r.fds} fds, its whole open-file limit (${r.nofile})`),
    ...[...rs, ...ps]
      .filter((r) => r.stderr)
      .map((r) => `- ${r.subject}${r.limit ? ' (parked)' : ''}: stderr: ${r.stderr}`),
  ]
  const commands = [
    ...new Set([...rs, ...ps].filter((r) => r.command).map((r) => `    ${r.command}`)),
  ]
  return [
    `### follow: idle: ${n.toLocaleString('en')} files, nothing written for ${windowMs / 1000} s`,
    '',
    '"following after": from spawn, ./probe.mjs\'s rule (a probe line every 20 ms to a rotating choice of the files; the first probe after which all were delivered). CPU: utime+stime over the window from /proc/<pid>/stat. RSS, threads, fds: /proc, once a second.',
    '',
    table,
    '',
    bestNote([
      ['following', bFollow, 2, ' s'],
      ['CPU', bCpu, 2, ' %'],
      ['RSS', bRss, 0, ' MiB'],
    ]),
    '',
    `Parked: ${parked.n.toLocaleString('en')} files under an open-file limit of ${parked.limit}; ${parked.appends} appends, one every 200 ms, to files the follower held no fd for (target: each out within 1 s):`,
    '',
    pTable,
    '',
    bestNote([['max', bMax, 0, ' ms']]),
    '',
    ...notes,
    '',
    'Commands (run in bench/out/follow/idle-N/ and parked-N/):',
    '',
    ...commands,
  ].join('\n')
}
