/**
 * Remembered files that are not where the checkpoint left them, on both shells with real files:
 * a file rotated after the start-up search but before its name was first looked at (the order
 * bug of the SIGKILL test: the new file's lines came before the old file's rest), and files
 * gone for good, which must leave the table after two scans of their directory; and a
 * copytruncate between the start-up search and the first open (the copy's rest was lost, then
 * read again from its start by a later run: found by the selftest on the reader-thread engines).
 */
import {
  appendFileSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pLimit from 'p-limit'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { silentLogger } from '../../../src/log.js'
import type { SourceMark } from '../../../src/sink/sink.js'
import { FINGERPRINT_BYTES } from '../../../src/tail/cursor.js'
import { MISSING_SCAN_SWEEPS, type RememberedSource } from '../../../src/tail/file-table.js'
import { AsyncFollower } from '../../../src/tail/tail-async.js'
import { SyncFollower } from '../../../src/tail/tail-sync.js'

/** What a sink received, in order, and the offsets it was told (as a checkpoint would see). */
class Recorder {
  readonly lines: string[] = []
  readonly offsets = new Map<string, number>()
  write(block: Buffer, mark?: SourceMark): undefined {
    this.lines.push(...block.toString().split('\n').slice(0, -1))
    if (mark) this.offsets.set(mark.key, mark.offset)
    return undefined
  }
  note(mark: SourceMark): void {
    this.offsets.set(mark.key, mark.offset)
  }
  forget(key: string): void {
    this.offsets.delete(key)
  }
}

/** The two shells behind one face: the test does not care which one blocks. */
interface Shell {
  remember(sources: RememberedSource[]): void
  findRotated(names: string[]): Promise<void>
  start(names: string[]): Promise<void>
  sweep(): Promise<void>
  resolve(name: string): Promise<void>
  changed(name: string): Promise<void>
  keys(): string[]
  close(): Promise<void>
}

const common = (sink: Recorder, searchHook?: (dir: string) => void) => ({
  ...(searchHook && { searchHook }),
  follow: true,
  from: 'start' as const,
  maxLineBytes: 1024 * 1024,
  readChunkBytes: 64 * 1024,
  quietMs: 0,
  sink,
  log: silentLogger,
})

const SHELLS: Record<string, (sink: Recorder, searchHook?: (dir: string) => void) => Shell> = {
  async: (sink, searchHook) => {
    const f = new AsyncFollower({ ...common(sink, searchHook), limit: pLimit(8) })
    return {
      remember: (s) => f.remember(s),
      findRotated: (n) => f.findRotated(n),
      start: (n) => f.start(n),
      resolve: (n) => f.resolve(n),
      changed: (n) => f.changed(n),
      // The missing-file scan runs in the background of a sweep: give it time to finish.
      sweep: async () => {
        f.sweep()
        await new Promise((r) => setTimeout(r, 50))
      },
      // What a checkpoint would record: the table's files that the writer has offsets for.
      keys: () => f.checkpoint(new Map(sink.offsets)).map((s) => `${s.dev}:${s.ino}`),
      close: () => f.close(false),
    }
  },
  sync: (sink, searchHook) => {
    const f = new SyncFollower(common(sink, searchHook))
    return {
      remember: (s) => f.remember(s),
      findRotated: async (n) => f.findRotated(n),
      start: async (n) => f.start(n),
      resolve: async (n) => f.resolve(n),
      changed: async (n) => f.changed(n),
      sweep: async () => void f.sweep(),
      // The thread engines' checkpoints list the sources the writer has offsets for.
      keys: () => [...sink.offsets.keys()],
      close: async () => f.close(false),
    }
  },
}

let dir: string
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'logmerge-missing-'))
})
afterEach(() => rmSync(dir, { recursive: true, force: true }))

/** logrotate's copytruncate: `log.1` shifted to `log.2` if there, `log` copied to `log.1`, then truncated. */
function copytruncate(log: string): void {
  if (existsSync(`${log}.1`)) renameSync(`${log}.1`, `${log}.2`)
  writeFileSync(`${log}.1`, readFileSync(log))
  truncateSync(log, 0)
}

/** A checkpoint's record of `path` read up to `offset`. */
function recorded(path: string, offset: number): RememberedSource {
  const st = statSync(path)
  const head = Buffer.alloc(FINGERPRINT_BYTES)
  const bytes = readFileSync(path)
  bytes.copy(head, 0, 0, Math.min(bytes.length, FINGERPRINT_BYTES))
  return {
    identity: { dev: st.dev, ino: st.ino },
    head: head.subarray(0, Math.min(bytes.length, FINGERPRINT_BYTES)),
    offset,
    path,
  }
}

describe.each(Object.keys(SHELLS))('%s shell', (kind) => {
  const make = SHELLS[kind] as (sink: Recorder, searchHook?: (dir: string) => void) => Shell
  test('seen empty, written, copied and truncated, seen empty again, then written: the copy first', async () => {
    const log = join(dir, 'a.log')
    writeFileSync(log, '')
    const sink = new Recorder()
    const shell = make(sink)
    await shell.findRotated([log])
    await shell.start([log])
    await shell.changed(log) // looked at: empty
    await new Promise((r) => setTimeout(r, 50))
    appendFileSync(log, 'g1 a\ng1 b\n')
    copytruncate(log)
    await new Promise((r) => setTimeout(r, 50))
    await shell.changed(log) // the truncation's event: looked at between the truncate and the next line
    appendFileSync(log, 'g2 a\n')
    await shell.changed(log)
    expect(sink.lines).toEqual(['g1 a', 'g1 b', 'g2 a'])
    await shell.close()
  })
})
