/**
 * The two reader shells behind one face, for the tests that drive both with real files
 * (missing, copy-identity, torn-read): a sink that records what it was given, the shells'
 * options, and the rotations those tests make. The tests do not care which shell blocks.
 */
import {
  existsSync,
  readFileSync,
  renameSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs'
import pLimit from 'p-limit'
import { silentLogger } from '../../../src/log.js'
import type { SourceMark } from '../../../src/sink/sink.js'
import { FINGERPRINT_BYTES } from '../../../src/tail/cursor.js'
import { AsyncFollower } from '../../../src/tail/tail-async.js'
import { SyncFollower } from '../../../src/tail/tail-sync.js'
import type { RememberedSource } from '../../../src/tail/tracked.js'

/**
 * What a sink received, in order, and the offsets it was told (as a checkpoint would see).
 * `onFirst` runs when the first block arrives.
 */
export class Recorder {
  readonly lines: string[] = []
  readonly offsets = new Map<string, number>()
  #first: (() => void) | undefined
  constructor(onFirst?: () => void) {
    this.#first = onFirst
  }
  write(block: Buffer, mark?: SourceMark): undefined {
    this.lines.push(...block.toString().split('\n').slice(0, -1))
    if (mark) this.offsets.set(mark.key, mark.offset)
    const first = this.#first
    this.#first = undefined
    first?.()
    return undefined
  }
  note(mark: SourceMark): void {
    this.offsets.set(mark.key, mark.offset)
  }
  forget(key: string): void {
    this.offsets.delete(key)
  }
}

export interface Shell {
  remember(sources: RememberedSource[]): void
  findRotated(names: string[]): Promise<void>
  start(names: string[]): Promise<void>
  /** A sweep, and what it started in the background (the missing-file scan, looks). */
  sweep(): Promise<void>
  resolve(name: string): Promise<void>
  changed(name: string): Promise<void>
  /** What a checkpoint would record: the files the writer has offsets for. */
  keys(): string[]
  close(): Promise<void>
}

export interface ShellOptions {
  /** Tests only: runs in a directory search, after its listing. */
  readonly searchHook?: (dir: string) => void
  /** Tests only: runs before an open. */
  readonly openHook?: (path: string) => void
  /** 64 KiB unless given. */
  readonly readChunkBytes?: number
  /** When the run began (ReaderOptions.startedAt); when the shell is made unless given. */
  readonly startedAt?: number
  /** How long a rotated file stays open once quiet; 0 (closed at its next look) unless given. */
  readonly quietMs?: number
}

const common = (sink: Recorder, { readChunkBytes, quietMs, ...hooks }: ShellOptions) => ({
  ...hooks,
  follow: true,
  from: 'start' as const,
  maxLineBytes: 1024 * 1024,
  readChunkBytes: readChunkBytes ?? 64 * 1024,
  quietMs: quietMs ?? 0,
  // Every change read at once: these tests call changed() and look at what it read.
  foldMs: 0,
  sink,
  log: silentLogger,
})

export const SHELLS: Record<string, (sink: Recorder, opts?: ShellOptions) => Shell> = {
  async: (sink, opts = {}) => {
    const f = new AsyncFollower({ ...common(sink, opts), limit: pLimit(8) })
    return {
      remember: (s) => f.remember(s),
      findRotated: (n) => f.findRotated(n),
      start: (n) => f.start(n),
      resolve: (n) => f.resolve(n),
      changed: (n) => f.changed(n),
      // Waits for what the sweep started (a fixed 50 ms was too short on a loaded machine).
      sweep: async () => {
        f.sweep()
        await f.settled()
      },
      keys: () => f.checkpoint(new Map(sink.offsets)).map((s) => `${s.dev}:${s.ino}`),
      close: () => f.close(false),
    }
  },
  sync: (sink, opts = {}) => {
    const f = new SyncFollower(common(sink, opts))
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

/** logrotate's copytruncate: `log.1` shifted to `log.2` if there, `log` copied to `log.1`, then truncated. */
export function copytruncate(log: string): void {
  if (existsSync(`${log}.1`)) renameSync(`${log}.1`, `${log}.2`)
  writeFileSync(`${log}.1`, readFileSync(log))
  truncateSync(log, 0)
}

/** A checkpoint's record of `path` read up to `offset`. */
export function recorded(path: string, offset: number): RememberedSource {
  const st = statSync(path)
  const bytes = readFileSync(path)
  return {
    identity: { dev: st.dev, ino: st.ino },
    head: Buffer.from(bytes.subarray(0, FINGERPRINT_BYTES)),
    offset,
    path,
  }
}
