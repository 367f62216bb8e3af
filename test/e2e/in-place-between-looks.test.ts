/**
 * copytruncate with the copy written in place (fs.copyFileSync over the last copy keeps its
 * inode and birth time), twice between two looks of logmerge at the file: the generation between
 * exists only in the copy, which begins as no file logmerge read. It is a generation no one has
 * seen (written since the truncation), read whole before the file's new content.
 *
 * Found by the mixed soak (40 SIGKILLs per engine): top-down lost a whole in-place generation
 * (242 lines). Two defects: a file no one knew, born long before, was an unknown generation
 * only by its birth time (an in-place copy keeps the old one); and a truncation seen while the
 * file was empty put the search off until the file had bytes, so the read in the same pass took
 * the first bytes written meanwhile and the search never came.
 *
 * Made to happen on purpose: the state is written by the test (the copy `cpi.log.1` is not in
 * it, as after a restart whose state was saved before that copy was taken over), and logmerge
 * is stopped (SIGSTOP) across the two copies. Before the stop, every line the second copy
 * destroys is in the output (as the soak's writer waits for): nothing is lost by the rotation
 * itself.
 */
import {
  closeSync,
  constants,
  copyFileSync,
  ftruncateSync,
  openSync,
  readFileSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect } from 'vitest'
import {
  completeLines,
  ENGINES,
  pause,
  resume,
  spawnLogmerge,
  stop,
  test,
  waitFor,
  waitForLines,
} from './helpers.js'
import { lineFor } from './writer-child.mjs'

const lines = (from: number, to: number): string => {
  let s = ''
  for (let i = from; i < to; i++) s += `${lineFor('cpi', i)}\n`
  return s
}

describe.each(ENGINES)('engine %s', (engine) => {
  test('two in-place copytruncates between two looks: the generation in the copy is read, in its place', {
    timeout: 60_000,
  }, async ({ tmp }) => {
    const cpi = join(tmp, 'cpi.log')
    const copy = join(tmp, 'cpi.log.1')
    const out = join(tmp, 'out.log')
    const state = join(tmp, 'S')
    writeFileSync(copy, lines(0, 100)) // the first generation's copy, read long ago
    writeFileSync(cpi, lines(100, 200))
    writeFileSync(out, lines(0, 150))
    await sleep(30) // born before the run the state says started
    const st = statSync(cpi)
    const o = statSync(out)
    writeFileSync(
      state,
      JSON.stringify({
        format: 'logmerge-state',
        version: 1,
        savedAt: new Date().toISOString(),
        startedAt: new Date().toISOString(),
        output: { path: out, dev: o.dev, ino: o.ino, size: o.size },
        sources: [
          {
            path: cpi,
            dev: st.dev,
            ino: st.ino,
            born: st.birthtimeMs,
            head: readFileSync(cpi).subarray(0, 64).toString('base64'),
            offset: Buffer.byteLength(lines(100, 150)),
          },
        ],
      }),
    )
    const lm = spawnLogmerge([
      cpi,
      ...['-o', out, '--engine', engine, '--from', 'start', '--state', state],
      ...['--checkpoint-interval', '100ms', '--log-level', 'info'],
    ])
    await waitFor(() => lm.stderr().includes('ready'), { proc: lm, what: 'logmerge ready' })
    const fd = openSync(cpi, constants.O_WRONLY | constants.O_APPEND)
    let seq = 200
    const write = async (n: number) => {
      for (let i = 0; i < n; i++) {
        writeSync(fd, `${lineFor('cpi', seq++)}\n`)
        await sleep(3)
      }
    }
    try {
      await write(50)
      await waitForLines(out, 250, { proc: lm })
      await pause(lm)
      copyFileSync(cpi, copy) // in place: cpi.log.1 keeps its inode
      ftruncateSync(fd, 0)
      await write(240) // the generation between, only ever in the copy
      copyFileSync(cpi, copy)
      ftruncateSync(fd, 0)
      resume(lm)
      await write(100)
    } finally {
      closeSync(fd)
    }
    await waitForLines(out, seq, { proc: lm })
    await stop(lm)
    const seqs = completeLines(out).map((l) => Number(l.split('-')[1]))
    expect(seqs).toEqual(Array.from({ length: seq }, (_, i) => i))
  })
})
