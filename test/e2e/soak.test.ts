/**
 * The mixed soak (issue 16): exactly once across SIGKILL, for every engine, while files are
 * rotated in each way logmerge supports, on a machine whose cores are taken by other work.
 *
 * Four writer processes (soak-writer.mjs), one per way of rotating: rename to a new name,
 * copytruncate to a new copy, copytruncate with the copy written in place over the last one
 * (fs.copyFileSync keeps that copy's inode), and plain truncate. logmerge (`bin/logmerge`,
 * following, `--state`) is SIGKILLed at random moments and started again, while the writers go
 * on: 0.3-1 s after it is ready (following), or for one kill in four 0.3-1 s after it was
 * started (on a loaded machine often during its start-up). At the end every line written is in the output exactly once,
 * and each writer's lines are in the order it wrote them, across all its generations.
 *
 * What a truncate (and a copy written over the last copy) may promise: it destroys lines, and a
 * line destroyed before logmerge made it durable is not recoverable by any reader. So those
 * writers destroy only lines that are in the output up to the size the last checkpoint recorded
 * (soak-writer.mjs; docs/checkpoints.md, "Truncation"): the check below is then exact.
 *
 * LOGMERGE_SOAK=N: N kills per engine instead of 8 (the long soak, figures in
 * docs/checkpoints.md). LOGMERGE_SOAK_BUSY=N: N busy loops (`node -e 'for(;;){}'`) run for the
 * whole test; 2 by default with LOGMERGE_SOAK, none in the bounded run of `npm test`, whose other
 * files load the machine already. LOGMERGE_SEED fixes the kill schedule. LOGMERGE_SOAK_LOG sets
 * logmerge's --log-level (info by default; a failed run's stderr is kept with it).
 */
import { cpSync, mkdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect } from 'vitest'
import { Random } from '../../src/selftest/random.js'
import {
  type Child,
  completeLines,
  ENGINES,
  expectMerged,
  Journal,
  type SoakRotation,
  type SoakWritten,
  spawnBusyLoops,
  spawnLogmerge,
  spawnSoakWriter,
  stop,
  stopSoakWriter,
  tally,
  test,
  waitFor,
  waitForAll,
} from './helpers.js'
import { generationOf, soakReport } from './soak-report.js'
import { lineFor } from './writer-child.mjs'

const KILLS = Number(process.env.LOGMERGE_SOAK ?? 8)
const BUSY = Number(process.env.LOGMERGE_SOAK_BUSY ?? (process.env.LOGMERGE_SOAK ? 2 : 0))
const SEED = Number(process.env.LOGMERGE_SEED ?? 20261207)
/** Each writer's pace, and how often it rotates. */
const RATE = 300
const ROTATE_MS: readonly [number, number] = [400, 1200]
const WRITERS: readonly { readonly name: string; readonly mode: SoakRotation }[] = [
  { name: 'ren', mode: 'rename' },
  { name: 'cpy', mode: 'copy' },
  { name: 'cpi', mode: 'copy-in-place' },
  { name: 'trn', mode: 'truncate' },
]

