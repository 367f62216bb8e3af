/**
 * How the event-loop writer's bytes reach the output, one call at a time: a batch written
 * synchronously, through writev on libuv's pool, or through process.stdout, and which of these
 * stdout takes. Apart from the writer because the choice rests on measurements of its own
 * (below); the writer decides what to write and what a failure means, this module only writes.
 */
import { fstat, writev, writevSync } from 'node:fs'
import { promisify } from 'node:util'
import { errors } from '../errors.js'
import { skipBytes } from './batches.js'

const writevAsync = promisify(writev)
const fstatAsync = promisify(fstat)

export const STDOUT_FD = 1

/**
 * Batches of at most this many bytes are written synchronously (see writeSome): every batch
 * of a catch-up (batches.ts's BATCH_BYTES, or one block of a read chunk and a held partial
 * line).
 */
const SYNC_WRITE_MAX = 2 * 1024 * 1024

/**
 * Whether stdout is to be written through process.stdout: not when it is a regular file
 * (`> all.log`), which is written like an output file, writev on libuv's pool, beside the work
 * of the main thread (process.stdout writes a file synchronously).
 */
export async function stdoutIsStream(): Promise<boolean> {
  return !(await fstatAsync(STDOUT_FD).then(
    (st) => st.isFile(),
    () => false, // closed or odd: process.stdout reports what goes wrong
  ))
}

/**
 * `fail` hears of every error process.stdout reports, as the error the run ends with (EPIPE:
 * the reader is gone). Errors may come after a write's callback (EPIPE on a later flush):
 * always listen.
 */
export function onStdoutError(fail: (err: Error) => void): void {
  process.stdout.on('error', (err: NodeJS.ErrnoException) =>
    fail(err.code === 'EPIPE' ? errors.outputClosed(err) : errors.outputWrite('-', err)),
  )
}

/**
 * One writev (or stdout write, with `toStdout`) of the batch from byte `done` of its `bytes`;
 * returns the bytes written.
 */
export async function writeSome(
  fd: number,
  toStdout: boolean,
  batch: Buffer[],
  done: number,
  bytes: number,
): Promise<number> {
  const rest = done === 0 ? batch : skipBytes(batch, done)
  if (toStdout) {
    await writeStdout(rest)
    return bytes - done
  }
  // A batch of up to SYNC_WRITE_MAX is written at once. A trip through libuv's pool costs two
  // thread wake-ups, more than writing a few KiB to the page cache (tail/async-fs.ts has the
  // figures); and while catching up, the pool's threads are busy with the readers' reads, so
  // a write queued behind them waited while the main thread idled. Written here, the writes
  // overlap the reads instead. Measured on the 2-vCPU machine (4 x 128 MiB in the page
  // cache, --from start, async engine, three runs each): through the pool 1.02-1.20 CPU-s and
  // 595-752 MiB/s once started; synchronously 0.70-0.72 CPU-s and 1,100-1,900 MiB/s. The
  // cost is that a write to a slow disk holds the loop for its time, at most SYNC_WRITE_MAX
  // at a time; the blocking shell's writer (locked-writer.ts) always wrote this way.
  if (bytes - done <= SYNC_WRITE_MAX) return writevSync(fd, rest)
  const { bytesWritten } = await writevAsync(fd, rest)
  return bytesWritten
}

/**
 * stdout goes through process.stdout, which Node drives without blocking (a pipe or a
 * terminal) and which tells us when it has taken the bytes. A blocking writev on fd 1 would
 * hold a libuv thread while the reader is slow, and a held thread stops even process.exit.
 */
async function writeStdout(batch: Buffer[]): Promise<void> {
  const out = process.stdout
  await new Promise<void>((resolve) => {
    out.cork()
    // A failed write also emits 'error' (the writer listens from its open): only success
    // resolves here.
    const last = batch.length - 1
    for (const [i, buf] of batch.entries()) {
      if (i < last) out.write(buf)
      else out.write(buf, (err) => err || resolve())
    }
    out.uncork()
  })
}
