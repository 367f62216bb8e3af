/**
 * Making the output fail for a while, without root and without touching the disk: lower the
 * running logmerge's file size limit (RLIMIT_FSIZE) to about the output's current size with
 * util-linux `prlimit --pid`, so its next writes fail with EFBIG (Node ignores SIGXFSZ), then
 * put the limit back. logmerge must warn, hold its readers, retry, and resume with nothing lost
 * or doubled: the same path a full disk (ENOSPC) takes through its writer.
 *
 * prlimit runs as logmerge's own user: changing another user's limits needs CAP_SYS_RESOURCE,
 * which root in a container often lacks.
 */
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'

const exec = promisify(execFile)

/** The user logmerge runs as, when it is not the current one. */
export type User = { readonly uid: number; readonly gid: number } | undefined

const run = (args: readonly string[], user: User) => exec('prlimit', args, { ...(user ?? {}) })

/** True when `prlimit` can be run (util-linux; Linux only). */
export async function havePrlimit(): Promise<boolean> {
  try {
    await run(['--version'], undefined)
    return true
  } catch {
    return false
  }
}

/** The soft file size limit of process `pid` ("unlimited" or bytes), or null if unreadable. */
export async function softFileSizeLimit(pid: number, user: User): Promise<string | null> {
  try {
    const { stdout } = await run(
      ['--pid', String(pid), '--fsize', '--raw', '--noheadings', '--output', 'SOFT'],
      user,
    )
    const value = stdout.trim()
    return value.length > 0 ? value : null
  } catch {
    return null
  }
}

/** Sets the soft file size limit of `pid` (the hard one is left alone); false if it failed. */
export async function setSoftFileSizeLimit(
  pid: number,
  limit: string,
  user: User,
): Promise<boolean> {
  try {
    await run(['--pid', String(pid), `--fsize=${limit}:`], user)
    return true
  } catch {
    return false
  }
}
