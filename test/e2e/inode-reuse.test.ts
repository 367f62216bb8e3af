/**
 * A generation deleted while the state still records it, whose inode a new generation gets
 * (ext4 hands freed inodes out again at once): the new file is a new file, read from its start
 * and in its place among the generations, not the old one "truncated".
 *
 * Found by the mixed soak (40 SIGKILLs per engine, rename rotation deleting generations beyond
 * 10): the new file was resumed as the recorded one, its size below the recorded offset read as
 * a truncation, and the search for copies a truncation starts (generations born since the
 * truncation, which for a file this run never saw whole is the run's start) read the next
 * generation, renamed away meanwhile, before it: 232 lines of one generation after the next
 * one's, on every engine. The birth time, recorded with each source, tells the two files apart.
 *
 * Made to happen on purpose: the state is written by the test, with an entry for a file that
 * "was deleted" at the inode of an empty file that becomes the next generation (born at another
 * time than the entry says, as a reused inode's new file is), and logmerge is stopped (SIGSTOP)
 * while that generation is written and rotated twice, so that it sees the generation only after
 * the next one was renamed away. Either at start-up (prescan decides) or while following (the
 * file appears at the input name during the run). Skipped where the file system records no
 * birth times (the first bytes are then all there is to tell by).
 */
import {
  appendFileSync,
  copyFileSync,
  mkdirSync,
  readFileSync,
  renameSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect } from 'vitest'
import { shardOf } from '../../src/engines/shard.js'
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
  for (let i = from; i < to; i++) s += `${lineFor('ren', i)}\n`
  return s
}

const entry = (path: string, offset: number, born = statSync(path).birthtimeMs) => {
  const st = statSync(path)
  return {
    path,
    dev: st.dev,
    ino: st.ino,
    born,
    head: readFileSync(path).subarray(0, 64).toString('base64'),
    offset,
  }
}

