/**
 * The faults a selftest run (run.ts) does to logmerge while the writers write, each on its
 * own schedule until the run ends: rotations (rotate.ts), SIGKILLs and restarts, permission
 * flips across a restart, and output failures (output-fault.ts); each counted in `exercised`.
 * Apart from the run because the run's own part is the writing and the ending (catch up,
 * stop, check, report), which holds whatever faults were done.
 */
import { chmodSync, statSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { isCommitted } from './committed.js'
import type { LogmergeProcess } from './logmerge-process.js'
import type { SelftestOptions } from './options.js'
import { havePrlimit, setSoftFileSizeLimit, softFileSizeLimit } from './output-fault.js'
import type { Random } from './random.js'
import type { Exercised } from './report.js'
import { type RotationContext, rotate } from './rotate.js'
import type { Layout, RunAs } from './setup.js'
import { READABLE, type Writer } from './writer.js'

/** About how often the output is made to fail (when it can be). */
const OUTPUT_FAULT_EVERY_MS = 3000
/** How often a due rotation looks again whether its writer is free. */
const BUSY_RETRY_MS = 50

/** What the faults act on and count; shared with the run. */
export interface FaultTargets {
  readonly opts: SelftestOptions
  readonly layout: Layout
  readonly random: Random
  readonly writers: readonly Writer[]
  readonly lm: LogmergeProcess
  readonly runAs: RunAs
  /** Aborted when the run ends: every fault loop stops. */
  readonly ending: AbortSignal
  readonly exercised: Exercised
  readonly notExercised: string[]
}

export class Faults {
  readonly #run: FaultTargets
  /** Permission flips still to be undone. */
  readonly #restores = new Set<Promise<void>>()
  #flipPermissions = false
  #failOutput = false

  constructor(run: FaultTargets) {
    this.#run = run
  }

  /**
   * Decides which faults can be done here (what cannot is said in notExercised); before
   * run().
   */
  async decide(): Promise<void> {
    const { opts, runAs, notExercised } = this.#run
    const { faults } = opts
    if (faults.has('chmod')) {
      if (runAs.kind === 'root') {
        notExercised.push(
          `permission flips: logmerge runs as root, which reads files whatever their mode (${runAs.why})`,
        )
      } else this.#flipPermissions = true
    }
    let output = false
    if (faults.has('output')) {
      output = await havePrlimit()
      if (!output) {
        notExercised.push(
          'output failures: `prlimit` (util-linux) is not installed, so the file size limit of the running logmerge cannot be lowered',
        )
      }
      notExercised.push(
        'a full disk (ENOSPC) itself: not simulated; the file size limit (EFBIG) takes the same retry path in logmerge, but the state file is not made to fail with it',
      )
    }
    if (opts.killEveryMs === 0) notExercised.push('SIGKILL: --kill-every 0')
    this.#failOutput = output
  }

  /** Every fault loop, until the run ends. */
  async run(): Promise<void> {
    const { writers, opts } = this.#run
    await Promise.all([
      ...writers.map((w) => this.#rotationLoop(w)),
      opts.killEveryMs > 0 ? this.#killLoop() : null,
      this.#failOutput ? this.#outputFaultLoop() : null,
    ])
  }

  /** Resolves once every permission flip is undone. */
  async restored(): Promise<void> {
    await Promise.all(this.#restores)
  }

  /** Rotates `w` the way it is rotated, about every --rotate-every, until the end. */
  async #rotationLoop(w: Writer): Promise<void> {
    const { random, lm, layout, ending, opts, exercised } = this.#run
    const mode = w.rotation
    if (mode === null) return
    const ctx: RotationContext = {
      random,
      committed: (path) => lm.running && isCommitted(layout.state, path),
      ending,
      flipPermissions: this.#flipPermissions,
      down: () => !lm.running,
      lateWrites: opts.faults.has('late-writes'),
    }
    while (await this.#pause(random.jitter(opts.rotateEveryMs))) {
      // A rotation that falls due while the writer's permissions are flipped waits for the
      // flip to end rather than losing its turn (a short run could otherwise do none).
      while (w.busy) if (!(await this.#pause(BUSY_RETRY_MS))) return
      w.busy = true
      try {
        const outcome = await rotate[mode](w, ctx)
        const count = exercised.rotations[mode]
        if (!outcome.done) count.skipped++
        else {
          count.done++
          if (outcome.whileDown) count.whileDown++
        }
        if (outcome.unreadable) exercised.permissionFlips.newFileUnreadable++
      } finally {
        w.busy = false
      }
    }
  }

  /** SIGKILL about every --kill-every; sometimes an input is unreadable across the restart. */
  async #killLoop(): Promise<void> {
    const { opts, random, lm, exercised } = this.#run
    const every = opts.killEveryMs
    while (await this.#pause(random.jitter(every))) {
      await lm.kill()
      const flipped = this.#flipPermissions && random.chance(0.4) ? this.#claimWriter() : null
      if (flipped) {
        chmodSync(flipped.path, 0)
        exercised.permissionFlips.acrossRestart++
      }
      const down = random.between(0, every / 4)
      await sleep(down)
      exercised.downtimeMs.min = Math.min(exercised.downtimeMs.min, down)
      exercised.downtimeMs.max = Math.max(exercised.downtimeMs.max, down)
      lm.start()
      if (flipped) this.#restoreLater(flipped)
    }
  }

  /** A writer with no rotation or flip in progress, marked busy; null if none. */
  #claimWriter(): Writer | null {
    const { random, writers } = this.#run
    const w = random.pick(writers.filter((x) => !x.busy))
    if (w) w.busy = true
    return w ?? null
  }

  #restoreLater(w: Writer): void {
    const done = (async () => {
      await sleep(this.#run.random.between(300, 1500))
      chmodSync(w.path, READABLE)
      w.busy = false
    })()
    this.#restores.add(done)
    void done.finally(() => this.#restores.delete(done))
  }

  /**
   * About every few seconds, lower the running logmerge's file size limit to about its output's
   * size for half a second to two seconds: its writes fail with EFBIG until the limit is back.
   */
  async #outputFaultLoop(): Promise<void> {
    const { random, lm, layout, exercised } = this.#run
    while (await this.#pause(random.jitter(OUTPUT_FAULT_EVERY_MS))) {
      const pid = lm.pid
      if (pid === null) continue
      const output = statSync(layout.output, { throwIfNoEntry: false })?.size ?? 0
      const state = statSync(layout.state, { throwIfNoEntry: false })?.size ?? 0
      const limit = output + random.int(0, 4096)
      // The limit binds every file logmerge writes: keep it well above the state file's size.
      if (limit < 64 * 1024 + 4 * state) {
        exercised.outputFaults.skipped++
        continue
      }
      const user = lm.spec.user
      const before = await softFileSizeLimit(pid, user)
      if (before === null || !(await setSoftFileSizeLimit(pid, String(limit), user))) continue
      exercised.outputFaults.episodes++
      await sleep(random.between(500, 2000))
      // A process killed meanwhile took its limit with it; its pid may be another's by now.
      if (lm.pid === pid) await setSoftFileSizeLimit(pid, before, user)
    }
  }

  /** Sleeps `ms`; false when the run ended meanwhile. */
  async #pause(ms: number): Promise<boolean> {
    if (this.#run.ending.aborted) return false
    try {
      await sleep(ms, undefined, { signal: this.#run.ending })
      return true
    } catch {
      return false
    }
  }
}
