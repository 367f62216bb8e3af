// @ts-check
/**
 * burst: N followed files sit idle, then one line is appended to each as fast as the bench
 * can, and we time how long it takes until every line is in the output.
 *
 * Cases: N = 1,000 and 10,000 (100 with --quick; --files overrides), inputs given as one
 * quoted glob or as N paths on the command line, the files empty at start (the case that
 * breaks) or holding one line each (glob only). Per subject:
 *   1. DIR/in/ gets N files f<i>.log (empty, or `init file=<i> ...`); DIR/out.log is created
 *      empty; the follower starts with the state file by default (logmerge's default: beside
 *      the output) and --from end, under the hard open-file limit.
 *   2. Following? Every 100th file (at least 5, at most 100, spread through the names) is a
 *      probe file: ./probe.mjs's untilFollowing rule on those, then until the follower's CPU
 *      over the last second is under 50 % of a core (start-up work done; at most 30 s).
 *      So at the burst N-P files are empty (or hold their one line) and P hold probe lines.
 *   3. Burst: one write(2) of `burst=1 file=<i> <padding>` (64 bytes) to each file, through
 *      fds the bench opened before the follower started (as a logger holds its file), as fast
 *      as a loop goes. The output is watched (inotify + a 2 ms poll): the time from the last
 *      append to the last line seen, and how many lines had come out at 0.2, 0.5, 1, 2, 5, 10,
 *      20, 30 and 60 s. Gives up 60 s (10 s with --quick) after the last append.
 *   4. For the largest N: a second burst, and SIGTERM right after its last write(2); else
 *      SIGTERM after the first. SIGKILL if it has not exited within 15 s (reported).
 *   5. The whole output is counted again after the exit: every line of every burst exactly
 *      once (lost, duplicated), and nothing else but probe lines (unexpected: e.g. an `init`
 *      line, read from the start by mistake).
 */

import { closeSync, createReadStream, openSync, writeFileSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { fmt, MiB, markdownTable, sleep } from '../lib.mjs'
import { caseDir, pad } from './context.mjs'
import { OutputTail } from './output.mjs'
import { Prober } from './probe.mjs'
import { cpuSeconds, nofileLimit, readStatus, waitCpuBelow } from './proc.mjs'
import { bestNote, bestPeer, cell, excerpt } from './report.mjs'

export const CHECKPOINTS_S = [0.2, 0.5, 1, 2, 5, 10, 20, 30, 60]
const LINE = /^burst=(\d) file=(\d+) /
const LINE_BYTES = 64
const STOP_GRACE_MS = 15_000

/** @param {number} b @param {number} i @param {number} n */
function burstLine(b, i, n) {
  const head = `burst=${b} file=${pad(i, n)} `
  return Buffer.from(`${head.padEnd(LINE_BYTES - 1, 'x')}\n`, 'latin1')
}

/** @param {number[]} delays NaN for a line never seen @returns {(number | null)[]} */
function deciles(delays) {
  const sorted = delays.filter((d) => !Number.isNaN(d)).sort((a, b) => a - b)
  return Array.from({ length: 10 }, (_, k) => {
    const at = Math.ceil(((k + 1) / 10) * delays.length) - 1
    const d = sorted[at]
    return d === undefined ? null : Math.round(d)
  })
}

/** @param {number} n @returns {number[]} the probe files' indexes, spread through 0..n-1 */
function probeIndexes(n) {
  const p = Math.min(100, Math.max(5, Math.round(n / 100)), n)
  return Array.from({ length: p }, (_, j) => Math.floor(((j + 0.5) * n) / p))
}

/**
 * Counts the output's burst lines per file after the run.
 * @param {string} path @param {number} n @param {number} bursts
 */
async function countOutput(path, n, bursts) {
  const counts = Array.from({ length: bursts }, () => new Uint8Array(n))
  let probes = 0
  let unexpected = 0
  /** @type {string[]} */
  const examples = []
  let rest = ''
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * MiB })) {
    const lines = (rest + /** @type {Buffer} */ (chunk).toString('latin1')).split('\n')
    rest = lines.pop() ?? ''
    for (const line of lines) {
      const m = LINE.exec(line)
      const b = Number(m?.[1]) - 1
      const i = Number(m?.[2])
      const c = counts[b]
      if (m && c && i < n) {
        if ((c[i] ?? 0) < 255) c[i] = (c[i] ?? 0) + 1
      } else if (line.startsWith('probe=')) probes++
      else {
        unexpected++
        if (examples.length < 3) examples.push(line.slice(0, 40))
      }
    }
  }
  if (rest !== '') {
    unexpected++
    examples.push(`partial last line ${JSON.stringify(rest.slice(0, 40))}`)
  }
  return {
    probes,
    unexpected,
    examples,
    perBurst: counts.map((c) => {
      let lost = 0
      let duplicated = 0
      for (const x of c) {
        if (x === 0) lost++
        else if (x > 1) duplicated += x - 1
      }
      return { lost, duplicated }
    }),
  }
}

