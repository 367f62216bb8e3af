/**
 * top-down: the blocks the reader threads post to the main thread's writer. The bytes in
 * flight are counted in one shared cell the threads wait on while the writer is behind (their
 * post budget, see PostSink in worker.ts); a big block's memory goes back to its thread once
 * written, where it holds the thread's next big block: memory the process has touched already,
 * where a new buffer each time paid a page fault for every 4 KiB (see tail/read-buffers.ts).
 */
import type { MessagePort } from 'node:worker_threads'
import type { ProgressBar } from '../progress/bar.js'
import type { BlockSink, SourceMark } from '../sink/sink.js'
import { countLines } from '../tail/cursor.js'
import { isLent } from './protocol.js'

export class PostedBlocks {
  /** Bytes posted and not yet handed to the writer (the threads' budget waits on it). */
  readonly inflight = new Int32Array(new SharedArrayBuffer(4))
  readonly #sink: BlockSink
  readonly #progress: ProgressBar | null
  readonly #counted = { bytes: 0, lines: 0 }

  constructor(sink: BlockSink, progress: ProgressBar | null) {
    this.#sink = sink
    this.#progress = progress
  }

  /**
   * A block from a thread goes to the writer; `returns`, the thread's port for the memory of
   * its written blocks (null: none goes back).
   */
  accept(bytes: Uint8Array, mark: SourceMark | undefined, returns: MessagePort | null): void {
    const cells = this.inflight
    // Its length now: once written, a lent block's memory goes back to the thread (`done`),
    // which detaches it here, and a length read then is 0. Read in release(), after a wait
    // for room, that left the bytes counted in flight for good, and the thread waited for
    // room that never came (top-down's catch-up stopped in about one run in four).
    const length = bytes.length
    const release = () => {
      Atomics.sub(cells, 0, length)
      Atomics.notify(cells, 0)
    }
    const block = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    if (this.#progress) {
      this.#counted.bytes += block.length
      this.#counted.lines += countLines(block)
      this.#progress.update(this.#counted.bytes, this.#counted.lines)
    }
    const memory = bytes.buffer as ArrayBuffer
    const done = returns && isLent(memory) ? () => returns.postMessage(memory, [memory]) : undefined
    const full = this.#sink.write(block, mark, done)
    if (full) full.then(release, release)
    else release()
  }
}
