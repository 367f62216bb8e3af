/**
 * Many files changing at once (issue 15), on the real bin/logmerge for every engine: 2,000 empty
 * files followed through a glob, and the same files named one by one, one line appended to each
 * while following: every line arrives; then a second burst and SIGTERM right after its last
 * append: every line of both is written once and logmerge exits 0.
 *
 * Correctness, not speed: the bounds are generous (a loaded CI machine), only so that a
 * regression to "never" (the follow path once took 27 s for 1,000 such files, and 10,000 never
 * arrived) fails. How fast is measured by bench/follow.mjs (docs/performance.md).
 */
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect } from 'vitest'
import {
  type Child,
  completeLines,
  ENGINES,
  expectMerged,
  Journal,
  spawnLogmerge,
  test,
  uniqueLines,
  waitFor,
  waitForAll,
} from './helpers.js'

const FILES = 2000

/** Makes `n` empty files under `dir`; returns their paths. */
function emptyFiles(dir: string, n: number): string[] {
  mkdirSync(dir)
  const paths = Array.from({ length: n }, (_, i) => join(dir, `f${String(i).padStart(4, '0')}.log`))
  for (const p of paths) writeFileSync(p, '')
  return paths
}

/** One line appended to each file, recorded. */
function burst(paths: readonly string[], journal: Journal, name: string): void {
  for (const p of paths) {
    const [line] = uniqueLines(name, 1) as [string]
    appendFileSync(p, `${line}\n`)
    journal.record(p, [line])
  }
}

/** Waits until logmerge follows: a probe appended to the last file has come out. */
async function following(lm: Child, out: string, last: string, journal: Journal): Promise<void> {
  // The first probe that arrives shows the files are open; with --from start, every probe
  // arrives in the end, so all of them are recorded.
  const sent: string[] = []
  await waitFor(
    () => {
      const [line] = uniqueLines('probe', 1) as [string]
      appendFileSync(last, `${line}\n`)
      sent.push(line)
      const have = new Set(completeLines(out))
      return sent.some((l) => have.has(l))
    },
    { proc: lm, timeout: 60_000, interval: 200, what: 'logmerge to follow' },
  )
  journal.record(last, sent)
  await waitForAll(out, sent, { proc: lm, timeout: 20_000 })
}

describe.each(ENGINES)('engine %s', (engine) => {
  for (const how of ['a glob', 'paths one by one'] as const) {
    test(`${FILES} empty files through ${how}: a line appended to each arrives; a second burst and SIGTERM right after: every line once, exit 0`, async ({
      tmp,
    }) => {
      const paths = emptyFiles(join(tmp, 'logs'), FILES)
      const out = join(tmp, 'out.log')
      const inputs = how === 'a glob' ? ['logs/*.log'] : paths
      // --from start: every probe counts, so the journal is exact.
      const lm = spawnLogmerge(['--engine', engine, '--from', 'start', '-o', out, ...inputs], {
        cwd: tmp,
      })
      const journal = new Journal()
      await following(lm, out, paths[paths.length - 1] as string, journal)
      burst(paths, journal, 'one')
      await waitForAll(out, journal.all, { proc: lm, timeout: 20_000 })
      burst(paths, journal, 'two')
      lm.kill('SIGTERM')
      expect(await lm.exited, lm.stderr()).toEqual({ code: 0, signal: null })
      expectMerged(completeLines(out), journal)
    })
  }
})