describe.each(ENGINES)('engine %s', (engine) => {
  test(`every line once, in order, across ${KILLS} SIGKILLs and rename, copytruncate (new and in-place copies) and truncate rotations, ${BUSY} busy loops (seed ${SEED})`, {
    timeout: 90_000 + KILLS * 8_000,
  }, async ({ tmp }) => {
    const began = Date.now()
    const random = new Random(SEED)
    spawnBusyLoops(BUSY)
    const files = WRITERS.map((w) => join(tmp, `${w.name}.log`))
    for (const f of files) writeFileSync(f, '')
    const out = join(tmp, 'out.log')
    const state = join(tmp, 'S')
    const args = [
      ...files,
      ...['-o', out, '--engine', engine, '--from', 'start', '--state', state],
      // Checkpoints often, or a run killed within a second would rarely make one, and the
      // truncating writers would wait for a long time.
      ...['--checkpoint-interval', '100ms', '--log-level', process.env.LOGMERGE_SOAK_LOG ?? 'info'],
    ]
    // logmerge follows the files before the first rotation: a file renamed away before it was
    // ever looked at is not an input any more (as with tail -F).
    let lm: Child = spawnLogmerge(args)
    await waitFor(() => lm.stderr().includes('ready'), { proc: lm, what: 'logmerge ready' })
    const writers = WRITERS.map((w, i) =>
      spawnSoakWriter({
        path: files[i] as string,
        prefix: w.name,
        mode: w.mode,
        rate: RATE,
        rotateMs: ROTATE_MS,
        out,
        state,
      }),
    )
    /** Each killed run's stderr; the state file each kill left behind is kept in states/. */
    const runs: string[] = []
    mkdirSync(join(tmp, 'states'))
    let beforeReady = 0
    for (let kill = 0; kill < KILLS; kill++) {
      // Most kills come while logmerge follows; one in four at 0.3-1 s after the start, which on
      // a loaded machine is often before it is ready (its start-up search and first checkpoint).
      if (!random.chance(0.25))
        await waitFor(() => lm.stderr().includes('ready'), {
          proc: lm,
          timeout: 60_000,
          what: `logmerge ready (run ${kill}, after ${kill} kills)`,
        })
      await sleep(random.between(300, 1000))
      if (!lm.stderr().includes('ready')) beforeReady++
      lm.kill('SIGKILL')
      await lm.exited
      runs.push(lm.stderr())
      try {
        cpSync(state, join(tmp, 'states', `after-kill-${kill + 1}.json`))
      } catch {
        // no checkpoint yet
      }
      lm = spawnLogmerge(args)
    }
    const written: SoakWritten[] = []
    for (const w of writers) written.push(await stopSoakWriter(w))
    const journal = new Journal()
    for (const w of written)
      journal.record(
        w.prefix,
        Array.from({ length: w.lines }, (_, seq) => lineFor(w.prefix, seq)),
      )

    /** A failed run's directory is kept for the post-mortem (inputs, output, states, stderr). */
    const keep = (why: string): string => {
      const dir = join(tmpdir(), `logmerge-soak-failed-${engine}-${Date.now()}`)
      cpSync(tmp, dir, { recursive: true })
      writeFileSync(
        join(dir, 'runs.log'),
        [...runs, lm.stderr()].map((r, i) => `--- run ${i}\n${r}`).join('\n'),
      )
      writeFileSync(join(dir, 'written.json'), JSON.stringify(written, null, 1))
      return `${why}\n${soakReport(dir, written, [...runs, lm.stderr()])}\nkept in ${dir}`
    }
    try {
      await waitForAll(out, journal.all, { timeout: 60_000, proc: lm })
    } catch (err) {
      const have = new Set(completeLines(out))
      const missing = written.map((w) => {
        const lost = journal.streams.get(w.prefix)?.filter((l) => !have.has(l)) ?? []
        const gens = new Set(lost.map((l) => generationOf(w, Number(l.split('-')[1]))))
        return `${w.prefix} (${w.mode}): ${lost.length} missing in generations ${[...gens].join(', ')}`
      })
      throw new Error(keep(`${(err as Error).message}\n${missing.join('\n')}`))
    }
    await stop(lm)
    const output = completeLines(out)
    const found = tally(output, journal)
    // Out of order: within one generation (one file's stretch), or across a writer's
    // generations (a line after a line of a newer generation).
    let across = 0
    for (const d of found.disorder) {
      const w = written.find((x) => x.prefix === d.stream) as SoakWritten
      const seq = Number(d.line.split('-')[1])
      if (generationOf(w, seq) !== generationOf(w, d.after)) across++
    }
    const rotations = written
      .map((w) => `${w.mode} ${w.rotations}${w.deleted > 0 ? ` (${w.deleted} deleted)` : ''}`)
      .join(', ')
    const waited = written
      .filter((w) => w.waits.count > 0)
      .map((w) => `${w.mode} ${w.waits.count}, longest ${(w.waits.longestMs / 1000).toFixed(1)} s`)
      .join('; ')
    const figures =
      `${engine}: ${KILLS} SIGKILLs (${beforeReady} before ready), ${BUSY} busy loops, ${journal.all.length} lines, rotations ${rotations}` +
      ` (waits for the checkpoint: ${waited}); lost ${found.missing.length}, duplicated ${found.doubled.length},` +
      ` out of order ${found.disorder.length} (${across} across generations), unexpected ${found.unexpected.length};` +
      ` ${((Date.now() - began) / 1000).toFixed(0)} s`
    console.info(figures)
    const wrong =
      found.missing.length + found.doubled.length + found.disorder.length + found.unexpected.length
    if (wrong > 0) {
      const kept = keep(figures)
      try {
        expectMerged(output, journal) // fails, naming the lines
      } catch (err) {
        throw new Error(`${(err as Error).message}\n${kept}`)
      }
    }
    expect(lm.stderr()).not.toMatch(/error|may appear twice/)
    // Every way of rotating really happened.
    for (const w of written) expect(w.rotations, `${w.mode} rotations`).toBeGreaterThan(0)
  })
})
