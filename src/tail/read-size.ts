/**
 * How much the follow shells ask for in one read. The last stat says how much is there; a little
 * more is asked for, so that lines appended since the stat come in the same read. Asking for
 * far more than is there costs memory for nothing: the event-loop shell reads into a new buffer
 * each time, and a 64 KiB buffer for a 100-byte line cost 10,000 files' burst 640 MiB of
 * allocation and a third of its time in the garbage collector. Buffers under 4 KiB come from
 * Node's shared pool.
 */

/** Asked for beyond what the stat showed. */
const SLACK = 2 * 1024
/** Once past what the stat showed (the file grows while we read): reads of this size. */
const MIN_READ = 64 * 1024

export const readSize = (size: number, offset: number, maxChunk: number): number =>
  Math.min(maxChunk, offset < size ? size - offset + SLACK : MIN_READ)
