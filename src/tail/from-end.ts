/**
 * Where `--from end` starts: just after the last newline before the end, so a line that was
 * half-written when we started is not cut in two.
 */
import { readSync } from 'node:fs'
import { pread } from './async-fs.js'

/** How far back we look for that newline; a longer last line starts at the end instead. */
const LOOK_BACK = 64 * 1024

/**
 * Offset just after the last newline in `tail`, a window of the file that ends at `end`. With no
 * newline: 0 if the window is the whole file (one line, still being written), else `end`.
 */
export function afterLastNewline(tail: Buffer, end: number): number {
  const at = tail.lastIndexOf(0x0a)
  const windowStart = end - tail.length
  if (at < 0) return windowStart === 0 ? 0 : end
  return windowStart + at + 1
}

export async function lineStartBefore(fd: number, size: number): Promise<number> {
  if (size === 0) return 0
  const len = Math.min(LOOK_BACK, size)
  const buf = Buffer.allocUnsafe(len)
  const bytesRead = await pread(fd, buf, 0, len, size - len)
  return afterLastNewline(buf.subarray(0, bytesRead), size - len + bytesRead)
}

export function lineStartBeforeSync(fd: number, size: number): number {
  if (size === 0) return 0
  const len = Math.min(LOOK_BACK, size)
  const buf = Buffer.allocUnsafe(len)
  const bytesRead = readSync(fd, buf, 0, len, size - len)
  return afterLastNewline(buf.subarray(0, bytesRead), size - len + bytesRead)
}
