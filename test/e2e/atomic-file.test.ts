/**
 * The state file is replaced whole or not at all (src/atomic-file.ts), also when the write is
 * cut short without an error: past the file size limit the kernel writes up to the limit and
 * returns the count. write-file-atomic, which saved the state before, took that count for the
 * whole and renamed the torn file over the good state; the next start moved it aside and read
 * every input again (input-faults' restart under a file size limit, threads and bottom-up).
 * Run in a child process under `ulimit -f` (the limit is per process), on the built module.
 */
import { spawnSync } from 'node:child_process'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { expect } from 'vitest'
import { ROOT, test } from './helpers.js'

const MODULE = pathToFileURL(join(ROOT, 'dist', 'atomic-file.js')).href

/** replaceFile(path, `bytes` bytes) in a process whose file size limit is `limitKiB`. */
function replaceUnderLimit(path: string, bytes: number, limitKiB: number) {
  const script = `import(${JSON.stringify(MODULE)}).then(({ replaceFile }) => replaceFile(${JSON.stringify(path)}, 'x'.repeat(${bytes}), { fsync: true })).then(() => console.log('replaced'), (err) => console.log(err.code))`
  const ran = spawnSync(
    'sh',
    ['-c', `ulimit -f ${limitKiB} && exec "$0" -e "$1"`, process.execPath, script],
    {
      encoding: 'utf8',
    },
  )
  return ran.stdout.trim()
}

test('a replacement that the file size limit cuts short fails, and the old file stays whole', ({
  tmp,
}) => {
  const state = join(tmp, 'S')
  writeFileSync(state, 'the last good state\n')
  // 8 KiB into a 4 KiB limit: the first write(2) stops at 4,096 bytes, the next one fails.
  expect(replaceUnderLimit(state, 8192, 4)).toBe('EFBIG')
  expect(readFileSync(state, 'utf8')).toBe('the last good state\n')
  expect(readdirSync(tmp)).toEqual(['S']) // no temporary file left
  // Within the limit it is replaced.
  expect(replaceUnderLimit(state, 2048, 4)).toBe('replaced')
  expect(readFileSync(state, 'utf8')).toBe('x'.repeat(2048))
  expect(readdirSync(tmp)).toEqual(['S'])
})
