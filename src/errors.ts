/**
 * Errors with a stable code, the process exit codes they map to, and the plain form in which
 * an error crosses from a thread to the main thread.
 *
 * A message that tells the user what to fix is built in `errors` below, so its wording lives in
 * one place. A message made of what only one module knows is built there, with a code from
 * ErrorCode: which reader thread failed and where (batch/feed.ts, engines/threaded.ts), and
 * which metrics address could not be listened on (metrics/server.ts).
 */
import { dirname } from 'node:path'

/** Process exit codes (documented in --help and in the README's "Exit codes"). */
export const ExitCode = {
  ok: 0,
  /** An unexpected internal error (a bug): please report it. */
  internal: 1,
  /**
   * Bad command line or config file: unknown flag or key, bad value, output that is also an
   * input, two jobs writing one output. One code for both: either way the invocation is wrong,
   * a restart cannot help (the unit's RestartPreventExitStatus=2), and `check-config` exits 2.
   */
  usage: 2,
  /** With --once: some inputs could not be read (missing, unreadable); the rest were merged. */
  inputs: 3,
  /** The output could not be opened or written and logmerge could not recover. */
  io: 4,
  /** A reader thread failed (the others were drained and stopped). */
  thread: 5,
  /** SIGTERM/SIGINT: could not drain within --shutdown-timeout (nothing lost: see the state). */
  shutdownTimeout: 6,
  /** Fleet: no NATS server of the URL could be reached at start-up, or JetStream is unusable. */
  natsUnreachable: 7,
  /**
   * Fleet: the NATS server refused the credentials (or does not permit the stream's subjects),
   * or TLS could not be agreed (a server certificate not trusted, a client certificate wanted).
   */
  natsAuth: 8,
  /** Fleet centre: the stream no longer holds messages not yet merged (limits, purge, deleted). */
  streamLost: 9,
} as const
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode]

export type ErrorCode =
  | 'EUSAGE'
  | 'ECONFIG'
  | 'EOUTPUT_IS_INPUT'
  | 'EOUTPUT_DIR'
  | 'ESTATE_DIR'
  | 'EOUTPUT_OPEN'
  | 'EOUTPUT_WRITE'
  | 'EOUTPUT_CLOSED'
  | 'EINPUT'
  | 'ETHREAD'
  | 'ENATS_UNREACHABLE'
  | 'ENATS_AUTH'
  | 'ENATS_TLS'
  | 'ESTREAM_LOST'
  | 'EMETRICS'

const exitFor: Record<ErrorCode, ExitCode> = {
  EUSAGE: ExitCode.usage,
  ECONFIG: ExitCode.usage,
  EOUTPUT_IS_INPUT: ExitCode.usage,
  EOUTPUT_DIR: ExitCode.usage,
  ESTATE_DIR: ExitCode.usage,
  EOUTPUT_OPEN: ExitCode.io,
  EOUTPUT_WRITE: ExitCode.io,
  EOUTPUT_CLOSED: ExitCode.io,
  EINPUT: ExitCode.usage,
  ETHREAD: ExitCode.thread,
  ENATS_UNREACHABLE: ExitCode.natsUnreachable,
  ENATS_AUTH: ExitCode.natsAuth,
  ENATS_TLS: ExitCode.natsAuth,
  ESTREAM_LOST: ExitCode.streamLost,
  /** --metrics-listen or --metrics-file cannot be used (an address taken, a directory missing). */
  EMETRICS: ExitCode.usage,
}

export class LogmergeError extends Error {
  override readonly name = 'LogmergeError'
  readonly code: ErrorCode
  /** What the user can do about it, shown after the message. */
  readonly hint: string | undefined
  /** Several independent problems (a config file's), each shown on its own line. */
  readonly problems: readonly string[]

  constructor(
    code: ErrorCode,
    message: string,
    options?: { cause?: unknown; hint?: string; problems?: readonly string[] },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
    this.hint = options?.hint
    this.problems = options?.problems ?? [message]
  }

  get exitCode(): ExitCode {
    return exitFor[this.code]
  }
}

