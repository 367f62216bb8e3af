/**
 * The real logmerge under test: spawned from this package's own bin with the running node,
 * killed with SIGKILL and started again, stopped with SIGTERM at the end. Its stderr goes to a
 * file (one header line per start) and is tallied as it comes (see StderrTally).
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { appendFileSync } from 'node:fs'
import { StderrTally } from './stderr-tally.js'

export interface LogmergeSpec {
  readonly bin: string
  readonly args: readonly string[]
  readonly cwd: string
  /** Where its stderr is appended. */
  readonly stderrFile: string
  /** Run it as this user (the selftest runs as root; root ignores file modes). */
  readonly user?: { readonly uid: number; readonly gid: number }
}

export interface Exit {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

export interface UnexpectedExit extends Exit {
  /** Which start it was (1-based). */
  readonly start: number
  readonly afterMs: number
}

export class LogmergeProcess {
  readonly spec: LogmergeSpec
  readonly stderr = new StderrTally()
  starts = 0
  kills = 0
  readonly unexpectedExits: UnexpectedExit[] = []
  /** Called when it exits without being asked to. */
  onUnexpectedExit: (() => void) | null = null
  #child: ChildProcess | null = null
  /** Stopped or closed: no more starts (a late restart timer must not leave one running). */
  #done = false
  #exited: Promise<Exit> = Promise.resolve({ code: null, signal: null })

  constructor(spec: LogmergeSpec) {
    this.spec = spec
  }

  get running(): boolean {
    return this.#child !== null
  }

  get pid(): number | null {
    return this.#child?.pid ?? null
  }

  start(): void {
    if (this.#child || this.#done) return
    const n = ++this.starts
    const startedAt = Date.now()
    appendFileSync(this.spec.stderrFile, `--- selftest: start ${n}, ${new Date().toISOString()}\n`)
    const child = spawn(process.execPath, [this.spec.bin, ...this.spec.args], {
      cwd: this.spec.cwd,
      stdio: ['ignore', 'ignore', 'pipe'],
      ...(this.spec.user ?? {}),
    })
    this.#child = child
    child.stderr?.on('data', (chunk: Buffer) => {
      appendFileSync(this.spec.stderrFile, chunk)
      this.stderr.feed(chunk)
    })
    this.#exited = new Promise<Exit>((resolve) => {
      child.once('error', (err) => {
        appendFileSync(
          this.spec.stderrFile,
          `--- selftest: cannot start logmerge: ${err.message}\n`,
        )
        resolve({ code: null, signal: null })
      })
      child.once('close', (code, signal) => resolve({ code, signal }))
    })
    void this.#exited.then((exit) => {
      if (this.#child !== child) return // killed or stopped on purpose
      this.#child = null
      this.stderr.end()
      this.unexpectedExits.push({ ...exit, start: n, afterMs: Date.now() - startedAt })
      this.onUnexpectedExit?.()
    })
  }

  /** SIGKILL, and wait until it is gone. */
  async kill(): Promise<void> {
    const child = this.#child
    if (!child) return
    this.#child = null
    child.kill('SIGKILL')
    await this.#exited
    this.stderr.end()
    this.kills++
  }

  /** Whatever state it is in: no process left running, and none started later. */
  async close(): Promise<void> {
    this.#done = true
    await this.kill()
  }

  /** SIGTERM (drain and exit 0 expected); SIGKILL after `timeoutMs`. Null when not running. */
  async stop(timeoutMs: number): Promise<(Exit & { timedOut: boolean }) | null> {
    this.#done = true
    const child = this.#child
    if (!child) return null
    this.#child = null
    child.kill('SIGTERM')
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<null>((resolve) => {
      timer = setTimeout(() => resolve(null), timeoutMs)
    })
    const exit = await Promise.race([this.#exited, late])
    clearTimeout(timer)
    if (exit) {
      this.stderr.end()
      return { ...exit, timedOut: false }
    }
    child.kill('SIGKILL')
    const killed = await this.#exited
    this.stderr.end()
    return { ...killed, timedOut: true }
  }
}
