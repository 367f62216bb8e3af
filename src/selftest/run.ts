/**
 * One selftest run: writers write, their files are rotated, permissions flip, the output fails
 * for a while, and a real logmerge is SIGKILLed and restarted; at the end it is stopped with
 * SIGTERM and its output checked against what was written.
 */
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { checkOutput } from './check.js'
import { isCommitted } from './committed.js'
import { lineFor } from './lines.js'
import { LogmergeProcess } from './logmerge-process.js'
import type { SelftestOptions } from './options.js'
import { havePrlimit, setSoftFileSizeLimit, softFileSizeLimit } from './output-fault.js'
import { Random } from './random.js'
import type { Exercised, SelftestReport } from './report.js'
import { type RotationContext, rotate } from './rotate.js'
import { BIN, chooseUser, type Layout, prepareLayout, type RunAs, SetupError } from './setup.js'
import { failuresOf } from './verdict.js'
import { READABLE, Writer } from './writer.js'

/** How often the writers' timer fires. */
const TICK_MS = 10
/** About how often the output is made to fail (when it can be). */
const OUTPUT_FAULT_EVERY_MS = 3000
/** How often a due rotation looks again whether its writer is free. */
const BUSY_RETRY_MS = 50
/** After the writers stop, how long logmerge gets to catch up before SIGTERM. */
const CATCH_UP_MS = 60_000
/** How long logmerge may drain after SIGTERM (its own --shutdown-timeout is 30 s). */
const STOP_MS = 60_000
/** Restarts after logmerge exits by itself; more means it cannot run at all. */
const MAX_UNEXPECTED_EXITS = 5

export async function runScenario(
  opts: SelftestOptions,
  progress: (line: string) => void,
): Promise<SelftestReport> {
  const layout = await prepareLayout(opts.dir)
  const run = new Scenario(opts, layout, progress)
  try {
    return await run.execute()
  } finally {
    await run.cleanUp()
  }
}

class Scenario {
  readonly opts: SelftestOptions
  readonly layout: Layout
  readonly random: Random
  readonly writers: Writer[]
  readonly lm: LogmergeProcess
  readonly runAs: RunAs
  readonly ending = new AbortController()
  readonly progress: (line: string) => void
  readonly notExercised: string[] = []
  readonly exercised: Exercised = {
    kills: 0,
    starts: 0,
    downtimeMs: { min: Number.POSITIVE_INFINITY, max: 0 },
    rotations: {
      rename: { done: 0, whileDown: 0, skipped: 0 },
      copytruncate: { done: 0, whileDown: 0, skipped: 0 },
      truncate: { done: 0, whileDown: 0, skipped: 0 },
    },
    permissionFlips: { acrossRestart: 0, newFileUnreadable: 0 },
    outputFaults: { episodes: 0, skipped: 0 },
  }
  /** Permission flips still to be undone. */
  readonly #restores = new Set<Promise<void>>()
  #flipPermissions = false
  #interrupted = false
  /** A passing run in a temp dir of its own (without --keep): nothing to look at afterwards. */
  #removeDir = false
  #startedAt = Date.now()

  constructor(opts: SelftestOptions, layout: Layout, progress: (line: string) => void) {
    this.opts = opts
    this.layout = layout
    this.progress = progress
    this.random = new Random(opts.seed)
    const modes = opts.rotations
    this.writers = Array.from(
      { length: opts.writers },
      (_, i) =>
        new Writer(
          i,
          join(layout.inputs, `w${i}.log`),
          modes[i % modes.length] ?? null,
          this.random,
        ),
    )
    this.runAs = chooseUser(layout)
    this.lm = new LogmergeProcess({
      bin: BIN,
      args: [
        ...this.writers.map((w) => w.path),
        '-o',
        layout.output,
        '--state',
        layout.state,
        '--engine',
        opts.engine,
        '--from',
        'start',
        '--log-level',
        'info',
        ...opts.logmergeArgs,
      ],
      cwd: layout.outputDir,
      stderrFile: layout.stderrLog,
      ...(this.runAs.kind === 'nobody'
        ? { user: { uid: this.runAs.uid, gid: this.runAs.gid } }
        : {}),
    })
  }

