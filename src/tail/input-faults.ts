/**
 * The readers' faults as the operator sees them: input names that cannot be followed (missing,
 * unreadable, not a regular file) and files whose reads fail (EIO), each warned about once and
 * said again when it works; what --once reports as not read. No I/O: the shells do the stat,
 * the open and the read, and report what happened.
 */
import { describeErrno, isErrno } from '../errors.js'
import type { Logger } from '../log.js'
import type { Tracked } from './tracked.js'

export class InputFaults {
  /** Names that could not be opened (missing, unreadable, not a file) at their last look. */
  readonly unreadable = new Set<string>()
  /** Files whose last read failed (EIO: a failing disk), identity key -> path. */
  readonly failing = new Map<string, string>()
  /** Names whose last open failed (to say so when one works again). */
  readonly #openFailures = new Set<string>()

  /** What --once reports as not read: names not opened, and files whose reads failed. */
  unreadableNow(): string[] {
    return [...new Set([...this.unreadable, ...this.failing.values()])]
  }

  /**
   * What a stat of the input name `path` found (its Stats, or the error it threw): the file to
   * follow, or null, with a warning (once) where one is due (`startupName`: a name from the
   * start-up scan, which is said to be missing). The shells do the stat.
   */
  judgeName<S extends FileKind>(
    path: string,
    seen: { stats: S } | { error: unknown },
    follow: boolean,
    log: Pick<Logger, 'warnOnce' | 'forget'>,
    startupName: boolean,
  ): S | null {
    if ('stats' in seen && seen.stats.isFile()) {
      this.unreadable.delete(path)
      // A name that was something else, or could not be stat'ed, may warn again next time.
      log.forget(`type:${path}`)
      log.forget(`stat:${path}`)
      return seen.stats
    }
    this.unreadable.add(path)
    if ('stats' in seen) {
      log.warnOnce(`type:${path}`, notAFile(path, seen.stats))
    } else if (!isErrno(seen.error, 'ENOENT', 'ENOTDIR')) {
      const why = describeErrno(seen.error as NodeJS.ErrnoException)
      log.warnOnce(`stat:${path}`, `cannot follow ${path}: ${why}; will keep trying`)
    } else if (startupName) {
      const later = follow ? ' yet; it will be followed when it appears' : ''
      log.warnOnce(`missing:${path}`, `${path} does not exist${later}`)
    }
    return null
  }

  /** The shell could not open `path` (permission denied...). */
  openFailed(path: string): void {
    this.unreadable.add(path)
    this.#openFailures.add(path)
  }

  /** `path` opened: if opening it had failed, say it works now (and warn again next time). */
  openWorked(path: string, log: Pick<Logger, 'forget' | 'info'>): void {
    if (!this.#openFailures.delete(path)) return
    log.forget(`open:${path}`)
    log.info(`${path}: can be opened now; following it`)
  }

  /**
   * A read of `file` failed (EIO: a failing disk or a lost network mount): warn once, and count
   * it as unread for --once. Its unread bytes stay unread, not skipped: the sweep sees it behind
   * and tries again every poll interval; the other inputs go on meanwhile.
   */
  readFailed(
    file: Tracked<unknown>,
    err: NodeJS.ErrnoException,
    log: Pick<Logger, 'warnOnce'>,
  ): void {
    this.failing.set(file.key, file.path)
    log.warnOnce(
      `read:${file.key}`,
      `cannot read ${file.path}: ${describeErrno(err)}; will retry (the other inputs go on)`,
    )
  }

  /** A read of `file` worked: if one had failed, say it reads again (and warn again next time). */
  readWorked(file: Tracked<unknown>, log: Pick<Logger, 'forget' | 'info'>): void {
    if (!this.failing.delete(file.key)) return
    log.forget(`read:${file.key}`)
    log.info(`${file.path}: can be read again; reading on from where it stopped`)
  }
}

/** What judgeName needs to know about a stat (a subset of fs.Stats). */
export interface FileKind {
  isFile(): boolean
  isDirectory(): boolean
  isFIFO(): boolean
  isSocket(): boolean
  isCharacterDevice(): boolean
  isBlockDevice(): boolean
}

/**
 * Why `path` is skipped, and what to do instead. Only regular files have offsets to resume from
 * and an end to read to: a FIFO's bytes can be read once, /dev/zero never ends.
 */
export function notAFile(path: string, st: FileKind): string {
  if (st.isDirectory()) {
    return `${path} is a directory, not a log file; skipping it (to follow the files in it, give a glob such as '${path}/*')`
  }
  const kinds: [boolean, string, string][] = [
    [st.isFIFO(), 'a FIFO (named pipe)', 'have the program write its log to a file'],
    [st.isSocket(), 'a socket', 'have the program write its log to a file'],
    [st.isCharacterDevice(), 'a character device', 'remove it from the inputs'],
    [st.isBlockDevice(), 'a block device', 'remove it from the inputs'],
  ]
  const [, what, instead] = kinds.find(([is]) => is) ?? [
    true,
    'something else',
    'remove it from the inputs',
  ]
  return `${path} is ${what}, not a regular file; skipping it: logmerge follows regular files only (${instead})`
}
