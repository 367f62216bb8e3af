/**
 * The output file as both writers see it: opening it, telling a fault we wait out (full disk,
 * size limit) from one we die of, stat'ing it for the watch (whose decisions are in
 * output-watch.ts), and leaving it part-way through a block. Pure decisions are kept apart from
 * the fs calls so they can be tested alone.
 */
import { fstatSync, fsyncSync, ftruncateSync, open, openSync, type Stats, statSync } from 'node:fs'
import { promisify } from 'node:util'
import { isMainThread } from 'node:worker_threads'
import { describeErrno, errors, isErrno } from '../errors.js'
import { type FileFacts, type OutputChange, outputChange } from './output-watch.js'

const openAsync = promisify(open)

/** Errors we wait out (full disk, quota, file size limit, a pipe not ready) instead of dying. */
export const RETRYABLE = ['EAGAIN', 'ENOSPC', 'EDQUOT', 'EFBIG', 'EIO', 'EINTR'] as const

/**
 * Codes a failed output write is counted under (metrics): the errors a writer waits out, the
 * ones that end the run, and `other` for the rest, so the label has a bounded set of values.
 * EAGAIN (a full pipe on stdout) is ordinary backpressure and not counted.
 */
export const WRITE_ERROR_CODES = [
  'ENOSPC',
  'EDQUOT',
  'EFBIG',
  'EIO',
  'EINTR',
  'EPIPE',
  'EACCES',
  'EPERM',
  'EROFS',
  'EBADF',
  'other',
] as const
export type WriteErrorCode = (typeof WRITE_ERROR_CODES)[number]

/** Where `code` is counted in WRITE_ERROR_CODES (`other` for a code not listed). */
export const writeErrorIndex = (code: string | undefined): number => {
  const at = (WRITE_ERROR_CODES as readonly string[]).indexOf(code ?? '')
  return at === -1 ? WRITE_ERROR_CODES.length - 1 : at
}

/** The first wait before a failing write is tried again; each next one is twice as long. */
export const FIRST_BACKOFF_MS = 50

/** The longest wait between two tries of a failing write: a failed write costs one syscall. */
export const MAX_BACKOFF_MS = 1000

export const nextBackoff = (ms: number): number => Math.min(ms * 2, MAX_BACKOFF_MS)

/** Opens `path` for appending, in the thread that owns the output. */
export function openOutputSync(path: string): number {
  keepFileSizeErrors()
  try {
    return openSync(path, 'a', 0o644)
  } catch (err) {
    throw openError(path, err as NodeJS.ErrnoException)
  }
}

export async function openOutputAsync(path: string): Promise<number> {
  keepFileSizeErrors()
  try {
    return await openAsync(path, 'a', 0o644)
  } catch (err) {
    throw openError(path, err as NodeJS.ErrnoException)
  }
}

function openError(path: string, e: NodeJS.ErrnoException): Error {
  return e.code === 'ENOENT' || e.code === 'ENOTDIR'
    ? errors.outputDir(path, e)
    : errors.outputOpen(path, e)
}

let sizeSignalHandled = false
/**
 * Past the file size limit (`ulimit -f`, systemd's LimitFSIZE=) the kernel sends SIGXFSZ, whose
 * default action kills the process; only when it is ignored or handled does write() return
 * EFBIG, which the writers wait out. Node starts with SIGXFSZ ignored, but removing the last
 * listener of a signal resets it to the default: signal-exit (inside write-file-atomic, which
 * saved the checkpoints until it was replaced by atomic-file.ts) added and removed one, so after
 * the first checkpoint a full file killed us. A listener of our own that stays keeps the signal
 * harmless whatever a library does. Main thread only
 * (signals are delivered to the process; a worker cannot listen to them).
 */
function keepFileSizeErrors(): void {
  if (sizeSignalHandled || process.platform === 'win32' || !isMainThread) return
  sizeSignalHandled = true
  process.on('SIGXFSZ', () => {
    // Nothing to do: the write that crossed the limit fails with EFBIG and is retried.
  })
}

/** What the operator can do about a write error we wait out. */
export function retryHint(code: string | undefined): string {
  switch (code) {
    case 'ENOSPC':
      return 'free space on its file system'
    case 'EDQUOT':
      return 'raise the disk quota or free space'
    case 'EFBIG':
      return 'the file size limit is reached (ulimit -f, LimitFSIZE=): rotate the output or raise the limit'
    case 'EIO':
      return 'check the disk'
    default:
      return 'check the output'
  }
}

export function stalledMessage(path: string, err: NodeJS.ErrnoException): string {
  return `cannot write output ${path}: ${describeErrno(err)}; pausing the readers and retrying (${retryHint(err.code)})`
}

export const resumedMessage = (path: string): string => `output ${path} is writable again; resumed`

export const isRetryable = (err: unknown): err is NodeJS.ErrnoException =>
  isErrno(err, ...RETRYABLE)

// ---------------------------------------------------------------------------------------------
// Deleted, moved or truncated behind our back
// ---------------------------------------------------------------------------------------------

const facts = (st: Stats): FileFacts => ({
  dev: st.dev,
  ino: st.ino,
  size: st.size,
  nlink: st.nlink,
  isFile: st.isFile(),
})

/** The fs side of outputChange: fstat the held fd, stat the path. */
export function checkOutput(path: string, fd: number, known: number): OutputChange | null {
  const held = facts(fstatSync(fd))
  const now = statSync(path, { throwIfNoEntry: false })
  return outputChange(held, now ? facts(now) : null, known)
}

/**
 * Leaving a file part-way through a block (a switch during a failed write): how many of the
 * `written` bytes of that block stay in it. A file still linked (renamed by a rotation, or the
 * same file opened again) keeps none: the block is cut off and written whole to the new file,
 * so the state, which counts whole blocks, stays exact. A deleted file keeps its whole lines: it
 * may have been copied away first (mv to another disk), and the copy must not repeat in the new
 * file. (Its block is marked once all of it is written: a crash before that reads it again.)
 */
export function bytesToKeep(fd: number, written: Buffer): number {
  let linked = true
  try {
    linked = fstatSync(fd).nlink > 0
  } catch {
    // Cannot tell: cut the whole block, which keeps the state exact.
  }
  return linked ? 0 : written.lastIndexOf(0x0a) + 1
}

/**
 * Before leaving a file part-way through a write (a switch during a failed write): cuts the
 * `partial` bytes of a line cut short off its end, so it ends with a whole line and the line
 * goes whole to the new file. Only when the file is exactly as we left it (`size` counted bytes
 * plus `partial`); a file copied away meanwhile keeps the fragment in its copy.
 */
export function cutUnfinishedLine(fd: number, size: number, partial: number): void {
  if (partial <= 0) return
  try {
    if (fstatSync(fd).size === size + partial) ftruncateSync(fd, size)
  } catch {
    // The old file is being left anyway; the line is written whole to the new one.
  }
}

/**
 * Leaving a file part-way through a block, `written` bytes of it in the file after the `size`
 * bytes counted: what bytesToKeep says stays (returned, for the caller to count), the rest is
 * cut off the file (cutUnfinishedLine), which then ends with a whole line.
 */
export function leaveMidBlock(fd: number, written: Buffer, size: number): number {
  const keep = bytesToKeep(fd, written)
  cutUnfinishedLine(fd, size + keep, written.length - keep)
  return keep
}

/** fsync a file being left (its bytes are counted in checkpoints); some files cannot be. */
export function syncQuietly(fd: number): void {
  try {
    fsyncSync(fd)
  } catch {
    // EINVAL/EROFS (not syncable) or the device failing: nothing more to do for a file we leave.
  }
}
