/**
 * The reader thread started with the process (prestart.ts): when the command line alone says a
 * big --once --order time merge is coming. The thread itself is exercised end to end
 * (test/e2e/time-order.test.ts: taken by the merge, and let go when partitions do the work).
 */
import { mkdirSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { fileBytes, THREAD_MIN_BYTES, wantsPrestart } from '../../../src/batch/prestart.js'

describe('prestart', () => {
  let dir: string
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'logmerge-prestart-'))
  })
  afterEach(() => rmSync(dir, { recursive: true, force: true }))

  /** A sparse file of `bytes` (its size is what counts, not its blocks). */
  function file(name: string, bytes: number): string {
    const path = join(dir, name)
    writeFileSync(path, '')
    truncateSync(path, bytes)
    return path
  }

  it('adds up the arguments that are files, and nothing for options, directories or missing paths', () => {
    const a = file('a.log', 3 * THREAD_MIN_BYTES)
    const b = file('b.log', 1000)
    mkdirSync(join(dir, 'sub'))
    const args = ['--once', '-o', join(dir, 'missing.out'), a, join(dir, 'sub'), b, '--label']
    expect(fileBytes(args)).toBe(3 * THREAD_MIN_BYTES + 1000)
    // The output (appended to, it grows past anything) and the state are not inputs.
    const out = file('all.log', 5 * THREAD_MIN_BYTES)
    expect(fileBytes(['--output', out, '--state', a, b])).toBe(1000)
    expect(fileBytes(['-o', out, b])).toBe(1000)
    expect(fileBytes([join(dir, 'nope', 'x.log')])).toBe(0)
  })

  it('only for --once with --order time; LOGMERGE_READER_THREAD decides first', () => {
    const small = file('small.log', 1000)
    const once = ['--once', '--order', 'time', small]
    expect(wantsPrestart(once, {})).toBe(false) // too small on any machine
    expect(wantsPrestart(once, { LOGMERGE_READER_THREAD: 'on' })).toBe(true)
    expect(wantsPrestart(['--once', '--order=time', small], { LOGMERGE_READER_THREAD: 'on' })).toBe(
      true,
    )
    expect(wantsPrestart(once, { LOGMERGE_READER_THREAD: 'off' })).toBe(false)
    const on = { LOGMERGE_READER_THREAD: 'on' }
    expect(wantsPrestart(['--order', 'time', small], on)).toBe(false)
    expect(wantsPrestart(['--once', '--order', 'arrival', small], on)).toBe(false)
    expect(wantsPrestart(['--once', small], on)).toBe(false)
  })
})