  async execute(): Promise<SelftestReport> {
    const outputFaults = await this.#decideFaults()
    await this.#firstStart()
    this.#startedAt = Date.now()
    const stopWriting = this.#startWriting()
    const onSigint = () => {
      this.#interrupted = true
      this.ending.abort()
    }
    process.once('SIGINT', onSigint)
    const timer = setTimeout(() => this.ending.abort(), this.opts.durationMs)
    const ticker = setInterval(() => this.#tellProgress(), 10_000)
    try {
      await Promise.all([
        ...this.writers.map((w) => this.#rotationLoop(w)),
        this.opts.killEveryMs > 0 ? this.#killLoop() : null,
        outputFaults ? this.#outputFaultLoop() : null,
      ])
    } finally {
      clearTimeout(timer)
      clearInterval(ticker)
      process.off('SIGINT', onSigint)
    }
    const elapsedMs = Date.now() - this.#startedAt
    stopWriting()
    await Promise.all(this.#restores)
    // One last line each, after every rotation: the line whose arrival says logmerge caught up.
    for (const w of this.writers) {
      w.write(1, false)
      w.close()
    }
    this.lm.start()
    const caughtUp = await this.#catchUp()
    const finalExit = await this.lm.stop(STOP_MS)
    return this.#report(elapsedMs, caughtUp, finalExit)
  }

  /** Decides which faults can be done here; returns whether the output will be failed. */
  async #decideFaults(): Promise<boolean> {
    const { faults } = this.opts
    if (faults.has('chmod')) {
      if (this.runAs.kind === 'root') {
        this.notExercised.push(
          `permission flips: logmerge runs as root, which reads files whatever their mode (${this.runAs.why})`,
        )
      } else this.#flipPermissions = true
    }
    let output = false
    if (faults.has('output')) {
      output = await havePrlimit()
      if (!output) {
        this.notExercised.push(
          'output failures: `prlimit` (util-linux) is not installed, so the file size limit of the running logmerge cannot be lowered',
        )
      }
      this.notExercised.push(
        'a full disk (ENOSPC) itself: not simulated; the file size limit (EFBIG) takes the same retry path in logmerge, but the state file is not made to fail with it',
      )
    }
    if (this.opts.killEveryMs === 0) this.notExercised.push('SIGKILL: --kill-every 0')
    return output
  }

  /** Starts logmerge and waits for its first checkpoint (taken before it writes anything). */
  async #firstStart(): Promise<void> {
    this.lm.start()
    const deadline = Date.now() + 60_000
    while (!existsSync(this.layout.state)) {
      if (!this.lm.running || Date.now() > deadline) {
        await this.lm.kill()
        throw new SetupError(
          `logmerge did not start (no state file after ${this.lm.running ? '60 s' : 'it exited'}); see ${this.layout.stderrLog}:\n${tail(this.layout.stderrLog)}`,
        )
      }
      await sleep(25)
    }
    // Start it again (start() does nothing once the run has stopped or closed it).
    this.lm.onUnexpectedExit = () => {
      if (this.lm.unexpectedExits.length > MAX_UNEXPECTED_EXITS) return
      setTimeout(() => this.lm.start(), 500).unref()
    }
  }

  /** The writers' timer: each writes `rate` lines a second, in small batches. */
  #startWriting(): () => void {
    const { rate } = this.opts
    const due = this.writers.map(() => 0)
    let last = performance.now()
    const timer = setInterval(() => {
      const now = performance.now()
      const elapsed = now - last
      last = now
      this.writers.forEach((w, i) => {
        if (w.paused) {
          due[i] = 0
          return
        }
        const owed = (due[i] as number) + (rate * elapsed) / 1000
        const count = Math.floor(owed)
        due[i] = owed - count
        if (count > 0) w.write(count, this.random.chance(0.05))
      })
    }, TICK_MS)
    return () => clearInterval(timer)
  }

