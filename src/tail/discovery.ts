/**
 * Finding input files: a one-time scan at start-up, then chokidar events for what appears,
 * changes and goes away. Every input is watched through its directory (a literal file through
 * its parent), so a file that does not exist yet, or is deleted and created again, is seen.
 * Where inotify's limits are reached, a directory is scanned every poll interval instead.
 *
 * Two kinds of name are reported under another path than the one an event names:
 * - A file input that is a symbolic link: events come for the file it points to, in that
 *   file's directory (watched too), and are reported as the link's. So a link whose target does
 *   not exist yet, or that an application points elsewhere ("current" -> app-2026-12-06.log),
 *   is followed once the target appears or the link moves, as `tail -F` follows it.
 * - A directory input whose directory is replaced by a regular file of the same name: the name
 *   is what was asked for, so the file is followed from then on (through its parent's watch).
 */
import { existsSync, type FSWatcher as RawWatcher, readdirSync, watch as watchDir } from 'node:fs'
import { dirname, join, relative, sep } from 'node:path'
import type { FSWatcher } from 'chokidar'
import type { Logger } from '../log.js'
import {
  BUSY_EVENTS,
  compareLooks,
  EventRate,
  type FileLook,
  type LookDiff,
  POLL_MAX_FILES,
  POLL_MS,
  QUIET_POLLS,
  WINDOW_MS,
} from './busy-dir.js'
import { type Listed, listedNow, lookAgain, lookAt, sameListing } from './busy-looks.js'
import { statQuietly } from './input-fs.js'
import { type InputSpec, makeMatcher, watchRoots } from './inputs.js'
import { isInotifyLimit, PolledRoots } from './polled-roots.js'
import { ReportedNames } from './reported-names.js'

export interface DiscoveryEvents {
  /** A matching path appeared or was removed: look at what it points to now. */
  readonly changedName: (path: string) => void
  /** A matching file was written to. */
  readonly changedData: (path: string) => void
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
  /** Events in WINDOW_MS that make a directory busy (default BUSY_EVENTS; see busy-dir.ts). */
  readonly busyEvents?: number
}

/** A directory watched with a plain fs.watch (see start), or polled while it is busy. */
interface RawDir {
  /** Null while the directory is polled for being busy (see busy-dir.ts). */
  watcher: RawWatcher | null
  readonly ino: number
  readonly rate: EventRate
  /** While busy: the last look at its files, looks in a row that found nothing, the timer. */
  busy: Busy | null
  /** Too many files to poll (see POLL_MAX_FILES): not tried again before this (ms). */
  tooBigUntil: number
}

/** A busy directory's polling (see Discovery.#quieten). */
interface Busy {
  look: Map<string, FileLook>
  /** The directory's change time when its entries were last listed, and when that was. */
  listed: Listed
  quiet: number
  readonly timer: NodeJS.Timeout
}

/** How long a directory found too big to poll is not tried again (ms). */
const TOO_BIG_RETRY_MS = 10_000

export class Discovery {
  readonly #watchers: FSWatcher[] = []
  readonly #raw = new Map<string, RawDir>()
  readonly #trailing = new Map<string, NodeJS.Timeout>()
  readonly #wanted: (path: string) => boolean
  /** Inputs named as files: a directory at such a name is worth a warning (not skipped quietly). */
  readonly #literal: ReadonlySet<string>
  /** Directory inputs: one replaced by a file is followed as a file (see #checkDirectories). */
  readonly #dirInputs: ReadonlySet<string>
  /** Paths reported under other names: a link's target, a directory input now a file. */
  readonly #reported = new ReportedNames((path) => this.#watchParentOf(path))
  readonly #events: DiscoveryEvents
  readonly #log: Logger
  readonly #pollMs: number
  readonly #busyEvents: number
  /** The roots inotify could not watch, scanned instead (see polled-roots.ts). */
  readonly #polled: PolledRoots
  #check: NodeJS.Timeout | null = null
  #closed: Promise<void> | null = null

