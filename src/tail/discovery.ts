/**
 * Finding input files: a one-time scan at start-up, then chokidar events for what appears,
 * changes and goes away. Every input is watched through its directory (a literal file through
 * its parent), so a file that does not exist yet, or is deleted and created again, is seen.
 * Where inotify's limits are reached, a directory is scanned every poll interval instead.
 */
import {
  type Dirent,
  existsSync,
  type FSWatcher as RawWatcher,
  readdirSync,
  watch as watchDir,
} from 'node:fs'
import { readdir, stat } from 'node:fs/promises'
import { dirname, join, relative, sep } from 'node:path'
import type { FSWatcher } from 'chokidar'
import { isErrno } from '../errors.js'
import type { Logger } from '../log.js'
import { statQuietly } from './input-fs.js'
import type { InputSpec } from './inputs.js'

export interface DiscoveryEvents {
  /** A matching path appeared or was removed: look at what it points to now. */
  readonly changedName: (path: string) => void
  /** A matching file was written to. */
  readonly changedData: (path: string) => void
}

/** True when `path` is wanted by any input (and is not the output). */
export function makeMatcher(
  inputs: readonly InputSpec[],
  exclude?: string,
): (path: string) => boolean {
  return (path) => path !== exclude && inputs.some((i) => i.matches(path))
}

/** Every path the inputs name now: literal files (present or not) and matching files found. */
export async function scanInputs(
  inputs: readonly InputSpec[],
  exclude?: string,
): Promise<string[]> {
  const found = new Set<string>()
  for (const input of inputs) {
    if (input.kind === 'file') {
      if (input.root !== exclude) found.add(input.root)
      continue
    }
    for await (const path of walk(input.root, input.depth ?? Number.POSITIVE_INFINITY)) {
      if (path !== exclude && input.matches(path)) found.add(path)
    }
  }
  return [...found]
}

async function* walk(dir: string, depth: number): AsyncGenerator<string> {
  let entries: Dirent[]
  try {
    entries = await readdir(dir, { withFileTypes: true })
  } catch {
    return // gone or unreadable: discovery's watcher reports what appears later
  }
  for (const e of entries) {
    const path = join(dir, e.name)
    if (e.isDirectory()) {
      if (depth > 0) yield* walk(path, depth - 1)
    } else if (!e.isSymbolicLink() || !(await isDirectory(path))) {
      yield path // symlinks to files included: the follower stats through them
    }
  }
}

const isDirectory = (path: string): Promise<boolean> =>
  stat(path).then(
    (st) => st.isDirectory(),
    () => false,
  )

/**
 * inotify's answers when a limit is reached: ENOSPC for fs.inotify.max_user_watches, EMFILE for
 * fs.inotify.max_user_instances (or the process's own file descriptor limit). See inotify(7).
 */
const isInotifyLimit = (err: unknown): err is NodeJS.ErrnoException =>
  isErrno(err, 'ENOSPC', 'EMFILE', 'ENFILE')

/** One line naming the limit, the sysctl that raises it, and what logmerge does meanwhile. */
export function inotifyLimitMessage(
  root: string,
  err: NodeJS.ErrnoException,
  pollMs: number,
): string {
  const instead = `finding new files there by polling every ${pollMs} ms instead`
  const keep = 'and set it in /etc/sysctl.d/ to keep it'
  if (err.code === 'ENOSPC') {
    return `cannot watch ${root}: the inotify watch limit is reached (ENOSPC); ${instead}. Raise fs.inotify.max_user_watches: sysctl -w fs.inotify.max_user_watches=524288 (${keep})`
  }
  return `cannot watch ${root}: no inotify instance left (${err.code}: fs.inotify.max_user_instances is reached for this user, or the process is out of file descriptors); ${instead}. Raise fs.inotify.max_user_instances: sysctl -w fs.inotify.max_user_instances=1024 (${keep}), or ulimit -n`
}

/** The directories to watch, each with how deep below it files may appear. */
export function watchRoots(inputs: readonly InputSpec[]): Map<string, number | undefined> {
  const roots = new Map<string, number | undefined>()
  for (const input of inputs) {
    const root = input.kind === 'file' ? dirname(input.root) : input.root
    const depth = input.kind === 'file' ? 0 : input.depth
    const had = roots.get(root)
    const merged = !roots.has(root)
      ? depth
      : had === undefined || depth === undefined
        ? undefined
        : Math.max(had, depth)
    roots.set(root, merged)
  }
  return roots
}

function existingAncestor(dir: string): string {
  let at = dir
  while (!existsSync(at) && dirname(at) !== at) at = dirname(at)
  return at
}

/**
 * chokidar drops a 'change' that comes within 50 ms of the one before and sends no trailing
 * event, so a burst's last write could wait for the sweep. Where chokidar is our only source of
 * change events we look once more this long after each one.
 */