  /** Rotates `w` the way it is rotated, about every --rotate-every, until the end. */
  async #rotationLoop(w: Writer): Promise<void> {
    const mode = w.rotation
    if (mode === null) return
    const ctx: RotationContext = {
      random: this.random,
      committed: (path) => this.lm.running && isCommitted(this.layout.state, path),
      ending: this.ending.signal,
      flipPermissions: this.#flipPermissions,
      down: () => !this.lm.running,
      lateWrites: this.opts.faults.has('late-writes'),
    }
    while (await this.#pause(this.random.jitter(this.opts.rotateEveryMs))) {
      // A rotation that falls due while the writer's permissions are flipped waits for the
      // flip to end rather than losing its turn (a short run could otherwise do none).
      while (w.busy) if (!(await this.#pause(BUSY_RETRY_MS))) return
      w.busy = true
      try {
        const outcome = await rotate[mode](w, ctx)
        const count = this.exercised.rotations[mode]
        if (!outcome.done) count.skipped++
        else {
          count.done++
          if (outcome.whileDown) count.whileDown++
        }
        if (outcome.unreadable) this.exercised.permissionFlips.newFileUnreadable++
      } finally {
        w.busy = false
      }
    }
  }

  /** SIGKILL about every --kill-every; sometimes an input is unreadable across the restart. */
  async #killLoop(): Promise<void> {
    const every = this.opts.killEveryMs
    while (await this.#pause(this.random.jitter(every))) {
      await this.lm.kill()
      const flipped = this.#flipPermissions && this.random.chance(0.4) ? this.#claimWriter() : null
      if (flipped) {
        chmodSync(flipped.path, 0)
        this.exercised.permissionFlips.acrossRestart++
      }
      const down = this.random.between(0, every / 4)
      await sleep(down)
      this.exercised.downtimeMs.min = Math.min(this.exercised.downtimeMs.min, down)
      this.exercised.downtimeMs.max = Math.max(this.exercised.downtimeMs.max, down)
      this.lm.start()
      if (flipped) this.#restoreLater(flipped)
    }
  }

