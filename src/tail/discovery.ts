/**
 * Finding input files: a one-time scan at start-up, then chokidar events for what appears,
 * changes and goes away. Every input is watched through its directory (a literal file through
 * its parent), so a file that does not exist yet, or is deleted and created again, is seen.
 */
import { type Dirent, existsSync, type FSWatcher as RawWatcher, watch as watchDir } from 'node:fs'
import { readdir } from 'node:fs/promises'
import { dirname, join, relative, sep } from 'node:path'
import type { FSWatcher } from 'chokidar'
import type { Logger } from '../log.js'
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
    } else {
      yield path // symlinks included: the follower stats through them
    }
  }
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

export class Discovery {
  readonly #watchers: FSWatcher[] = []
  readonly #raw: RawWatcher[] = []
  readonly #trailing = new Map<string, NodeJS.Timeout>()
  #closed: Promise<void> | null = null

  private constructor() {}

  /** Starts watching; resolves once the watchers have scanned their directories. */
  static async start(
    inputs: readonly InputSpec[],
    events: DiscoveryEvents,
    opts: { exclude?: string; log: Logger },
  ): Promise<Discovery> {
    const wanted = makeMatcher(inputs, opts.exclude)
    const { watch } = await import('chokidar') // loaded only when following, not for --once
    const d = new Discovery()
    const ready: Promise<void>[] = []
    for (const [wantedRoot, wantedDepth] of watchRoots(inputs)) {
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
      const raw =
        wantedDepth === 0 && root === wantedRoot ? d.#watchDirectory(root, wanted, events) : false
      watcher.on('add', (p) => wanted(p) && events.changedName(p))
      watcher.on('unlink', (p) => wanted(p) && events.changedName(p))
      watcher.on('change', (p) => {
        if (!wanted(p)) return
        events.changedData(p)
        if (!raw) d.#trail(p, events)
      })
      watcher.on('error', (err) => opts.log.warn(`watching ${root}: ${(err as Error).message}`))
      ready.push(new Promise((resolve) => watcher.once('ready', resolve)))
      d.#watchers.push(watcher)
    }
    await Promise.all(ready)
    return d
  }

  /**
   * Data events for the files directly in `dir` from one plain fs.watch on the directory (one
   * inotify watch for all its files, and no throttle): the low-latency path. Returns false when
   * the directory cannot be watched (chokidar's events, with a trailing look, remain).
   */
  #watchDirectory(dir: string, wanted: (p: string) => boolean, events: DiscoveryEvents): boolean {
    try {
      const w = watchDir(dir, { persistent: false }, (type, name) => {
        if (!name) return
        const path = join(dir, name.toString())
        if (!wanted(path)) return
        if (type === 'change') events.changedData(path)
        else events.changedName(path)
      })
      w.on('error', () => w.close()) // the directory went away: chokidar still watches
      this.#raw.push(w)
      return true
    } catch {
      return false
    }
  }

  #trail(path: string, events: DiscoveryEvents): void {
    if (this.#trailing.has(path) || this.#closed) return
    const t = setTimeout(() => {
      this.#trailing.delete(path)
      events.changedData(path)
    }, TRAILING_MS)
    t.unref()
    this.#trailing.set(path, t)
  }

  /** Idempotent: every call returns the same promise. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      for (const t of this.#trailing.values()) clearTimeout(t)
      for (const w of this.#raw) w.close()
      await Promise.all(this.#watchers.map((w) => w.close()))
    })()
    return this.#closed
  }
}