/**
 * @param {import('./context.mjs').FollowContext} ctx
 * @param {import('./subjects.mjs').Subject} subject
 * @param {{ n: number, mode: 'glob' | 'paths', content: 'empty' | 'one-line', sigterm: boolean }} v
 */
async function burstCase(ctx, subject, v) {
  const capMs = ctx.quick ? 10_000 : 60_000
  const { dir, done } = caseDir(ctx, `burst-${v.n}-${v.mode}-${v.content}`)
  const names = Array.from({ length: v.n }, (_, i) => `in/f${pad(i, v.n)}.log`)
  for (let i = 0; i < v.n; i++) {
    const init = v.content === 'one-line' ? `init file=${pad(i, v.n)} idle since start\n` : ''
    writeFileSync(join(dir, names[i] ?? ''), init)
  }
  writeFileSync(join(dir, 'out.log'), '')
  const base = {
    subject: subject.id,
    kind: subject.kind,
    n: v.n,
    inputs: v.mode,
    content: v.content,
  }
  // The bench holds every file open for the bursts when its own limit allows.
  const ownLimit = nofileLimit('self') ?? 1024
  const hold = v.n + 64 <= ownLimit
  /** @type {number[]} */
  const fds = hold ? names.map((nm) => openSync(join(dir, nm), 'a')) : []
  /** @param {number} b */
  const writeBurst = (b) => {
    for (let i = 0; i < v.n; i++) {
      const line = burstLine(b, i, v.n)
      if (hold) writeSync(/** @type {number} */ (fds[i]), line)
      else writeFileSync(join(dir, names[i] ?? ''), line, { flag: 'a' })
    }
    return performance.now()
  }
  const seen = new Float64Array(v.n).fill(Number.NaN)
  let got = 0
  const prober = new Prober(
    probeIndexes(v.n).map((i) => join(dir, names[i] ?? '')),
    `burst ${subject.id}`,
  )
  const tail = new OutputTail(join(dir, 'out.log'), (line, now) => {
    if (prober.onLine(line, now)) return
    const m = LINE.exec(line)
    if (m?.[1] === '1') {
      const i = Number(m[2])
      if (i < v.n && Number.isNaN(seen[i])) {
        seen[i] = now
        got++
      }
    }
  }).start()
  const spec = /** @type {import('./subjects.mjs').FollowSpec} */ ({
    dir,
    output: 'out.log',
    from: 'end',
    nofile: ctx.nofile,
    ...(v.mode === 'glob' ? { glob: 'in/*.log' } : { paths: names }),
  })
  const t0 = performance.now()
  /** @type {import('./launch.mjs').Running | undefined} */
  let running
  try {
    running = subject.start(spec)
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
    const quiet = await waitCpuBelow(r.pid, { percent: 50, windowMs: 1000, capMs: 30_000 })
    const cpu0 = cpuSeconds(r.pid)
    const tFirst = performance.now()
    const tLast = writeBurst(1)
    while (got < v.n && performance.now() - tLast < capMs && r.alive()) await sleep(5)
    tail.drain()
    const cpu1 = cpuSeconds(r.pid)
    const status = readStatus(r.pid)
    const delays = Array.from(seen, (t) => t - tLast)
    const arrived = CHECKPOINTS_S.filter((c) => c * 1000 <= capMs).map(
      (c) => delays.filter((d) => d <= c * 1000).length,
    )
    const complete = got === v.n
    let tLast2 = null
    if (v.sigterm && r.alive()) tLast2 = writeBurst(2)
    const stopped = await r.stop(STOP_GRACE_MS)
    tail.stop()
    const bursts = tLast2 === null ? 1 : 2
    const counted = await countOutput(join(dir, 'out.log'), v.n, bursts)
    const exactlyOnce =
      counted.perBurst.every((p) => p.lost === 0 && p.duplicated === 0) && counted.unexpected === 0
    return {
      ...base,
      command: r.display,
      heldFds: hold,
      following,
      cpuQuiet: quiet,
      burstWriteMs: tLast - tFirst,
      complete,
      delivered: got,
      allMs: complete ? Math.max(...delays) : null,
      arrived,
      // The arrival curve: ms after the last append by which 10 %, 20 %, ... 100 % were out.
      arrivalDecilesMs: deciles(delays),
      burstCpuS: cpu0 !== null && cpu1 !== null ? cpu1 - cpu0 : null,
      rssKiB: status.rssKiB,
      hwmKiB: status.hwmKiB,
      fds: status.fds,
      nofile: ctx.nofile,
      sigterm: tLast2 !== null,
      stop: stopped,
      ...counted,
      exactlyOnce,
      // A yardstick for the first burst's time: all of it, once, nothing else (the exit and
      // the second burst have their own columns).
      ok:
        complete &&
        counted.perBurst[0]?.lost === 0 &&
        counted.perBurst[0]?.duplicated === 0 &&
        counted.unexpected === 0,
      stderr: excerpt(r.stderr()),
    }
  } finally {
    tail.stop()
    await running?.kill()
    for (const fd of fds) closeSync(fd)
    done()
  }
}