const TRAILING_MS = 60

/** How often a directory that could not be watched is scanned, unless the caller says. */
const DEFAULT_POLL_MS = 1000

export interface DiscoveryOptions {
  /** The output: never an input. */
  readonly exclude?: string
  readonly log: Logger
  /** How often directories that inotify cannot watch are scanned (--poll-interval). */
  readonly pollMs?: number
}

/** A root scanned every poll interval, and the matching paths its last scan found. */
interface Polled {
  depth: number | undefined
  seen: Set<string>
}

export class Discovery {
  readonly #watchers: FSWatcher[] = []
  readonly #raw = new Map<string, { watcher: RawWatcher; ino: number }>()
  readonly #trailing = new Map<string, NodeJS.Timeout>()
  readonly #wanted: (path: string) => boolean
  /** Inputs named as files: a directory at such a name is worth a warning (not skipped quietly). */
  readonly #literal: ReadonlySet<string>
  readonly #events: DiscoveryEvents
  readonly #log: Logger
  readonly #pollMs: number
  readonly #polled = new Map<string, Polled>()
  #poller: NodeJS.Timeout | null = null
  #rescanning: Promise<void> | null = null
  /** Events flow only once start() is done: the engines' start-up scan covers what came before. */
  #started = false
  #check: NodeJS.Timeout | null = null
  #closed: Promise<void> | null = null

  private constructor(
    inputs: readonly InputSpec[],
    events: DiscoveryEvents,
    opts: DiscoveryOptions,
  ) {
    this.#wanted = makeMatcher(inputs, opts.exclude)
    this.#literal = new Set(inputs.filter((i) => i.kind === 'file').map((i) => i.root))
    this.#events = events
    this.#log = opts.log
    this.#pollMs = opts.pollMs ?? DEFAULT_POLL_MS
  }

  /**
   * Starts watching; resolves once the watchers have scanned their directories. A directory
   * whose files are the inputs (a file's parent, a directory input, `dir/*.log`) is watched with
   * one plain fs.watch: one inotify watch for all its files, name and data events, no throttle,
   * little memory. chokidar watches the rest: deeper globs, directories that do not exist yet,
   * and a directory whose plain watch was lost (deleted and created again).
   */
  static async start(
    inputs: readonly InputSpec[],
    events: DiscoveryEvents,
    opts: DiscoveryOptions,
  ): Promise<Discovery> {
    const d = new Discovery(inputs, events, opts)
    const ready: Promise<void>[] = []
    for (const [root, depth] of watchRoots(inputs)) {
      if (depth === 0 && d.#watchDirectory(root)) continue
      ready.push(d.#watchWithChokidar(root, depth))
    }
    if (d.#raw.size > 0) {
      d.#check = setInterval(() => d.#checkDirectories(), 2000)
      d.#check.unref()
    }
    await Promise.all(ready)
    await d.#rescanning // the first scan of polled roots: what is there now is not news
    d.#started = true
    return d
  }

  async #watchWithChokidar(wantedRoot: string, wantedDepth: number | undefined): Promise<void> {
    const { watch } = await import('chokidar') // loaded only when needed
    const wanted = this.#wanted
    const events = this.#events
    // A directory that does not exist yet is watched from its nearest existing ancestor.
    const root = existingAncestor(wantedRoot)
    const extra = root === wantedRoot ? 0 : relative(root, wantedRoot).split(sep).length
    const depth = wantedDepth === undefined ? undefined : wantedDepth + extra
    const onTheWay = (dir: string) =>
      dir === wantedRoot || wantedRoot.startsWith(dir + sep) || dir.startsWith(wantedRoot + sep)
    const watcher = watch(root, {
      depth,
      ignoreInitial: true,
      persistent: true,
      // Rotation must be seen as unlink + add, not folded into one 'change'.
      atomic: false,
      followSymlinks: true,
      // Watch only what an input can want: each watched file costs an inotify watch.
      ignored: (path, stats) => {
        if (path === root || stats === undefined) return false
        return stats.isDirectory() ? !onTheWay(path) : !wanted(path)
      },
    })
    watcher.on('add', (p) => wanted(p) && events.changedName(p))
    watcher.on('unlink', (p) => wanted(p) && events.changedName(p))
    watcher.on('change', (p) => {
      if (!wanted(p)) return
      events.changedData(p)
      this.#trail(p)
    })
    watcher.on('error', (err) => {
      // chokidar goes on with what it could watch; polling the whole root covers the rest.
      if (isInotifyLimit(err)) this.#pollInstead(wantedRoot, wantedDepth, err)
      else this.#log.warn(`watching ${root}: ${(err as Error).message}`)
    })
    this.#watchers.push(watcher)
    await new Promise<void>((resolve) => watcher.once('ready', () => resolve()))
  }

  /** A directory watched plainly that was removed or replaced: hand it over to chokidar. */
  #checkDirectories(): void {
    for (const [dir, { watcher, ino }] of this.#raw) {
      if (statQuietly(dir)?.ino === ino) continue
      watcher.close()
      this.#raw.delete(dir)
      this.#log.info(`${dir} was removed or replaced; watching for it to come back`)
      void this.#watchWithChokidar(dir, 0).then(
        () => {
          // Files may have appeared before the new watch: look at them now.
          for (const name of readdirSync(dir, { withFileTypes: false }).map(String)) {
            const path = join(dir, name)
            if (this.#wanted(path)) this.#events.changedName(path)
          }
        },
        () => {},
      )
    }
  }

