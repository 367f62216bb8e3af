// @ts-check
/**
 * What the follow benchmarks read about a running follower from /proc: CPU time (utime+stime
 * of all its threads, in clock ticks), memory, threads and fds (from ../idle.mjs and
 * ../throughput.mjs), which files it holds open, and the open-file limits in effect.
 */

import { spawnSync } from 'node:child_process'
import { readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { readStatus } from '../idle.mjs'
import { sleep } from '../lib.mjs'
import { clockTicks, cpuTicks } from '../throughput.mjs'

export { clockTicks, cpuTicks, readStatus }

/** @type {number | undefined} */
let ticks
/** @returns {number} CLK_TCK, asked once */
export function ticksPerSecond() {
  ticks ??= clockTicks()
  return ticks
}

/**
 * CPU seconds a process has used so far (all threads), or null when it is gone.
 * @param {number} pid
 * @returns {number | null}
 */
export function cpuSeconds(pid) {
  const t = cpuTicks(pid)
  return t === null ? null : t / ticksPerSecond()
}

/**
 * The paths a process holds open (its fds' link targets).
 * @param {number} pid
 * @returns {Set<string>}
 */
export function openPaths(pid) {
  /** @type {Set<string>} */
  const paths = new Set()
  let fds = []
  try {
    fds = readdirSync(`/proc/${pid}/fd`)
  } catch {
    return paths
  }
  for (const fd of fds) {
    try {
      paths.add(readlinkSync(`/proc/${pid}/fd/${fd}`))
    } catch {}
  }
  return paths
}

/**
 * The soft RLIMIT_NOFILE of a process (`self` for this one), or null.
 * @param {number | 'self'} pid
 * @returns {number | null}
 */
export function nofileLimit(pid) {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'))
    return m?.[1] ? Number(m[1]) : null
  } catch {
    return null
  }
}

/** @returns {number} the hard open-file limit a child of this process can be given */
export function hardNofile() {
  const r = spawnSync('bash', ['-c', 'ulimit -Hn'], { encoding: 'utf8' })
  const text = `${r.stdout}`.trim()
  if (text === 'unlimited') return 1 << 20
  const n = Number(text)
  return Number.isInteger(n) && n > 0 ? n : 1024
}

/**
 * Waits until a process used less than `percent` of a core over the last `windowMs`, or
 * `capMs` passed, or it is gone.
 * @param {number} pid @param {{ percent: number, windowMs: number, capMs: number }} o
 * @returns {Promise<{ quiet: boolean, waitedMs: number, lastPercent: number }>}
 */
export async function waitCpuBelow(pid, o) {
  const t0 = performance.now()
  let last = cpuSeconds(pid)
  let lastPercent = Number.NaN
  while (last !== null && performance.now() - t0 < o.capMs) {
    const w0 = performance.now()
    await sleep(o.windowMs)
    const now = cpuSeconds(pid)
    if (now === null) break
    lastPercent = ((now - last) / ((performance.now() - w0) / 1000)) * 100
    last = now
    if (lastPercent < o.percent) {
      return { quiet: true, waitedMs: performance.now() - t0, lastPercent }
    }
  }
  return { quiet: false, waitedMs: performance.now() - t0, lastPercent }
}