describe.each(ENGINES)('engine %s', (engine) => {
  for (const when of ['at start-up', 'while following'] as const)
    test(`a new generation on the inode of a deleted recorded one is read as new, in its place (${when})`, {
      timeout: 60_000,
    }, async ({ tmp }) => {
      const logs = join(tmp, 'logs')
      mkdirSync(logs)
      const aside = join(tmp, 'aside')
      mkdirSync(aside)
      const ren = join(logs, 'ren.log')
      const out = join(tmp, 'out.log')
      const state = join(tmp, 'S')
      writeFileSync(join(logs, 'ren.log.1'), lines(0, 100))
      writeFileSync(ren, lines(100, 200))
      // The file that takes the deleted generation's inode: empty, born now.
      const next = join(when === 'at start-up' ? logs : aside, 'next')
      writeFileSync(next, '')
      if (statSync(next).birthtimeMs === 0) return // no birth times on this file system
      writeFileSync(out, lines(0, 150))
      const y = statSync(next)
      const o = statSync(out)
      writeFileSync(
        state,
        JSON.stringify({
          format: 'logmerge-state',
          version: 1,
          savedAt: new Date().toISOString(),
          startedAt: new Date(Date.now() - 60_000).toISOString(),
          output: { path: out, dev: o.dev, ino: o.ino, size: o.size },
          sources: [
            // Deleted since: its inode is `next`'s now, and so are 14,459 bytes it never had.
            {
              path: join(logs, 'ren.log.0'),
              dev: y.dev,
              ino: y.ino,
              born: y.birthtimeMs - 10_000,
              head: Buffer.from(lines(9000, 9002)).subarray(0, 64).toString('base64'),
              offset: 14_459,
            },
            entry(join(logs, 'ren.log.1'), Buffer.byteLength(lines(0, 100))),
            entry(ren, Buffer.byteLength(lines(100, 150))),
          ],
        }),
      )
      const rotate = () => {
        renameSync(ren, join(logs, 'ren.log.2'))
        renameSync(next, ren)
      }
      if (when === 'at start-up') rotate()
      const lm = spawnLogmerge([
        ren,
        ...[
          '-o',
          out,
          '--engine',
          engine,
          '--from',
          'start',
          '--state',
          state,
          '--log-level',
          'info',
        ],
      ])
      await waitFor(() => lm.stderr().includes('ready'), { proc: lm, what: 'logmerge ready' })
      await waitForLines(out, 200, { proc: lm })
      if (when === 'while following') {
        // The new file appears at the name, and logmerge opens it (empty) while following.
        rotate()
        await sleep(700)
      }
      await pause(lm)
      // The generation on the reused inode is written, then renamed away with the next one.
      appendFileSync(ren, lines(200, 300))
      renameSync(ren, join(logs, 'ren.log.3'))
      writeFileSync(ren, lines(300, 400))
      renameSync(ren, join(logs, 'ren.log.4'))
      writeFileSync(ren, lines(400, 450))
      resume(lm)
      await waitForLines(out, 450, { proc: lm })
      await stop(lm)
      const seqs = completeLines(out).map((l) => Number(l.split('-')[1]))
      expect(seqs).toEqual(Array.from({ length: 450 }, (_, i) => i))
      expect(lm.stderr()).not.toMatch(/truncated/)
    })
  test('a copytruncate copy on the inode of a deleted file of another family the state records: checkpointed as the copy, not read again after a SIGKILL', {
    timeout: 60_000,
  }, async ({ tmp }) => {
    // The state still records a deleted generation of another family (`<other>.log.5`; in the
    // thread engines another reader thread's) at the inode the copy gets. Taken as that
    // file's, the copy's checkpoint had the old file's offset and fingerprint, and the restart
    // read the copy again (top-down, the 200-kill mixed soak: 12 copies, 2,626 lines twice).
    const logs = join(tmp, 'logs')
    mkdirSync(logs)
    const b = join(logs, 'b.log')
    // A family another reader thread owns (of 2), as in the soak (ren.log's and cpy.log's).
    const other = ['a', 'c', 'd', 'e', 'f', 'g', 'h']
      .map((n) => join(logs, `${n}.log`))
      .find((p) => shardOf(p, 2) !== shardOf(b, 2)) as string
    const spare = join(tmp, 'spare') // becomes the copy b.log.1: its inode is the "reused" one
    const out = join(tmp, 'out.log')
    const state = join(tmp, 'S')
    writeFileSync(b, lines(0, 100).replaceAll('ren-', 'b-'))
    writeFileSync(spare, '')
    if (statSync(spare).birthtimeMs === 0) return // no birth times on this file system
    writeFileSync(out, '')
    const y = statSync(spare)
    const o = statSync(out)
    writeFileSync(
      state,
      JSON.stringify({
        format: 'logmerge-state',
        version: 1,
        savedAt: new Date().toISOString(),
        startedAt: new Date(Date.now() - 60_000).toISOString(),
        output: { path: out, dev: o.dev, ino: o.ino, size: 0 },
        sources: [
          {
            path: `${other}.5`,
            dev: y.dev,
            ino: y.ino,
            born: y.birthtimeMs - 10_000,
            head: Buffer.from('other-1 a line of a deleted file\n').toString('base64'),
            offset: 7_398,
          },
        ],
      }),
    )
    const args = [
      join(logs, '*.log'),
      ...['-o', out, '--engine', engine, '--from', 'start', '--state', state],
      ...['--checkpoint-interval', '50ms', '--log-level', 'info'],
      ...(engine === 'async' ? [] : ['--threads', '2']),
    ]
    let lm = spawnLogmerge(args)
    await waitFor(() => lm.stderr().includes('ready'), { proc: lm, what: 'logmerge ready' })
    await waitForLines(out, 100, { proc: lm })
    appendFileSync(b, lines(100, 150).replaceAll('ren-', 'b-'))
    // copytruncate, the copy on the spare inode: written there, then renamed into place.
    copyFileSync(b, spare)
    renameSync(spare, `${b}.1`)
    truncateSync(b, 0)
    appendFileSync(b, lines(150, 160).replaceAll('ren-', 'b-'))
    await waitForLines(out, 160, { proc: lm })
    // A checkpoint after the copy was taken over, then a crash and a restart.
    await sleep(300)
    lm.kill('SIGKILL')
    await lm.exited
    lm = spawnLogmerge(args)
    await waitFor(() => lm.stderr().includes('ready'), { proc: lm, what: 'logmerge ready again' })
    await sleep(500)
    await stop(lm)
    const seqs = completeLines(out).map((l) => Number(l.split('-')[1]))
    expect(seqs).toEqual(Array.from({ length: 160 }, (_, i) => i))
  })
})
