/**
 * The file system calls of the event-loop reader (tail-async.ts): promises over Node's callback
 * API on plain descriptors, and the small calls of the hot path made synchronously.
 *
 * Why not fs.promises and FileHandle: each of their calls allocates its own request and result
 * arrays, where the callback API reuses one. Measured on the 2-vCPU machine with 5,000 open
 * files (CPU per call, main thread and pool thread together): fstat 29 µs against 11, a 64-byte
 * pread 29 µs against 13, a stat by path 28 µs against 14.
 *
 * Why some calls are synchronous: a call through libuv's pool that nothing else overlaps costs
 * two thread wake-ups (the pool thread's, then the loop's), and a read of a followed file is
 * such a chain (fstat, then the first bytes, then the new bytes). Measured on the same machine
 * under load, four writers at 2,000 lines a second: 28,500 pool calls in 10 s cost 4.0 CPU-s,
 * about 140 µs each; fstatSync and a 64-byte readSync cost 4-5 µs. So the fstat, the first
 * bytes and reads of at most SYNC_READ_MAX bytes (an append of a few lines) block the loop for
 * microseconds; a bigger read (catching up, a file that grew by megabytes) goes through the
 * pool, where its size pays for the trip and other files are read meanwhile. The cost is that a
 * hung network mount holds the loop (as the sweep's statSync always did); local disks are
 * what logmerge follows (docs/failure-modes.md). The look at a name (stat, open) and the close
 * are synchronous for the same reason: a drain at SIGTERM stats every name once and closes every
 * file, and with 10,000 files those 20,000 trips through the pool took 1-2 s of a stop that
 * systemd gives a bound to; statSync, openSync and closeSync take a few microseconds each.
 */
import {
  close as closeCb,
  closeSync,
  fstat as fstatCb,
  fstatSync,
  open as openCb,
  openSync,
  read as readCb,
  readdir as readdirCb,
  readSync,
  type Stats,
  stat as statCb,
  statSync,
} from 'node:fs'
import { FINGERPRINT_BYTES } from './cursor.js'

/** Opens `path` with `flags`; resolves to the descriptor. */
export function openFd(path: string, flags: number): Promise<number> {
  return new Promise((resolve, reject) =>
    openCb(path, flags, (err, fd) => (err ? reject(err) : resolve(fd))),
  )
}

export function closeFd(fd: number): Promise<void> {
  return new Promise((resolve, reject) => closeCb(fd, (err) => (err ? reject(err) : resolve())))
}

export function fstatFd(fd: number): Promise<Stats> {
  return new Promise((resolve, reject) =>
    fstatCb(fd, (err, st) => (err ? reject(err) : resolve(st))),
  )
}

export function statPath(path: string): Promise<Stats> {
  return new Promise((resolve, reject) =>
    statCb(path, (err, st) => (err ? reject(err) : resolve(st))),
  )
}

/** Reads up to `length` bytes at `position` into `buf` at `offset`; resolves to the count. */
export function pread(
  fd: number,
  buf: Buffer,
  offset: number,
  length: number,
  position: number,
): Promise<number> {
  return new Promise((resolve, reject) =>
    readCb(fd, buf, offset, length, position, (err, n) => (err ? reject(err) : resolve(n))),
  )
}

/** The names in `dir`, or none when it cannot be listed. */
export function listDir(dir: string): Promise<string[]> {
  return new Promise((resolve) => readdirCb(dir, (err, names) => resolve(err ? [] : names)))
}

/** Opens `path` with `flags`, now (synchronous: see the header). */
export function openNow(path: string, flags: number): number {
  return openSync(path, flags)
}

/** Closes `fd`, now (synchronous: see the header); an error (EBADF, EIO) is not the caller's. */
export function closeNow(fd: number): void {
  try {
    closeSync(fd)
  } catch {
    // Closing a descriptor we read from loses nothing whatever close(2) says.
  }
}

/** A stat of `path`, now (synchronous: see the header): its stats, or the error it got. */
export function statNow(path: string): { stats: Stats } | { error: unknown } {
  try {
    return { stats: statSync(path) }
  } catch (error) {
    return { error }
  }
}

/** Reads of at most this many bytes are made synchronously (see the header). */
export const SYNC_READ_MAX = 64 * 1024

/** The open file's stat, now (synchronous: see the header). */
export function fstatNow(fd: number): Stats {
  return fstatSync(fd)
}

/** pread of `length` bytes: synchronous up to SYNC_READ_MAX, through the pool above. */
export function readAt(
  fd: number,
  buf: Buffer,
  offset: number,
  length: number,
  position: number,
): Promise<number> | number {
  return length <= SYNC_READ_MAX
    ? readSync(fd, buf, offset, length, position)
    : pread(fd, buf, offset, length, position)
}

/** The file's first bytes, through the pool (readHeadSync in input-fs.ts reads them now). */
export async function readHead(fd: number): Promise<Buffer> {
  const buf = Buffer.alloc(FINGERPRINT_BYTES)
  return buf.subarray(0, await pread(fd, buf, 0, FINGERPRINT_BYTES, 0))
}
