/**
 * A file that logrotate renames to another input name (a.log.1, followed because the directory
 * or a glob is the input) may still grow: an application writes to the fd it opened before the
 * rename. Its late lines must come before the lines of the new file at the name it left, as an
 * orphan's do. Both shells; found as one line out of order in CI (test/e2e/follow.test.ts,
 * rotation through its directory, threads engine, Node 22), reproduced here.
 */
import {
  closeSync,
  mkdtempSync,
  openSync,
  renameSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { Recorder, SHELLS, type Shell, type ShellOptions } from './shells.js'

let dir: string
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'logmerge-late-renamed-'))
})
afterEach(() => rmSync(dir, { recursive: true, force: true }))

describe.each(Object.keys(SHELLS))('%s shell', (kind) => {
  const make = SHELLS[kind] as (sink: Recorder, opts?: ShellOptions) => Shell
  test('a late line of a file renamed to another followed name comes before the new file at its old name', async () => {
    const log = join(dir, 'app.log')
    const rotated = `${log}.1`
    writeFileSync(log, '')
    const sink = new Recorder()
    const shell = make(sink, { quietMs: 60_000 })
    await shell.findRotated([log, rotated])
    await shell.start([log])
    writeFileSync(log, 'x 1\n', { flag: 'a' })
    await shell.changed(log)
    const fd = openSync(log, 'a') // the writer opened the old file by name
    renameSync(log, rotated) // logrotate
    await shell.resolve(rotated) // the reader looks at the new name first
    writeFileSync(log, '') // create
    writeSync(fd, 'x 2\n') // the late line, into the old file
    closeSync(fd)
    writeFileSync(log, 'y 3\n', { flag: 'a' }) // the next line, into the new file
    await shell.resolve(log)
    await shell.changed(log)
    await shell.changed(rotated)
    await shell.sweep()
    expect(sink.lines).toEqual(['x 1', 'x 2', 'y 3'])
    await shell.close()
  })
})
