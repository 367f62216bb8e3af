/**
 * The --once progress bar, as text: bytes done of the total, lines per second and the time
 * left, fitted to a terminal width. Pure: the caller measures, renders and writes it (to
 * stderr, after a `\r`, when stderr is a terminal).
 *
 *   [##########----------]  50.0%  256.0/512.0 MiB  2.41M lines/s  ETA 0:03
 *
 * When the width is short, the parts go in this order: the ETA, the rate, the bytes, the bar;
 * the percentage stays. ASCII only, so any terminal shows it.
 */

export interface ProgressState {
  /** Input bytes merged so far. */
  readonly doneBytes: number
  /** Input bytes in all (the inputs' sizes at the start). */
  readonly totalBytes: number
  /** Lines (or records) written so far. */
  readonly lines: number
  /** Time since the merge started. */
  readonly elapsedMs: number
}

const MIN_BAR = 10

/** One line of text, at most `width` characters, describing `state`. */
export function renderProgress(state: ProgressState, width: number): string {
  const fraction = progressFraction(state)
  const percent = `${(fraction * 100).toFixed(1).padStart(5)}%`
  const parts = [
    `${formatBytesPair(state.doneBytes, state.totalBytes)}`,
    `${formatCount(rate(state.lines, state.elapsedMs))} lines/s`,
    `ETA ${formatEta(state)}`,
  ]
  const room = Math.max(0, Math.floor(width))
  // Drop parts from the end until the bar (at least MIN_BAR wide) and the rest fit.
  for (let keep = parts.length; keep >= 0; keep--) {
    const tail = [percent, ...parts.slice(0, keep)].join('  ')
    const barWidth = room - tail.length - 3 // "[" "]" and a space
    if (barWidth >= MIN_BAR) return `${bar(fraction, barWidth)} ${tail}`
    if (keep === 0 && tail.length <= room) return tail
  }
  return percent.trim().slice(0, room)
}

/** Done / total, within [0, 1]; 1 when there is nothing to do. */
export function progressFraction(state: ProgressState): number {
  if (state.totalBytes <= 0) return 1
  return Math.min(1, Math.max(0, state.doneBytes / state.totalBytes))
}

/** Seconds left at the average rate so far, or null when it cannot be told yet. */
export function etaSeconds(state: ProgressState): number | null {
  const left = state.totalBytes - state.doneBytes
  if (left <= 0) return 0
  if (state.doneBytes <= 0 || state.elapsedMs <= 0) return null
  return (left * state.elapsedMs) / state.doneBytes / 1000
}

function bar(fraction: number, width: number): string {
  const filled = Math.round(fraction * width)
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`
}

function rate(count: number, elapsedMs: number): number {
  return elapsedMs > 0 ? (count * 1000) / elapsedMs : 0
}

function formatEta(state: ProgressState): string {
  const s = etaSeconds(state)
  return s === null ? '--:--' : formatDuration(s)
}

/** `m:ss`, or `h:mm:ss` from an hour up. */
export function formatDuration(seconds: number): string {
  const total = Math.max(0, Math.ceil(seconds))
  const h = Math.floor(total / 3600)
  const m = Math.floor((total % 3600) / 60)
  const s = String(total % 60).padStart(2, '0')
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`
}

/** 950, 12.3k, 4.56M */
export function formatCount(n: number): string {
  if (n < 1000) return String(Math.round(n))
  if (n < 1_000_000) return `${(n / 1000).toFixed(1)}k`
  return `${(n / 1_000_000).toFixed(2)}M`
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB']

/** `256.0/512.0 MiB`, in the unit of the total. */
export function formatBytesPair(done: number, total: number): string {
  let unit = 0
  while (unit < UNITS.length - 1 && Math.max(total, done) >= 1024 ** (unit + 1)) unit++
  const scale = 1024 ** unit
  const digits = unit === 0 ? 0 : 1
  return `${(done / scale).toFixed(digits)}/${(total / scale).toFixed(digits)} ${UNITS[unit]}`
}
