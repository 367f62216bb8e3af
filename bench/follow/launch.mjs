// @ts-check
/**
 * Starting a follower (logmerge or a peer) under a chosen open-file limit and stopping it the
 * way systemd would: SIGTERM, then SIGKILL after a grace period, noting how long the exit
 * took and whether the kill was needed. `prlimit --nofile=N:N -- cmd` execs, so the pid we
 * hold is the follower's own (its /proc entries are what we sample).
 */

import { spawn } from 'node:child_process'
import { closeSync, openSync } from 'node:fs'
import { sleep, trackChild } from '../lib.mjs'

/**
 * @typedef {object} LaunchSpec
 * @property {string[]} argv       the program and its arguments
 * @property {string} display      the command as a user would type it (for the report)
 * @property {string} cwd
 * @property {number} nofile       RLIMIT_NOFILE, soft and hard
 * @property {string} [stdoutPath] append its stdout to this file (else it is discarded)
 */

/**
 * @typedef {object} Stopped
 * @property {number | string | null} exit   the exit code, or the signal's name
 * @property {number} stopMs                 from the SIGTERM to the exit
 * @property {boolean} killed                true when SIGKILL was needed
 */

/**
 * @typedef {object} Running
 * @property {number} pid
 * @property {string} display
 * @property {() => boolean} alive
 * @property {() => string} stderr
 * @property {(graceMs?: number) => Promise<Stopped>} stop  SIGTERM, SIGKILL after graceMs
 * @property {() => Promise<void>} kill                     SIGKILL (cleanup after a failure)
 */

/** @param {LaunchSpec} spec @returns {Running} */
export function launch(spec) {
  const out = spec.stdoutPath === undefined ? 'ignore' : openSync(spec.stdoutPath, 'a')
  const child = spawn('prlimit', [`--nofile=${spec.nofile}:${spec.nofile}`, '--', ...spec.argv], {
    cwd: spec.cwd,
    stdio: ['ignore', out, 'pipe'],
  })
  if (typeof out === 'number') closeSync(out)
  const run = trackChild(child)
  const pid = child.pid
  if (pid === undefined) throw new Error(`could not start ${spec.display}`)
  /** @type {Promise<Stopped> | undefined} */
  let stopping
  return {
    pid,
    display: spec.display,
    alive: () => run.alive,
    stderr: () => run.stderr,
    stop: (graceMs = 15_000) => {
      stopping ??= (async () => {
        const t0 = performance.now()
        if (!run.alive) {
          const { code, signal } = await run.exited
          return { exit: signal ?? code, stopMs: 0, killed: false }
        }
        child.kill('SIGTERM')
        let killed = false
        const killer = setTimeout(() => {
          killed = true
          child.kill('SIGKILL')
        }, graceMs)
        const { code, signal } = await run.exited
        clearTimeout(killer)
        return { exit: signal ?? code, stopMs: performance.now() - t0, killed }
      })()
      return stopping
    },
    kill: async () => {
      if (!run.alive) return
      child.kill('SIGKILL')
      await Promise.race([run.exited, sleep(5000)])
    },
  }
}
