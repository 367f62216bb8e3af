/**
 * The --once progress bar on stderr (renderProgress draws it). On a terminal it is redrawn in
 * place at most 10 times a second and cleared at the end, so it leaves nothing behind. Forced
 * with --progress onto something that is not a terminal (a file, a pipe to a log), it writes a
 * plain line at most once a second and a last one at the end, since `\r` means nothing there.
 */
import { stat } from 'node:fs/promises'
import { renderProgress } from './render.js'

const TERMINAL_EVERY_MS = 100
const PLAIN_EVERY_MS = 1000
const DEFAULT_WIDTH = 80

export interface ProgressStream {
  write(text: string): unknown
  readonly isTTY?: boolean
  readonly columns?: number
}

/** Whether this run shows a progress bar: --progress/--no-progress, else --once on a terminal. */
export function wantsProgress(
  config: { readonly once: boolean; readonly progress?: boolean },
  stream: ProgressStream = process.stderr,
): boolean {
  if (!config.once) return false
  return config.progress ?? stream.isTTY === true
}

/** The bytes of `paths` now (the bar's total); a file gone meanwhile counts 0. */
export async function totalSize(paths: readonly string[]): Promise<number> {
  const sizes = await Promise.all(
    paths.map((p) =>
      stat(p).then(
        (st) => st.size,
        () => 0,
      ),
    ),
  )
  return sizes.reduce((a, b) => a + b, 0)
}

export class ProgressBar {
  readonly #stream: ProgressStream
  readonly #started = Date.now()
  readonly #terminal: boolean
  #total = 0
  #lastDraw = 0
  #drawn = false
  #done = 0
  #lines = 0

  constructor(stream: ProgressStream = process.stderr) {
    this.#stream = stream
    this.#terminal = stream.isTTY === true
  }

  /** The input bytes to get through (the sizes at the start). */
  set total(bytes: number) {
    this.#total = bytes
  }

  /** `done` input bytes merged, `lines` written so far: redrawn if it is time. */
  update(done: number, lines: number): void {
    this.#done = done
    this.#lines = lines
    const now = Date.now()
    const every = this.#terminal ? TERMINAL_EVERY_MS : PLAIN_EVERY_MS
    if (this.#drawn && now - this.#lastDraw < every) return
    this.#lastDraw = now
    this.#draw()
  }

  /** The end: a terminal's bar is cleared; elsewhere the last figures are written. */
  finish(): void {
    if (this.#terminal) {
      if (this.#drawn) this.#stream.write(`\r${' '.repeat(this.#width())}\r`)
      return
    }
    this.#draw()
  }

  #width(): number {
    return Math.max(20, (this.#stream.columns ?? DEFAULT_WIDTH) - 1)
  }

  #draw(): void {
    const line = renderProgress(
      {
        doneBytes: this.#done,
        totalBytes: this.#total,
        lines: this.#lines,
        elapsedMs: Date.now() - this.#started,
      },
      this.#width(),
    )
    this.#stream.write(this.#terminal ? `\r${line}` : `progress: ${line}\n`)
    this.#drawn = true
  }
}
