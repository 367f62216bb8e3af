/** Smallest read buffer: a few appended bytes still cost one syscall, so ask for more. */
const MIN_READ = 64 * 1024

/** How much to ask for in the next read: what the last stat says is there, within bounds. */
export const readSize = (size: number, offset: number, maxChunk: number): number =>
  Math.min(maxChunk, Math.max(size - offset, MIN_READ))
