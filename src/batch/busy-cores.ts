/**
 * How many cores other work keeps busy, for the choices of `--once --order time` (a reader
 * thread, partition threads: each only pays with a core nobody else uses).
 *
 * The 1-minute load average alone lags: a machine busy until a few seconds ago still shows a
 * load near its cores for a minute or more (seen on the benchmark machine: 2.6 with both cores
 * idle), and the merge then declined a thread that would have run on a free core. So it is
 * taken together with the tasks runnable right now (the 4th field of /proc/loadavg, `1/77`,
 * which counts this process): the smaller of the two. Busy now but quiet over the minute reads
 * as the load average; idle now reads as idle. Elsewhere than Linux, the load average.
 */
import { readFileSync } from 'node:fs'
import { loadavg } from 'node:os'

/** Cores busy with other work, from /proc/loadavg's text and the 1-minute load average. */
export function busyCores(procLoadavg: string | null, load1: number): number {
  const running = procLoadavg === null ? Number.NaN : Number(/ (\d+)\/\d+ /.exec(procLoadavg)?.[1])
  if (!Number.isFinite(running)) return load1
  return Math.min(load1, Math.max(0, running - 1))
}

/** busyCores on this machine now. */
export function busyCoresNow(): number {
  let text: string | null = null
  try {
    text = readFileSync('/proc/loadavg', 'utf8')
  } catch {}
  return busyCores(text, loadavg()[0] ?? 0)
}
