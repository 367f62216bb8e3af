/**
 * Generations copied away (copytruncate to a new copy each time, a.log.K) before the follower
 * read a byte of what its name held: each read once, and before the generations after it. On
 * both shells with real files. Three defects, found by the mixed soak on async (issue 16: six
 * whole generations read by the next run, after later ones; docs/checkpoints.md, "causes"),
 * each test failing without its fix:
 *
 * 1. A file that start-up found rewritten resumes at 0 with its first bytes then; emptied by a
 *    copytruncate before the first read, the empty file agreed with that fingerprint, the look
 *    counted as seeing it whole, and the search for generations the truncation skipped began
 *    after the birth of the copy made just before (Cursor.classify: a file shorter than its
 *    fingerprint was truncated).
 * 2. A search pass skipped the copy of what the name held when it began (left to be read
 *    through the name) and took the copies of the generations after it at once: those came
 *    first (MissingScan holds younger generations back after such a skip).
 * 3. The search ended (or ran out of attempts) with no fingerprint for the content it left to
 *    the name: copied away and truncated before the read, that content was in no file the
 *    read knew, and the read took the next generation from 0 (SkippedSearch.again: the file
 *    learns the first bytes its name held).
 */
import {
  appendFileSync,
  copyFileSync,
  mkdtempSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { Recorder, recorded, SHELLS, type Shell, type ShellOptions } from './shells.js'

let dir: string
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'logmerge-skipped-generations-'))
})
afterEach(() => rmSync(dir, { recursive: true, force: true }))

/** Lines g1 a, g1 b, ..., gN a: every generation's two lines, then the first of the last. */
const expected = (last: number): string[] => {
  const lines: string[] = []
  for (let g = 1; g < last; g++) lines.push(`g${g} a`, `g${g} b`)
  lines.push(`g${last} a`)
  return lines
}

/**
 * The soak's copytruncate writer, one rotation: generation `g` ends with its second line, is
 * copied to `log.g` (a new file) and truncated, and generation g + 1 begins (or not yet).
 */
function rotate(log: string, g: number, begin = true): void {
  appendFileSync(log, `g${g} b\n`)
  copyFileSync(log, `${log}.${g}`)
  truncateSync(log, 0)
  if (begin) appendFileSync(log, `g${g + 1} a\n`)
}

describe.each(Object.keys(SHELLS))('%s shell', (kind) => {
  const make = SHELLS[kind] as (sink: Recorder, opts?: ShellOptions) => Shell

  test('resumed at 0 with its first bytes, copied and truncated twice, looked at empty: both copies, in order', async () => {
    const log = join(dir, 'a.log')
    writeFileSync(log, 'g1 a\n')
    const sink = new Recorder()
    const shell = make(sink)
    // Start-up found it rewritten while we were down: from 0, with the first bytes it had then.
    shell.remember([recorded(log, 0)])
    rotate(log, 1) // a.log.1: g1
    rotate(log, 2, false) // a.log.2: g2; a.log empty
    await sleep(50) // later than the birth-time rule's clock slack
    await shell.findRotated([log])
    await shell.start([log])
    await shell.changed(log) // the truncation's event: a look at the empty file
    await sleep(50)
    appendFileSync(log, 'g3 a\n')
    await shell.changed(log)
    expect(sink.lines).toEqual(expected(3))
    await shell.close()
  })

  // The writer rotates while the follower's searches list the directory: `during` rotations,
  // one per listing, from the one the truncation's copy search makes.
  for (const during of [1, 2, 3, 4, 6, 9]) {
    test(`copied and truncated during the searches after a truncation (${during} times): every generation once, in order`, async () => {
      const log = join(dir, 'a.log')
      writeFileSync(log, 'g1 a\n')
      let g = 1
      let left = 0
      const sink = new Recorder()
      const shell = make(sink, {
        searchHook: () => {
          if (left === 0) return
          left--
          rotate(log, g++)
        },
      })
      await shell.findRotated([log])
      await shell.start([log])
      rotate(log, g++)
      left = during
      await shell.changed(log)
      left = 0
      await sleep(20)
      await shell.changed(log)
      await shell.sweep()
      await shell.changed(log)
      expect(sink.lines).toEqual(expected(g))
      await shell.close()
    })
  }
})
