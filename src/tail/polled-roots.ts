/**
 * Discovery's fallback where inotify cannot watch (its watch or instance limit is reached): the
 * roots it could not watch are scanned every poll interval for names that appear or go away.
 * What happens to the files logmerge already follows is the readers' periodic sweep's business,
 * which does not need inotify. Apart from discovery.ts because it is a watcher of its own, with
 * its own timer and scan, that discovery only starts, waits for and stops.
 */
import { isErrno } from '../errors.js'
import type { Logger } from '../log.js'
import { walkFiles } from './inputs.js'

/**
 * inotify's answers when a limit is reached: ENOSPC for fs.inotify.max_user_watches, EMFILE for
 * fs.inotify.max_user_instances (or the process's own file descriptor limit). See inotify(7).
 */
export const isInotifyLimit = (err: unknown): err is NodeJS.ErrnoException =>
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

/** A root scanned every poll interval, and the matching paths its last scan found. */
interface Polled {
  depth: number | undefined
  seen: Set<string>
}

export class PolledRoots {
  readonly #roots = new Map<string, Polled>()
  readonly #wanted: (path: string) => boolean
  readonly #changedName: (path: string) => void
  readonly #log: Logger
  readonly #pollMs: number
  #timer: NodeJS.Timeout | null = null
  #scanning: Promise<void> | null = null
  /** Names found or lost are reported only once discovery has started (see startReporting). */
  #reporting = false
  #closed = false

  constructor(
    wanted: (path: string) => boolean,
    changedName: (path: string) => void,
    log: Logger,
    pollMs: number,
  ) {
    this.#wanted = wanted
    this.#changedName = changedName
    this.#log = log
    this.#pollMs = pollMs
  }

  /**
   * inotify cannot watch `root` (`err` says which limit): scan it, `depth` deep, every poll
   * interval from now on. Warns once per kind of limit.
   */
  add(root: string, depth: number | undefined, err: NodeJS.ErrnoException): void {
    this.#log.warnOnce(`inotify:${err.code}`, inotifyLimitMessage(root, err, this.#pollMs))
    const had = this.#roots.get(root)
    if (had) {
      if (had.depth !== undefined)
        had.depth = depth === undefined ? undefined : Math.max(had.depth, depth)
      return
    }
    this.#roots.set(root, { depth, seen: new Set() })
    if (this.#timer === null && !this.#closed) {
      this.#timer = setInterval(() => void this.#rescan(), this.#pollMs)
      this.#timer.unref()
    }
    void this.#rescan()
  }

  /** The scan under way, if any: the first one finds what is there already, which is not news. */
  get scanning(): Promise<void> | null {
    return this.#scanning
  }

  /** From now on, a name a scan finds or misses since the last one is reported. */
  startReporting(): void {
    this.#reporting = true
  }

  /** Stops scanning; resolves once a scan under way is over. */
  async close(): Promise<void> {
    this.#closed = true
    if (this.#timer) clearInterval(this.#timer)
    await this.#scanning
  }

  /** One scan of every root; a name found or lost since the last one is looked at. */
  #rescan(): Promise<void> {
    this.#scanning ??= (async () => {
      try {
        for (const [root, polled] of this.#roots) {
          const now = new Set<string>()
          for await (const path of walkFiles(root, polled.depth ?? Number.POSITIVE_INFINITY)) {
            if (this.#wanted(path)) now.add(path)
          }
          if (this.#reporting && !this.#closed) {
            for (const path of now) if (!polled.seen.has(path)) this.#changedName(path)
            for (const path of polled.seen) if (!now.has(path)) this.#changedName(path)
          }
          polled.seen = now
        }
      } finally {
        this.#scanning = null
      }
    })()
    return this.#scanning
  }
}
