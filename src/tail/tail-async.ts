/**
 * The event-loop reader shell (the notes' `tail_async`): fs.promises I/O around the pure Cursor.
 *
 * Files are followed by identity, names only lead to them. `AsyncFollower` keeps every open file
 * keyed by device:inode, and every input name with the file it points to now. When a name
 * comes to point to another file (rename rotation, delete and create), the old file loses that
 * name; a file with no name left is read to its end until it has been quiet for a while, then
 * its partial line is flushed and its fd closed, so disk space is freed. A rotated file that
 * turns up under a matching name (app.log.1 in a directory input) is the same identity and is
 * not read twice.
 */
import { fstatSync, type Stats, statSync } from 'node:fs'
import { type FileHandle, open, stat } from 'node:fs/promises'
import type { LimitFunction } from 'p-limit'
import { describeErrno, isErrno } from '../errors.js'
import type { Logger } from '../log.js'
import type { BlockSink } from '../sink/sink.js'
import { Cursor, FINGERPRINT_BYTES, type Identity, identityKey } from './cursor.js'
import { lineStartBefore } from './start.js'

export interface FollowOptions {
  /** False for --once: nothing will appear later, so say so differently. */
  readonly follow: boolean
  /** Where a file present at start-up begins; files that appear later begin at 0. */
  readonly from: 'start' | 'end'
  readonly maxLineBytes: number
  readonly readChunkBytes: number
  /** A file that lost its name is closed once it has been quiet this long. */
  readonly quietMs: number
  readonly sink: BlockSink
  readonly limit: LimitFunction
  readonly log: Logger
}

/** Smallest read buffer: reading a few appended bytes still costs one syscall. */
const MIN_READ = 64 * 1024

class AsyncFile {
  readonly key: string
  cursor: Cursor
  fh: FileHandle | null
  /** The name it was last seen under, for messages. */
  path: string
  /** How many input names point to it now. */
  names = 0
  /** When it last grew, or lost its last name (ms since epoch). */
  lastActivity = Date.now()
  #running: Promise<void> | null = null
  #again = false
  readonly #opts: FollowOptions

  constructor(path: string, fh: FileHandle, cursor: Cursor, opts: FollowOptions) {
    this.key = identityKey(cursor.identity)
    this.path = path
    this.fh = fh
    this.cursor = cursor
    this.#opts = opts
  }

  /** Reads whatever is new; calls made while a read runs are folded into one more pass. */
  pump(): Promise<void> {
    if (this.#running) {
      this.#again = true
      return this.#running
    }
    this.#running = (async () => {
      try {
        do {
          this.#again = false
          await this.#opts.limit(() => this.#readNew())
        } while (this.#again)
      } finally {
        this.#running = null
      }
    })()
    return this.#running
  }

  /** Flushes the partial line (optionally) and closes the fd; the cursor is kept. */
  async release(flush: boolean): Promise<void> {
    await this.#running
    if (flush) {
      const rest = this.cursor.flush()
      if (rest)
        await this.#opts.sink.write(rest, { key: this.key, offset: this.cursor.committedOffset })
    }
    const fh = this.fh
    this.fh = null
    await fh?.close()
  }

  async #readNew(): Promise<void> {
    const fh = this.fh
    if (fh === null) return
    const { sink, log } = this.#opts
    const cursor = this.cursor
    let size: number
    try {
      ;({ size } = await fh.stat())
      let change = cursor.classify(size)
      if (change === 'grown' && cursor.head.length > 0) {
        change = cursor.classify(size, await readHead(fh))
      }
      if (change === 'idle') return
      if (change === 'truncated') {
        log.info(`${this.path}: truncated; reading it again from the start`)
        const rest = cursor.restart()
        if (rest) await sink.write(rest, { key: this.key, offset: 0 })
      }
      while (true) {
        const want = Math.min(this.#opts.readChunkBytes, Math.max(size - cursor.offset, MIN_READ))
        const buf = Buffer.allocUnsafe(want)
        const { bytesRead } = await fh.read(buf, 0, want, cursor.offset)
        if (bytesRead === 0) break
        this.lastActivity = Date.now()
        const block = cursor.frame(bytesRead === want ? buf : buf.subarray(0, bytesRead))
        if (block) {
          const full = sink.write(block, { key: this.key, offset: cursor.committedOffset })
          if (full) await full
        }
        if (bytesRead < want) break
      }
    } catch (err) {
      // The fd stays valid after rename or unlink; an error here is the device or the fs.
      log.warnOnce(
        `read:${this.key}`,
        `cannot read ${this.path}: ${describeErrno(err as NodeJS.ErrnoException)}; will retry`,
      )
    }
  }
}

