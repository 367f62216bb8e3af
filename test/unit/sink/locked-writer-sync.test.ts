/**
 * The locked writer's fsync for a checkpoint runs on libuv's pool while the main thread goes on;
 * a reopen (logrotate's SIGHUP) meanwhile retires the output fd. The fd must stay open until
 * the fsync has run: closed first, the fsync failed with EBADF ("cannot save state ...: EBADF:
 * bad file descriptor, fsync", checkpoint.test.ts's logrotate test on Node 24), and with the
 * number reused by another open it would sync some other file and call the output durable.
 * The pool is held busy (a slow pbkdf2 on each of its threads; nothing that opens a file, whose
 * descriptor would take the retired number), so the fsync waits in its queue while the reopen
 * happens: the order is forced, not hoped for.
 */
import { pbkdf2 } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, expect, test } from 'vitest'
import { silentLogger } from '../../../src/log.js'
import { LockedWriter } from '../../../src/sink/locked-writer.js'

let dir: string
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'logmerge-locked-sync-'))
})
afterEach(() => rmSync(dir, { recursive: true, force: true }))

test('an fsync queued before a reopen retires the output fd still syncs that fd', async () => {
  const out = join(dir, 'out.log')
  const writer = LockedWriter.open(out, 1, () => {}, { log: silentLogger, intervalMs: 60_000 })
  writer.write(Buffer.from('a line\n'))
  // Every thread of libuv's pool busy for a while (pbkdf2 runs there).
  const threads = Number(process.env.UV_THREADPOOL_SIZE ?? 4)
  const busy = Array.from({ length: threads }, () => slowHash())
  try {
    const syncing = writer.sync() // queued behind the busy pool
    writer.reopen() // switches to a new fd and retires the old one, meanwhile
    await expect(syncing).resolves.toBeUndefined()
  } finally {
    await Promise.all(busy)
    writer.close()
  }
})

/** About a quarter of a second of one pool thread's time. */
function slowHash(): Promise<void> {
  return new Promise((resolve, reject) =>
    pbkdf2('password', 'salt', 300_000, 32, 'sha256', (err) => (err ? reject(err) : resolve())),
  )
}