/**
 * @param {import('./context.mjs').FollowContext} ctx
 */
export async function burst(ctx) {
  const sizes = ctx.files ?? (ctx.quick ? [100] : [1000, 10_000])
  const largest = Math.max(...sizes)
  const capMs = ctx.quick ? 10_000 : 60_000
  /** @type {{ n: number, mode: 'glob' | 'paths', content: 'empty' | 'one-line', sigterm: boolean }[]} */
  const variants = sizes.flatMap((n) => [
    {
      n,
      mode: /** @type {const} */ ('glob'),
      content: /** @type {const} */ ('empty'),
      sigterm: n === largest,
    },
    {
      n,
      mode: /** @type {const} */ ('paths'),
      content: /** @type {const} */ ('empty'),
      sigterm: n === largest,
    },
    {
      n,
      mode: /** @type {const} */ ('glob'),
      content: /** @type {const} */ ('one-line'),
      sigterm: false,
    },
  ])
  const results = []
  for (const v of variants) {
    for (const s of ctx.subjects) {
      if (s.unavailable) {
        results.push({
          subject: s.id,
          kind: s.kind,
          n: v.n,
          inputs: v.mode,
          content: v.content,
          ok: false,
          error: s.unavailable,
        })
        continue
      }
      ctx.log(
        `burst: ${s.id}: ${v.n} files, ${v.mode}, ${v.content}${v.sigterm ? ', then SIGTERM after a second burst' : ''}...`,
      )
      const r = await burstCase(ctx, s, v)
      ctx.log(
        `burst: ${s.id}: ${'error' in r ? `FAILED: ${r.error}` : `following at ${fmt((r.following?.followingAtMs ?? Number.NaN) / 1000, 2)} s; ${r.delivered}/${v.n} in ${r.complete ? `${fmt((r.allMs ?? 0) / 1000, 3)} s` : `NOT all after ${capMs / 1000} s`}; exit ${r.stop?.exit} in ${fmt((r.stop?.stopMs ?? 0) / 1000, 2)} s${r.stop?.killed ? ' (KILLED)' : ''}`}`,
      )
      results.push(r)
    }
  }
  return {
    markdown: burstMarkdown(results, capMs),
    json: { capMs, checkpointsS: CHECKPOINTS_S, results },
  }
}

/**
 * @param {any[]} results @param {number} capMs
 */