export class AsyncFollower {
  readonly #opts: FollowOptions
  /** Open (or closed but remembered) files by identity. */
  readonly #files = new Map<string, AsyncFile>()
  /** Input name -> identity key of the file it points to now. */
  readonly #names = new Map<string, string | null>()
  /** Serialises the resolution of each name. */
  readonly #resolving = new Map<string, Promise<void>>()
  /** Names from the start-up scan, until first opened: they start at `from`; later files at 0. */
  readonly #startupNames = new Set<string>()
  /** Names that could not be opened (missing, unreadable, not a file) at their last look. */
  readonly #unreadable = new Set<string>()
  #closed = false

  constructor(opts: FollowOptions) {
    this.#opts = opts
  }

  /** Number of files with an open fd. */
  get openFiles(): number {
    let n = 0
    for (const f of this.#files.values()) if (f.fh) n++
    return n
  }

  /** Input names that could not be read at their last look (for --once's exit status). */
  get unreadable(): readonly string[] {
    return [...this.#unreadable]
  }

  /** Adds the input names found at start-up and reads what they hold. */
  async start(paths: Iterable<string>): Promise<void> {
    const all = [...paths]
    for (const p of all) this.#startupNames.add(p)
    await Promise.all(all.map((p) => this.resolve(p)))
    this.#startupNames.clear() // a name missing at start-up begins at 0 when it appears
  }

  /** Something happened at `path` (created, changed, removed): look again and read. */
  resolve(path: string): Promise<void> {
    if (this.#closed) return Promise.resolve()
    const prev = this.#resolving.get(path) ?? Promise.resolve()
    const next = prev.then(() => this.#resolve(path))
    this.#resolving.set(path, next)
    void next.finally(() => {
      if (this.#resolving.get(path) === next) this.#resolving.delete(path)
    })
    return next
  }

  /** A file at `path` was written to: read it (cheaper than resolve: no stat of the name). */
  changed(path: string): Promise<void> {
    const key = this.#names.get(path)
    const file = key ? this.#files.get(key) : undefined
    if (file?.fh) return file.pump()
    return this.resolve(path)
  }

  /**
   * The safety net for missed events (inotify drops them under load): a cheap synchronous stat
   * of every name and every nameless open file; read only those that changed.
   */
  sweep(): void {
    if (this.#closed) return
    for (const [path, key] of this.#names) {
      const st = statSync(path, { throwIfNoEntry: false })
      const file = key ? this.#files.get(key) : undefined
      if (!st || !file || identityKey(st) !== key || st.size !== file.cursor.offset)
        void this.resolve(path)
    }
    const now = Date.now()
    for (const file of this.#files.values()) {
      if (file.names > 0 || file.fh === null) continue
      const { size } = fstatSync(file.fh.fd)
      if (size !== file.cursor.offset) void file.pump()
      else if (now - file.lastActivity >= this.#opts.quietMs) void this.#retire(file)
    }
  }

  /** Reads every file to its end once more (for --once and the drain at shutdown). */
  async catchUp(): Promise<void> {
    await Promise.all([...this.#names.keys()].map((p) => this.resolve(p)))
    await Promise.all([...this.#files.values()].filter((f) => f.fh).map((f) => f.pump()))
  }

  /**
   * Stops following. With `flush`, held partial lines are written with a newline added (--once);
   * otherwise they are left unwritten (they are not complete lines yet).
   */
  async close(flush: boolean): Promise<void> {
    this.#closed = true
    await Promise.all([...this.#resolving.values()])
    await Promise.all([...this.#files.values()].map((f) => f.release(flush)))
  }

  async #resolve(path: string): Promise<void> {
    if (this.#closed) return
    const { log } = this.#opts
    const prevKey = this.#names.get(path) ?? null
    let st: Stats | null = null
    try {
      st = await stat(path)
    } catch (err) {
      if (!isErrno(err, 'ENOENT', 'ENOTDIR')) {
        log.warnOnce(
          `stat:${path}`,
          `cannot follow ${path}: ${describeErrno(err as NodeJS.ErrnoException)}; will keep trying`,
        )
      } else if (this.#startupNames.has(path)) {
        const later = this.#opts.follow ? ' yet; it will be followed when it appears' : ''
        log.warnOnce(`missing:${path}`, `${path} does not exist${later}`)
      }
    }
    if (st && !st.isFile()) {
      log.warnOnce(`type:${path}`, `${path} is not a regular file; skipping it`)
      st = null
    }
    if (st) this.#unreadable.delete(path)
    else this.#unreadable.add(path)
    const key = st ? identityKey(st) : null
    if (key !== prevKey) {
      if (prevKey) this.#unname(prevKey, path)
      this.#names.set(path, null)
      if (st) await this.#name(path, st)
    }
    const file = this.#files.get(this.#names.get(path) ?? '')
    if (file?.fh) await file.pump()
  }

  /** `path` now points to the file `st` describes: find it among known files or open it. */
  async #name(path: string, st: Stats): Promise<void> {
    const key = identityKey(st)
    const known = this.#files.get(key)
    if (known?.fh) {
      known.names++
      this.#names.set(path, key)
      return
    }
    let fh: FileHandle
    try {
      fh = await open(path, 'r')
    } catch (err) {
      this.#unreadable.add(path)
      if (!isErrno(err, 'ENOENT')) {
        this.#opts.log.warnOnce(
          `open:${path}`,
          `cannot open ${path}: ${describeErrno(err as NodeJS.ErrnoException)}; will keep trying`,
        )
      }
      return
    }
    this.#opts.log.forget(`open:${path}`)
    this.#opts.log.forget(`missing:${path}`)
    // The name may have moved on between stat and open: the fd's own identity is the truth.
    const real = await fh.stat()
    const realKey = identityKey(real)
    const head = await readHead(fh)
    const remembered = this.#files.get(realKey)
    let cursor: Cursor
    if (remembered && !remembered.fh && remembered.cursor.headMatches(head)) {
      cursor = remembered.cursor // a file we finished earlier, seen again under a new name
    } else if (remembered?.fh) {
      await fh.close()
      remembered.names++
      this.#names.set(path, realKey)
      return
    } else {
      const atStartup = this.#startupNames.delete(path)
      const offset =
        atStartup && this.#opts.from === 'end' ? await lineStartBefore(fh, real.size) : 0
      cursor = new Cursor({
        identity: toIdentity(real),
        offset,
        head,
        maxLineBytes: this.#opts.maxLineBytes,
      })
      if (!atStartup) this.#opts.log.info(`${path}: following new file`)
    }
    const file = new AsyncFile(path, fh, cursor, this.#opts)
    file.names = 1
    this.#files.set(realKey, file)
    this.#names.set(path, realKey)
  }

  /** `path` no longer points to the file `key`. */
  #unname(key: string, path: string): void {
    const file = this.#files.get(key)
    if (!file) return
    file.names--
    if (file.names > 0) return
    this.#opts.log.info(`${path}: rotated or removed; reading the old file to its end`)
    file.lastActivity = Date.now()
    void file.pump()
  }

  /** A nameless file has been quiet long enough: flush its partial line and free its fd. */
  async #retire(file: AsyncFile): Promise<void> {
    await file.pump()
    if (file.names > 0 || file.fh === null) return
    await file.release(true)
  }
}

const toIdentity = (st: Stats): Identity => ({ dev: st.dev, ino: st.ino })

async function readHead(fh: FileHandle): Promise<Buffer> {
  const buf = Buffer.alloc(FINGERPRINT_BYTES)
  const { bytesRead } = await fh.read(buf, 0, FINGERPRINT_BYTES, 0)
  return buf.subarray(0, bytesRead)
}