  /**
   * A plain fs.watch on `dir` (see start). False when `dir` is not there to watch (chokidar then
   * waits for it); true when it is watched, or polled because inotify is out of watches.
   */
  #watchDirectory(dir: string): boolean {
    const st = statQuietly(dir)
    if (!st?.isDirectory()) return false
    try {
      const watcher = watchDir(dir, { persistent: true }, (type, name) => {
        if (!name) return
        const path = join(dir, name.toString())
        if (!this.#wanted(path) || this.#isSubdirectory(type, path)) return
        if (type === 'change') this.#events.changedData(path)
        else this.#events.changedName(path)
      })
      watcher.on('error', (err) => {
        watcher.close() // #checkDirectories hands a removed directory to chokidar
        if (isInotifyLimit(err)) this.#pollInstead(dir, 0, err)
      })
      this.#raw.set(dir, { watcher, ino: st.ino })
      return true
    } catch (err) {
      if (!isInotifyLimit(err)) return false
      this.#pollInstead(dir, 0, err)
      return true
    }
  }

  /**
   * A directory that appeared inside a directory or glob input is not an input file: skipped
   * quietly, as the start-up scan skips it. (A file name given literally that turns out to be a
   * directory is reported by the follower.)
   */
  #isSubdirectory(type: string, path: string): boolean {
    return type === 'rename' && !this.#literal.has(path) && !!statQuietly(path)?.isDirectory()
  }

  /**
   * inotify cannot watch `root` (a limit is reached): scan it every poll interval for names that
   * appear or go away. What happens to the files logmerge already follows is the readers'
   * periodic sweep's business, which does not need inotify. Warns once per kind of limit.
   */
  #pollInstead(root: string, depth: number | undefined, err: NodeJS.ErrnoException): void {
    this.#log.warnOnce(`inotify:${err.code}`, inotifyLimitMessage(root, err, this.#pollMs))
    const had = this.#polled.get(root)
    if (had) {
      if (had.depth !== undefined)
        had.depth = depth === undefined ? undefined : Math.max(had.depth, depth)
      return
    }
    this.#polled.set(root, { depth, seen: new Set() })
    if (this.#poller === null && this.#closed === null) {
      this.#poller = setInterval(() => void this.#rescan(), this.#pollMs)
      this.#poller.unref()
    }
    void this.#rescan()
  }

  /** One scan of every polled root; a name found or lost since the last one is looked at. */
  #rescan(): Promise<void> {
    this.#rescanning ??= (async () => {
      try {
        for (const [root, polled] of this.#polled) {
          const now = new Set<string>()
          for await (const path of walk(root, polled.depth ?? Number.POSITIVE_INFINITY)) {
            if (this.#wanted(path)) now.add(path)
          }
          if (this.#started && this.#closed === null) {
            for (const path of now) if (!polled.seen.has(path)) this.#events.changedName(path)
            for (const path of polled.seen) if (!now.has(path)) this.#events.changedName(path)
          }
          polled.seen = now
        }
      } finally {
        this.#rescanning = null
      }
    })()
    return this.#rescanning
  }

  /** chokidar throttles 'change' (see TRAILING_MS): look once more a moment later. */
  #trail(path: string): void {
    if (this.#trailing.has(path) || this.#closed) return
    const t = setTimeout(() => {
      this.#trailing.delete(path)
      this.#events.changedData(path)
    }, TRAILING_MS)
    t.unref()
    this.#trailing.set(path, t)
  }

  /** Idempotent: every call returns the same promise. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      if (this.#check) clearInterval(this.#check)
      if (this.#poller) clearInterval(this.#poller)
      await this.#rescanning
      for (const t of this.#trailing.values()) clearTimeout(t)
      for (const { watcher } of this.#raw.values()) watcher.close()
      await Promise.all(this.#watchers.map((w) => w.close()))
    })()
    return this.#closed
  }
}
