/**
 * Diagnostics: one line each on stderr, `logmerge: level: message` (`logmerge: job: level:
 * message` when a daemon runs several jobs).
 *
 * Under systemd, when stderr is the journal (JOURNAL_STREAM names it), each line starts with its
 * sd-daemon priority instead (`<4>warn: ...`, sd-daemon(3)) so journald keeps the level
 * (`journalctl -p warning`), and without `logmerge:`, which journald records itself (with the
 * time). Colour only on a terminal, and never when NO_COLOR is set (no-color.org).
 */
import { fstatSync } from 'node:fs'

export const LEVELS = ['error', 'warn', 'info', 'debug'] as const
export type Level = (typeof LEVELS)[number]

export interface Logger {
  error(message: string): void
  warn(message: string): void
  info(message: string): void
  debug(message: string): void
  /** Warn only the first time `key` is seen (until `forget(key)`). */
  warnOnce(key: string, message: string): void
  forget(key: string): void
}

/** plain text; coloured level words for a terminal; sd-daemon priority prefixes for journald. */
export type Style = 'plain' | 'color' | 'journal'

/** sd-daemon(3): <3> SD_ERR, <4> SD_WARNING, <6> SD_INFO, <7> SD_DEBUG. */
const PRIORITY: Record<Level, number> = { error: 3, warn: 4, info: 6, debug: 7 }

/** ANSI SGR: red, yellow, cyan, dim. */
const COLOUR: Record<Level, string> = { error: '31', warn: '33', info: '36', debug: '2' }

/**
 * True when stderr is the journal's stream. systemd sets JOURNAL_STREAM to the device and inode
 * of the stream it connected (systemd.exec(5)); a child whose stderr was redirected elsewhere
 * inherits the variable, so it counts only when fd 2 still is that stream.
 */
export function stderrIsJournal(env: NodeJS.ProcessEnv = process.env): boolean {
  const m = /^(\d+):(\d+)$/.exec(env.JOURNAL_STREAM ?? '')
  if (m === null) return false
  try {
    const st = fstatSync(2, { bigint: true })
    return st.dev === BigInt(m[1] as string) && st.ino === BigInt(m[2] as string)
  } catch {
    return false
  }
}

/** How this process's stderr wants its lines. */
export function detectStyle(
  env: NodeJS.ProcessEnv = process.env,
  isTTY: boolean = process.stderr.isTTY === true,
): Style {
  if (stderrIsJournal(env)) return 'journal'
  // no-color.org: set and not empty disables colour; a dumb terminal has none either.
  const noColor = (env.NO_COLOR ?? '') !== '' || env.TERM === 'dumb'
  return isTTY && !noColor ? 'color' : 'plain'
}

/** The line(s) for one diagnostic; a message with newlines gets the prefix on every line. */
export function formatLine(style: Style, level: Level, message: string, job?: string): string {
  const who = job === undefined ? '' : `${job}: `
  const word = style === 'color' ? `\x1b[${COLOUR[level]}m${level}:\x1b[0m` : `${level}:`
  const prefix = style === 'journal' ? `<${PRIORITY[level]}>${who}` : `logmerge: ${who}`
  return message
    .split('\n')
    .map((line) => `${prefix}${word} ${line}\n`)
    .join('')
}

/**
 * Prefixes each line of text that is already worded (commander's `error: ...`): `logmerge: `
 * for people, the error priority for journald.
 */
export function prefixLines(text: string, style: Style = detectStyle()): string {
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => (style === 'journal' ? `<${PRIORITY.error}>${line}\n` : `logmerge: ${line}\n`))
    .join('')
}

export interface LoggerOptions {
  /** Default: detected from stderr when writing to it, plain when `write` is given. */
  readonly style?: Style
  /** The job's name, when the daemon runs several. */
  readonly job?: string
}

export function createLogger(
  level: Level,
  write?: (line: string) => void,
  options: LoggerOptions = {},
): Logger {
  const style = options.style ?? (write ? 'plain' : detectStyle())
  const out = write ?? ((line: string) => process.stderr.write(line))
  return levelLogger(level, (at, message) => out(formatLine(style, at, message, options.job)))
}

/**
 * A logger that hands each diagnostic on as (level, message), filtered by `level`: reader
 * threads send theirs to the main thread, whose logger words them.
 */
export function levelLogger(level: Level, emit: (at: Level, message: string) => void): Logger {
  const max = LEVELS.indexOf(level)
  const warned = new Set<string>()
  const log = (at: Level, message: string) => {
    if (LEVELS.indexOf(at) <= max) emit(at, message)
  }
  return {
    error: (m) => log('error', m),
    warn: (m) => log('warn', m),
    info: (m) => log('info', m),
    debug: (m) => log('debug', m),
    warnOnce(key, m) {
      if (warned.has(key)) return
      warned.add(key)
      log('warn', m)
    },
    forget: (key) => warned.delete(key),
  }
}

export const silentLogger: Logger = createLogger('error', () => {})
