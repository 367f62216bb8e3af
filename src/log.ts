/**
 * Diagnostics: one line each on stderr, `logmerge: level: message`. Kept tiny on purpose; the
 * service issue adds journald priority prefixes here.
 */
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

export function createLogger(
  level: Level,
  write: (line: string) => void = (l) => process.stderr.write(l),
): Logger {
  const max = LEVELS.indexOf(level)
  const warned = new Set<string>()
  const emit = (at: Level, message: string) => {
    if (LEVELS.indexOf(at) <= max) write(`logmerge: ${at}: ${message}\n`)
  }
  return {
    error: (m) => emit('error', m),
    warn: (m) => emit('warn', m),
    info: (m) => emit('info', m),
    debug: (m) => emit('debug', m),
    warnOnce(key, m) {
      if (warned.has(key)) return
      warned.add(key)
      emit('warn', m)
    },
    forget: (key) => warned.delete(key),
  }
}

export const silentLogger: Logger = createLogger('error', () => {})
