/**
 * The event-loop writer's batches: how many queued blocks one writev takes (IOV_MAX, and
 * BATCH_BYTES so that a long queue is freed a batch at a time), what is left of a batch after a
 * partial write, and where a batch splits when the file is left part-way through it. Pure
 * arithmetic over lists of buffers, apart from the writer so it can be read and tested alone.
 */

/** POSIX IOV_MAX on Linux: more buffers than this in one writev fail with EINVAL. */
const IOV_MAX = 1024
/**
 * A batch (one writev) takes blocks until it holds this many bytes: the writer frees the
 * blocks of a long queue a batch at a time, so that whoever waits for room (drainTo) goes on
 * while the rest is written, instead of after the whole queue.
 */
const BATCH_BYTES = 512 * 1024

/** How many blocks from the queue's front the next batch takes (at least one): see BATCH_BYTES. */
export function batchLength(queue: readonly Buffer[]): number {
  const most = Math.min(queue.length, IOV_MAX)
  let bytes = 0
  for (let n = 0; n < most; n++) {
    bytes += (queue[n] as Buffer).length
    if (bytes >= BATCH_BYTES) return n + 1
  }
  return most
}

export const byteLength = (batch: readonly Buffer[]): number =>
  batch.reduce((n, b) => n + b.length, 0)

/** The batch without its first `n` bytes (after a partial write). */
export function skipBytes(batch: readonly Buffer[], n: number): Buffer[] {
  const rest: Buffer[] = []
  let left = n
  for (const buf of batch) {
    if (left >= buf.length) {
      left -= buf.length
      continue
    }
    rest.push(left > 0 ? buf.subarray(left) : buf)
    left = 0
  }
  return rest
}

/**
 * Where `done` written bytes end in `batch`: how many whole blocks they hold, and how many bytes
 * of the next block (the one cut short) they hold after those.
 */
export function splitAt(
  batch: readonly Buffer[],
  done: number,
): { readonly whole: number; readonly left: number } {
  let whole = 0
  let left = done
  while (whole < batch.length && (batch[whole] as Buffer).length <= left) {
    left -= (batch[whole] as Buffer).length
    whole++
  }
  return { whole, left }
}
