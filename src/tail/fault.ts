/**
 * Test-only fault injection in the read path of both reader shells. Never set it in production.
 *
 * LOGMERGE_FAULT=eio-while:<flagfile> makes every read of an input file fail with EIO while
 * <flagfile> exists, as a failing disk would; when the flag file holds text, only files whose
 * path contains that text fail (so a test can show the other inputs go on). Real EIO needs a
 * faulty block device (dm-flakey), which a test machine rarely has. The variable is read once
 * at load; worker threads inherit it. (LOGMERGE_FAULT=throw:<text> in engines/worker.ts makes a
 * reader thread throw instead.)
 */
import { readFileSync } from 'node:fs'

const flagFile = process.env.LOGMERGE_FAULT?.match(/^eio-while:(.+)$/)?.[1]

/** Throws an injected EIO for a read of `path` while the fault is switched on (see above). */
export function checkReadFault(path: string): void {
  if (flagFile === undefined) return
  let only: string
  try {
    only = readFileSync(flagFile, 'utf8').trim()
  } catch {
    return // no flag file: reads work
  }
  if (only !== '' && !path.includes(only)) return
  const err: NodeJS.ErrnoException = new Error(`EIO: i/o error, read '${path}' (injected)`)
  err.code = 'EIO'
  err.errno = -5
  err.syscall = 'read'
  err.path = path
  throw err
}