  /** A writer with no rotation or flip in progress, marked busy; null if none. */
  #claimWriter(): Writer | null {
    const w = this.random.pick(this.writers.filter((x) => !x.busy))
    if (w) w.busy = true
    return w ?? null
  }

  #restoreLater(w: Writer): void {
    const done = (async () => {
      await sleep(this.random.between(300, 1500))
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
    while (await this.#pause(this.random.jitter(OUTPUT_FAULT_EVERY_MS))) {
      const pid = this.lm.pid
      if (pid === null) continue
      const output = statSync(this.layout.output, { throwIfNoEntry: false })?.size ?? 0
      const state = statSync(this.layout.state, { throwIfNoEntry: false })?.size ?? 0
      const limit = output + this.random.int(0, 4096)
      // The limit binds every file logmerge writes: keep it well above the state file's size.
      if (limit < 64 * 1024 + 4 * state) {
        this.exercised.outputFaults.skipped++
        continue
      }
      const user = this.lm.spec.user
      const before = await softFileSizeLimit(pid, user)
      if (before === null || !(await setSoftFileSizeLimit(pid, String(limit), user))) continue
      this.exercised.outputFaults.episodes++
      await sleep(this.random.between(500, 2000))
      // A process killed meanwhile took its limit with it; its pid may be another's by now.
      if (this.lm.pid === pid) await setSoftFileSizeLimit(pid, before, user)
    }
  }

  /** Sleeps `ms`; false when the run ended meanwhile. */
  async #pause(ms: number): Promise<boolean> {
    if (this.ending.signal.aborted) return false
    try {
      await sleep(ms, undefined, { signal: this.ending.signal })
      return true
    } catch {
      return false
    }
  }

  /** Waits until every writer's last line is in the output (logmerge caught up). */
  async #catchUp(): Promise<boolean> {
    const last = this.writers.map((w) => Buffer.from(`${lineFor(w.id, w.seq - 1, w.generation)}\n`))
    const deadline = Date.now() + CATCH_UP_MS
    while (Date.now() < deadline) {
      const out = readOutput(this.layout.output)
      if (last.every((line) => out.includes(line))) return true
      await sleep(100)
    }
    return false
  }

  #tellProgress(): void {
    const written = this.writers.reduce((n, w) => n + w.seq, 0)
    const rotations = Object.values(this.exercised.rotations).reduce((n, r) => n + r.done, 0)
    const s = Math.round((Date.now() - this.#startedAt) / 1000)
    this.progress(
      `selftest: ${s}/${Math.round(this.opts.durationMs / 1000)} s: ${written} lines written, ${this.lm.kills} kills, ${rotations} rotations`,
    )
  }

  #report(
    elapsedMs: number,
    caughtUp: boolean,
    finalExit: Awaited<ReturnType<LogmergeProcess['stop']>>,
  ): SelftestReport {
    const written = this.writers.map((w) => w.written())
    const check = checkOutput(readOutput(this.layout.output), written)
    this.exercised.starts = this.lm.starts
    this.exercised.kills = this.lm.kills
    if (this.exercised.downtimeMs.min > this.exercised.downtimeMs.max)
      this.exercised.downtimeMs.min = 0
    // After Ctrl-C, logmerge got the terminal's SIGINT too: its clean exit is no failure.
    const unexpected = this.lm.unexpectedExits.filter((x) => !(this.#interrupted && x.code === 0))
    const failures = failuresOf(check, {
      unexpectedExits: unexpected,
      finalExit,
      stopTimeoutMs: STOP_MS,
    })
    const ok = failures.length === 0
    const kept = !ok || this.opts.keep || !this.layout.temporary
    const runAs =
      this.runAs.kind === 'nobody'
        ? `user nobody (uid ${this.runAs.uid}), since root ignores file modes`
        : this.runAs.kind === 'root'
          ? 'root'
          : 'the current user'
    const report: SelftestReport = {
      ok,
      exitCode: ok ? 0 : 1,
      failures,
      engine: this.opts.engine,
      seed: this.opts.seed,
      plannedMs: this.opts.durationMs,
      elapsedMs,
      interrupted: this.#interrupted,
      dir: this.layout.dir,
      kept,
      settings: {
        killEveryMs: this.opts.killEveryMs,
        rotateEveryMs: this.opts.rotateEveryMs,
        writers: this.writers.map((w) => ({ id: w.id, rotation: w.rotation })),
        ratePerWriter: this.opts.rate,
        faults: [...this.opts.faults],
        logmergeArgs: [...this.opts.logmergeArgs],
      },
      logmerge: {
        runAs,
        unexpectedExits: unexpected,
        finalExit,
        caughtUp,
        stderr: { counts: { ...this.lm.stderr.counts }, examples: [...this.lm.stderr.examples] },
        stderrLog: this.layout.stderrLog,
      },
      exercised: this.exercised,
      notExercised: this.notExercised,
      check,
      written,
    }
    if (kept) writeFileSync(this.layout.reportFile, `${JSON.stringify(report, null, 2)}\n`)
    else this.#removeDir = true
    return report
  }

  /** Whatever happened: no logmerge left running, no input left unreadable, temp dir removed. */
  async cleanUp(): Promise<void> {
    this.ending.abort()
    await this.lm.close()
    await Promise.all(this.#restores)
    for (const w of this.writers) {
      try {
        chmodSync(w.path, READABLE)
      } catch {}
    }
    if (this.#removeDir) await rm(this.layout.dir, { recursive: true, force: true })
  }
}

function readOutput(path: string): Buffer {
  try {
    return readFileSync(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return Buffer.alloc(0)
    throw err
  }
}

/** The last lines of a file, for an error message. */
function tail(path: string, lines = 10): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n')
  } catch {
    return '(no output)'
  }
}