export const errors = {
  usage: (message: string, hint = 'see `logmerge --help`') =>
    new LogmergeError('EUSAGE', message, { hint }),
  /** Problems found in a config file: each names the file and the key path. */
  config: (file: string, problems: readonly string[]) =>
    new LogmergeError('ECONFIG', `${file}: ${problems[0] ?? 'invalid'}`, {
      problems: problems.map((p) => `${file}: ${p}`),
    }),
  outputIsInput: (output: string, how: string) =>
    new LogmergeError('EOUTPUT_IS_INPUT', `output ${output} is also an input (${how})`, {
      hint: 'write the output outside the inputs, or narrow the input glob',
    }),
  outputDir: (output: string, cause: NodeJS.ErrnoException) =>
    new LogmergeError(
      'EOUTPUT_DIR',
      `cannot create output ${output}: ${cause.code === 'ENOENT' ? `its directory ${dirname(output)} does not exist` : describeErrno(cause)}`,
      { cause, hint: 'create the directory or choose another --output' },
    ),
  /** Found at start: the output or the state file cannot be written where it is. */
  notWritable: (
    role: 'output' | 'state file' | 'metrics file',
    path: string,
    problem: string,
    hint: string,
  ) =>
    new LogmergeError(
      role === 'output' ? 'EOUTPUT_DIR' : role === 'state file' ? 'ESTATE_DIR' : 'EMETRICS',
      `cannot write ${role} ${path}: ${problem}`,
      { hint },
    ),
  outputOpen: (output: string, cause: NodeJS.ErrnoException) =>
    new LogmergeError('EOUTPUT_OPEN', `cannot open output ${output}: ${describeErrno(cause)}`, {
      cause,
      hint:
        cause.code === 'EISDIR'
          ? 'give a file path, not a directory, to --output'
          : 'check the path and its permissions',
    }),
  /** stdout's reader went away (`logmerge ... | head`): stop quietly, like cat. */
  outputClosed: (cause: Error) =>
    new LogmergeError('EOUTPUT_CLOSED', 'the output was closed by its reader (EPIPE); stopping', {
      cause,
    }),
  /** At start-up, an input cannot be opened even one at a time: the fd limit is too low. */
  outOfDescriptors: (path: string) =>
    new LogmergeError(
      'EINPUT',
      `cannot open input ${path}: the process is out of file descriptors (EMFILE) with no input open`,
      { hint: 'raise the limit on open files: ulimit -n, or LimitNOFILE= in the unit' },
    ),
  outputWrite: (output: string, cause: NodeJS.ErrnoException) =>
    new LogmergeError('EOUTPUT_WRITE', `cannot write output ${output}: ${describeErrno(cause)}`, {
      cause,
      hint: 'free space or fix permissions, then restart; nothing read was acknowledged as written',
    }),
}

/** "permission denied (EACCES)" rather than libuv's "EACCES: permission denied, open '/x'". */
export function describeErrno(err: NodeJS.ErrnoException): string {
  const text: Record<string, string> = {
    ENOENT: 'no such file or directory',
    EACCES: 'permission denied',
    EPERM: 'operation not permitted',
    EISDIR: 'is a directory',
    ENOTDIR: 'a path component is not a directory',
    ENOSPC: 'no space left on device',
    EFBIG: 'file too large',
    EIO: 'input/output error',
    EMFILE: 'too many open files',
    EROFS: 'read-only file system',
  }
  const code = err.code ?? 'unknown'
  return `${text[code] ?? err.message} (${code})`
}

export const isErrno = (err: unknown, ...codes: string[]): err is NodeJS.ErrnoException =>
  err instanceof Error && codes.includes((err as NodeJS.ErrnoException).code ?? '')

/** An error from the operating system (it has an errno code and a syscall), not a bug. */
export const isSystemError = (err: unknown): err is NodeJS.ErrnoException =>
  err instanceof Error && typeof (err as NodeJS.ErrnoException).syscall === 'string'

/**
 * An error as it crosses a thread boundary: structured clone turns an Error subclass into a
 * plain Error and drops fields such as `code`, so the fields that matter travel as plain data
 * and the error is rebuilt on the other side.
 */
export interface SerializedError {
  readonly name: string
  readonly message: string
  readonly code: string | undefined
  readonly stack: string | undefined
}

export const serializeError = (err: unknown): SerializedError => {
  const e = err instanceof Error ? err : new Error(String(err))
  return {
    name: e.name,
    message: e.message,
    code: (e as NodeJS.ErrnoException).code,
    stack: e.stack,
  }
}

export const rebuildError = (s: SerializedError): Error => {
  const err = new Error(s.message) as NodeJS.ErrnoException
  err.name = s.name
  if (s.code !== undefined) err.code = s.code
  if (s.stack !== undefined) err.stack = s.stack
  return err
}
