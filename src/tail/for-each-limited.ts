/**
 * Runs `work` on every item with at most `limit` running at once, in order of the items.
 *
 * Why not `Promise.all(items.map(work))`: with 10,000 files that starts 10,000 chains of file
 * system calls at once. Their temporaries (promises, Stats, read buffers) all stay alive until
 * the last one settles, so they survive young-generation GCs and are promoted to the old
 * space, which an idle daemon then never collects: measured, 140 MiB of garbage at start-up
 * with 10,000 idle files. A few workers pulling from the list keep that garbage short-lived.
 */
export async function forEachLimited<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++] as T
      await work(item)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
}
