/**
 * Replacing a small file whole, so that a reader (the next start, a metrics collector) sees the
 * old content or the new, never a mix or a part: a temporary file beside it (`<path>.<digits>`,
 * which state/checkpoint.ts's removeLeftTemps clears after a kill), written whole, optionally
 * fsync'ed, renamed over the file.
 *
 * Not write-file-atomic, which did this before: it makes one write(2) and does not look at the
 * count written (lib/index.js in 6.0.0 and 8.0.0), and a write may be cut short without an
 * error: past the file size limit (`ulimit -f`, LimitFSIZE=) the kernel writes up to the limit
 * and returns the count. The torn state file was then renamed over the good one, and the next
 * start moved it aside as unusable and read every input again from the start (input-faults'
 * restart under a file size limit, once the state grew past that limit). FileHandle.writeFile
 * writes until all is written or throws (EFBIG, ENOSPC), and on a throw the old file stays.
 */
import { open, rename, unlink } from 'node:fs/promises'

let saves = 0

export interface ReplaceOptions {
  /** fsync the temporary file before the rename (the state file: yes; a metrics file: no). */
  readonly fsync: boolean
  readonly mode?: number
}

export async function replaceFile(path: string, text: string, opts: ReplaceOptions): Promise<void> {
  // Digits only (removeLeftTemps's pattern), unique within the process and across processes.
  const temp = `${path}.${process.pid}${String(++saves).padStart(6, '0')}`
  const fh = await open(temp, 'wx', opts.mode ?? 0o644)
  try {
    await fh.writeFile(text)
    if (opts.fsync) await fh.sync()
    await fh.close()
    await rename(temp, path)
  } catch (err) {
    await fh.close().catch(() => {}) // closed already when the rename failed: nothing to do
    await unlink(temp).catch(() => {})
    throw err
  }
}
