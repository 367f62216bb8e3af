/**
 * One selftest run: writers write, their files are rotated, permissions flip, the output fails
 * for a while, and a real logmerge is SIGKILLed and restarted (the faults: faults.ts); at the
 * end it is stopped with SIGTERM and its output checked against what was written.
 */
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { checkOutput } from './check.js'
import { Faults } from './faults.js'
import { lineFor } from './lines.js'
import { LogmergeProcess } from './logmerge-process.js'
import type { SelftestOptions } from './options.js'
import { Random } from './random.js'
import type { Exercised, SelftestReport } from './report.js'
import { BIN, chooseUser, type Layout, prepareLayout, type RunAs, SetupError } from './setup.js'
import { failuresOf } from './verdict.js'
import { READABLE, Writer } from './writer.js'

/** How often the writers' timer fires. */
const TICK_MS = 10
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
  /** What is done to logmerge while the writers write (faults.ts). */
  readonly faults: Faults
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
    this.lm = logmergeUnderTest(opts, layout, this.writers, this.runAs)
    this.faults = new Faults({
      opts,
      layout,
      random: this.random,
      writers: this.writers,
      lm: this.lm,
      runAs: this.runAs,
      ending: this.ending.signal,
      exercised: this.exercised,
      notExercised: this.notExercised,
    })
  }

  async execute(): Promise<SelftestReport> {
    await this.faults.decide()
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
      await this.faults.run()
    } finally {
      clearTimeout(timer)
      clearInterval(ticker)
      process.off('SIGINT', onSigint)
    }
    const elapsedMs = Date.now() - this.#startedAt
    stopWriting()
    await this.faults.restored()
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
    this.#countProcesses()
    // After Ctrl-C, logmerge got the terminal's SIGINT too: its clean exit is no failure.
    const unexpected = this.lm.unexpectedExits.filter((x) => !(this.#interrupted && x.code === 0))
    const failures = failuresOf(check, {
      unexpectedExits: unexpected,
      finalExit,
      stopTimeoutMs: STOP_MS,
    })
    const ok = failures.length === 0
    const kept = !ok || this.opts.keep || !this.layout.temporary
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
        runAs: describeUser(this.runAs),
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

  /** The processes' starts and kills into `exercised`, and no downtime when none was met. */
  #countProcesses(): void {
    this.exercised.starts = this.lm.starts
    this.exercised.kills = this.lm.kills
    if (this.exercised.downtimeMs.min > this.exercised.downtimeMs.max)
      this.exercised.downtimeMs.min = 0
  }

  /** Whatever happened: no logmerge left running, no input left unreadable, temp dir removed. */
  async cleanUp(): Promise<void> {
    this.ending.abort()
    await this.lm.close()
    await this.faults.restored()
    for (const w of this.writers) {
      try {
        chmodSync(w.path, READABLE)
      } catch {}
    }
    if (this.#removeDir) await rm(this.layout.dir, { recursive: true, force: true })
  }
}

/**
 * The logmerge under test: every writer's file from its start, into the output, with the state
 * file it resumes from after each SIGKILL; as `runAs` says.
 */
function logmergeUnderTest(
  opts: SelftestOptions,
  layout: Layout,
  writers: readonly Writer[],
  runAs: RunAs,
): LogmergeProcess {
  return new LogmergeProcess({
    bin: BIN,
    args: [
      ...writers.map((w) => w.path),
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
    ...(runAs.kind === 'nobody' ? { user: { uid: runAs.uid, gid: runAs.gid } } : {}),
  })
}

/** As whom logmerge ran, for the report. */
function describeUser(runAs: RunAs): string {
  return runAs.kind === 'nobody'
    ? `user nobody (uid ${runAs.uid}), since root ignores file modes`
    : runAs.kind === 'root'
      ? 'root'
      : 'the current user'
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
