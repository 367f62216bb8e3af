/**
 * A stop must end. With the output stuck (stdout a pipe nobody reads), SIGTERM cannot drain;
 * logmerge gives up after --shutdown-timeout with exit 6 and says why, instead of hanging. And an
 * output whose reader hangs up (EPIPE) ends the run quietly, like `cat | head`.
 */
import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect } from 'vitest'
import { BIN, ENGINES, pinnedEnv, test, waitFor } from './helpers.js'

test('SIGTERM with a stuck output gives up after --shutdown-timeout (exit 6)', async ({ tmp }) => {
  // 4 MiB of lines: far more than a pipe holds (64 KiB), so the writer blocks.
  writeFileSync(join(tmp, 'big.log'), `${'x'.repeat(99)}\n`.repeat(40_000))
  const child = spawn(BIN, ['--from', 'start', '--shutdown-timeout', '500', 'big.log'], {
    cwd: tmp,
    env: pinnedEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stderr = ''
  child.stderr.on('data', (b: Buffer) => {
    stderr += b
  })
  child.stdout.pause() // never read: the pipe fills up and stays full
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  )
  try {
    // Let it fill the pipe, then ask it to stop.
    await waitFor(() => (child.stdout.readableLength > 0 ? true : null), {
      what: 'output to start',
    })
    child.kill('SIGTERM')
    expect(await exited).toBe(6)
    expect(stderr).toMatch(/could not drain within 500 ms/)
  } finally {
    child.kill('SIGKILL')
    child.stdout.destroy()
  }
})

describe.each(ENGINES)('engine %s', (engine) => {
  test('--once into a pipe its reader closes stops quietly with exit 4 (like cat | head)', async ({
    tmp,
  }) => {
    writeFileSync(join(tmp, 'big.log'), `${'y'.repeat(99)}\n`.repeat(40_000))
    const child = spawn(BIN, ['--once', '--engine', engine, 'big.log'], {
      cwd: tmp,
      env: pinnedEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stderr = ''
    child.stderr.on('data', (b: Buffer) => {
      stderr += b
    })
    const exited = new Promise<number | null>((resolve) =>
      child.once('exit', (code) => resolve(code)),
    )
    child.stdout.once('data', () => child.stdout.destroy()) // read a little, then hang up
    expect(await exited).toBe(4)
    expect(stderr).toBe('')
  })
})