  private constructor(
    inputs: readonly InputSpec[],
    events: DiscoveryEvents,
    opts: DiscoveryOptions,
  ) {
    this.#wanted = makeMatcher(inputs, opts.exclude)
    this.#literal = new Set(inputs.filter((i) => i.kind === 'file').map((i) => i.root))
    this.#dirInputs = new Set(inputs.filter((i) => i.kind === 'dir').map((i) => i.root))
    this.#events = events
    this.#log = opts.log
    this.#pollMs = opts.pollMs ?? DEFAULT_POLL_MS
    this.#busyEvents = opts.busyEvents ?? BUSY_EVENTS
    this.#polled = new PolledRoots(
      this.#wanted,
      (path) => events.changedName(path),
      opts.log,
      this.#pollMs,
    )
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
    for (const name of d.#literal) d.#reported.track(name)
    if (d.#raw.size > 0) d.#checkRegularly()
    await Promise.all(ready)
    await d.#polled.scanning // the first scan of polled roots: what is there now is not news
    // Events flow only from now: the engines' start-up scan covers what came before.
    d.#polled.startReporting()
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
      if (isInotifyLimit(err)) this.#polled.add(wantedRoot, wantedDepth, err)
      else this.#log.warn(`watching ${root}: ${(err as Error).message}`)
    })
    this.#watchers.push(watcher)
    await new Promise<void>((resolve) => watcher.once('ready', () => resolve()))
  }

  /**
   * A directory watched plainly that was removed or replaced: hand it over to chokidar; or, for
   * a directory input replaced by a regular file, follow the file (see the header).
   */
  #checkDirectories(): void {
    for (const [dir, entry] of this.#raw) {
      const now = statQuietly(dir)
      if (now?.ino === entry.ino) continue
      this.#stopRaw(entry)
      this.#raw.delete(dir)
      if (now?.isFile() && this.#dirInputs.has(dir)) {
        this.#log.info(`${dir} was a directory and is now a file; following the file`)
        this.#reported.asItself(dir)
        this.#watchParentOf(dir)
        this.#events.changedName(dir)
        continue
      }
      this.#log.info(`${dir} was removed or replaced; watching for it to come back`)
      void this.#watchWithChokidar(dir, 0).then(
        () => {
          // Files may have appeared before the new watch: look at them now.
          let names: string[]
          try {
            names = readdirSync(dir)
          } catch {
            return // not a directory (again) yet: chokidar reports it when it is
          }
          for (const name of names) {
            const path = join(dir, name)
            if (this.#wanted(path)) this.#events.changedName(path)
          }
        },
        () => {},
      )
    }
  }

  /** Watches `path`'s directory plainly, unless it is watched already (or not there). */
  #watchParentOf(path: string): void {
    const dir = dirname(path)
    if (!this.#raw.has(dir) && this.#watchDirectory(dir)) this.#checkRegularly()
  }

  /** Looks for replaced plainly watched directories every 2 s from now on (once: idempotent). */
  #checkRegularly(): void {
    if (this.#check !== null || this.#closed !== null) return
    this.#check = setInterval(() => this.#checkDirectories(), 2000)
    this.#check.unref()
  }

  /** The names an event at `path` is reported as: itself if wanted, and the links to it. */
  #namesFor(path: string, type: string): string[] {
    const own = this.#wanted(path) && !this.#isSubdirectory(type, path)
    const others = this.#reported.othersOf(path, type)
    if (!others) return own ? [path] : []
    return own ? [path, ...others] : [...others]
  }

  /**
   * A plain fs.watch on `dir` (see start). False when `dir` is not there to watch (chokidar then
   * waits for it); true when it is watched, or polled because inotify is out of watches.
   */
  #watchDirectory(dir: string): boolean {
    const st = statQuietly(dir)
    if (!st?.isDirectory()) return false
    const entry: RawDir = {
      watcher: null,
      ino: st.ino,
      rate: new EventRate(this.#busyEvents),
      busy: null,
      tooBigUntil: 0,
    }
    try {
      entry.watcher = this.#rawWatch(dir, entry)
      this.#raw.set(dir, entry)
      return true
    } catch (err) {
      if (!isInotifyLimit(err)) return false
      this.#polled.add(dir, 0, err)
      return true
    }
  }

  /** The fs.watch of a plainly watched directory; throws what fs.watch throws. */
  #rawWatch(dir: string, entry: RawDir): RawWatcher {
    const watcher = watchDir(dir, { persistent: true }, (type, name) => {
      if (!name) return
      const path = join(dir, name.toString())
      if (type === 'rename' && this.#reported.isLink(path)) this.#reported.track(path) // repointed
      for (const report of this.#namesFor(path, type)) {
        if (type === 'change') this.#events.changedData(report)
        else this.#events.changedName(report)
      }
      if (entry.rate.hit(performance.now())) this.#quieten(dir, entry)
    })
    watcher.on('error', (err) => {
      watcher.close() // #checkDirectories hands a removed directory to chokidar
      if (entry.watcher === watcher) entry.watcher = null
      if (isInotifyLimit(err)) this.#polled.add(dir, 0, err)
    })
    return watcher
  }

  /**
   * `dir`'s events come too fast (see busy-dir.ts): stop watching it and look at its files every
   * POLL_MS instead, unless it has too many files to look at so often.
   */
  #quieten(dir: string, entry: RawDir): void {
    const now = performance.now()
    if (entry.busy || !entry.watcher || this.#closed || now < entry.tooBigUntil) return
    const listed = listedNow(dir)
    const look = this.#lookAt(dir)
    if (look === null || look.size > POLL_MAX_FILES) {
      entry.tooBigUntil = now + TOO_BIG_RETRY_MS
      return
    }
    entry.watcher.close()
    entry.watcher = null
    // Whatever came before this look and after the last event read is read now.
    for (const path of look.keys())
      for (const n of this.#namesFor(path, 'change')) this.#events.changedData(n)
    const timer = setInterval(() => this.#poll(dir, entry), POLL_MS)
    timer.unref()
    entry.busy = { look, listed, quiet: 0, timer }
    this.#log.debug(
      `${dir}: over ${this.#busyEvents} change events in ${WINDOW_MS} ms; looking at its files every ${POLL_MS} ms instead of watching it`,
    )
  }

  /** One look at a busy directory: what changed since the last is read (or looked at again). */
  #poll(dir: string, entry: RawDir): void {
    const busy = entry.busy
    if (!busy) return
    // Its entries are listed again only when they may have changed (a rotation); otherwise
    // the files it had are stat'ed (a directory of 10,000 other files costs no listing).
    const listed = listedNow(dir)
    const relist = !sameListing(busy.listed, listed)
    const look = relist ? this.#lookAt(dir) : lookAgain(busy.look)
    if (relist) busy.listed = listed
    if (look === null) {
      this.#stopRaw(entry) // gone: #checkDirectories hands it over to chokidar
      return
    }
    const found = this.#tell(compareLooks(busy.look, look))
    busy.look = look
    busy.quiet = found ? 0 : busy.quiet + 1
    if (busy.quiet >= QUIET_POLLS || look.size > POLL_MAX_FILES) this.#rewatch(dir, entry)
  }

  /** A busy directory has calmed down: watch it again, then look once more (see busy-dir.ts). */
  #rewatch(dir: string, entry: RawDir): void {
    const busy = entry.busy
    if (!busy) return
    clearInterval(busy.timer)
    entry.busy = null
    entry.rate.reset()
    try {
      entry.watcher = this.#rawWatch(dir, entry)
    } catch (err) {
      if (isInotifyLimit(err)) this.#polled.add(dir, 0, err)
      return
    }
    // Changes between the last look and the new watch: only a look finds them.
    const look = this.#lookAt(dir)
    if (look) this.#tell(compareLooks(busy.look, look))
    this.#log.debug(`${dir}: quiet again; watching it`)
  }

  /** Passes a look's findings on; true when there were any. */
  #tell({ names, data }: LookDiff): boolean {
    for (const path of names)
      for (const n of this.#namesFor(path, 'rename')) this.#events.changedName(n)
    for (const path of data)
      for (const n of this.#namesFor(path, 'change')) this.#events.changedData(n)
    return names.length + data.length > 0
  }

  /** The files of `dir` this discovery reports, as a stat sees them now (see busy-looks.ts). */
  #lookAt(dir: string): Map<string, FileLook> | null {
    return lookAt(dir, (path) => this.#wanted(path) || this.#reported.has(path))
  }

  /** Stops watching and polling a plainly watched directory. */
  #stopRaw(entry: RawDir): void {
    entry.watcher?.close()
    entry.watcher = null
    if (entry.busy) clearInterval(entry.busy.timer)
    entry.busy = null
  }

  /**
   * A directory that appeared inside a directory or glob input is not an input file: skipped
   * quietly, as the start-up scan skips it. (A file name given literally that turns out to be a
   * directory is reported by the follower.)
   */
  #isSubdirectory(type: string, path: string): boolean {
    return type === 'rename' && !this.#literal.has(path) && !!statQuietly(path)?.isDirectory()
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
      await this.#polled.close()
      for (const t of this.#trailing.values()) clearTimeout(t)
      for (const entry of this.#raw.values()) this.#stopRaw(entry)
      await Promise.all(this.#watchers.map((w) => w.close()))
    })()
    return this.#closed
  }
}