function burstMarkdown(results, capMs) {
  const checkpoints = CHECKPOINTS_S.filter((c) => c * 1000 <= capMs)
  /** @type {(string | number)[][]} */
  const rows = []
  /** @type {string[]} */
  const notes = []
  const groups = [...new Set(results.map((r) => `${r.n}|${r.inputs}|${r.content}`))]
  for (const g of groups) {
    const rs = results.filter((r) => `${r.n}|${r.inputs}|${r.content}` === g)
    const best = bestPeer(rs, (r) => (r.complete ? r.allMs / 1000 : null), 'low')
    for (const r of rs) {
      const what = [r.n.toLocaleString('en'), r.inputs === 'glob' ? 'glob' : 'paths', r.content]
      if (r.error) {
        rows.push([...what, r.subject, `**${r.error}**`, '', '', '', '', ''])
        continue
      }
      const lost = r.perBurst?.[0]?.lost ?? 'n/a'
      const dup = r.perBurst?.[0]?.duplicated ?? 'n/a'
      rows.push([
        ...what,
        r.subject,
        r.following?.followingAtMs === null
          ? '**never**'
          : fmt(r.following.followingAtMs / 1000, 2),
        r.complete
          ? cell(r.allMs / 1000, best, r.kind, 3)
          : `**${r.delivered} of ${r.n} after ${capMs / 1000} s**`,
        r.arrived.join(' / '),
        fmt(r.burstCpuS, 2),
        `${lost} / ${dup} / ${r.unexpected}`,
        r.sigterm
          ? '(below)'
          : `${r.stop.exit}${r.stop.killed ? ' KILLED' : ''}, ${fmt(r.stop.stopMs / 1000, 2)} s`,
      ])
      if (!r.cpuQuiet?.quiet)
        notes.push(
          `- ${r.subject}, ${what.join(' ')}: its CPU never fell under 50 % of a core before the burst (last second ${fmt(r.cpuQuiet?.lastPercent, 0)} %)`,
        )
      if (r.following?.capped)
        notes.push(
          `- ${r.subject}, ${what.join(' ')}: the probes never showed it following (probe cap reached); the burst ran anyway`,
        )
      if (r.unexpected > 0)
        notes.push(
          `- ${r.subject}, ${what.join(' ')}: unexpected lines, e.g. ${JSON.stringify(r.examples)}`,
        )
      if (r.fds !== null && r.fds >= r.nofile - 16) {
        notes.push(
          `- ${r.subject}, ${what.join(' ')}: it held ${r.fds} fds, its whole open-file limit (${r.nofile})`,
        )
      }
      if (r.stderr) notes.push(`- ${r.subject}, ${what.join(' ')}: stderr: ${r.stderr}`)
    }
    const [n, inputs, content] = g.split('|')
    notes.push(
      `- ${Number(n).toLocaleString('en')} ${inputs} ${content}: ${bestNote([['all in output', best, 3, ' s']])}`,
    )
  }
  const table = markdownTable(
    [
      'files',
      'inputs',
      'at start',
      'subject',
      'following after s',
      'all in output s after the last append',
      `lines out at ${checkpoints.join(' / ')} s`,
      'CPU-s (burst)',
      'lost / dup / unexpected',
      'SIGTERM: exit, time',
    ],
    rows,
  )
  const sig = results.filter((r) => r.sigterm)
  const sigTable = markdownTable(
    [
      'files',
      'inputs',
      'subject',
      'exit',
      'SIGTERM to exit s',
      'killed after 15 s',
      'burst 1 lost / dup',
      'burst 2 lost / dup',
      'every line once',
    ],
    sig.map((r) => [
      r.n.toLocaleString('en'),
      r.inputs,
      r.subject,
      String(r.stop.exit),
      fmt(r.stop.stopMs / 1000, 2),
      r.stop.killed ? '**yes**' : 'no',
      `${r.perBurst[0].lost} / ${r.perBurst[0].duplicated}`,
      `${r.perBurst[1]?.lost ?? 'n/a'} / ${r.perBurst[1]?.duplicated ?? 'n/a'}`,
      r.exactlyOnce ? 'yes' : '**NO**',
    ]),
  )
  const commands = [...new Set(results.filter((r) => r.command).map((r) => `    ${r.command}`))]
  return [
    `### follow: burst: N idle files, then one line appended to each`,
    '',
    'Time from the last append (write(2) returned) to the last line seen in the output. "following after" is ./probe.mjs\'s rule on the probe files (from spawn). lost / dup / unexpected count the first burst in the output after the exit.',
    '',
    table,
    '',
    `SIGTERM right after the last write(2) of a second burst (the largest N):`,
    '',
    sig.length > 0 ? sigTable : '(none ran)',
    '',
    ...notes,
    '',
    'Commands (run in bench/out/follow/burst-N-INPUTS-CONTENT/):',
    '',
    ...commands,
  ].join('\n')
}
