/**
 * A partition thread of the partitioned `--once --order time` merge (partitioned.ts): merges
 * the partitions it is sent, one at a time, with the same merge as the single one (OnceTimeMerge
 * over byte ranges of the files the main thread opened: fds are the process's), and posts each
 * partition's output as the blocks the writer is to write, each with its checkpoint marks.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { serializeError } from '../errors.js'
import { Labels } from '../format/labels.js'
import type { Logger } from '../log.js'
import type { SourceMark } from '../sink/sink.js'
import type { ArenaMemory } from './arena-memory.js'
import { OnceTimeMerge, type OnceWriter } from './merge.js'
import type { FromPartThread, PartThreadInit, ToPartThread } from './part-threads.js'

const init = workerData as PartThreadInit
const port = parentPort
if (port === null) throw new Error('part-thread.ts runs as a worker thread')

/** Warnings go to the main thread with the partition (a failed read sends it back to the single merge). */
const quiet: Logger = {
  error: () => {},
  warn: () => {},
  info: () => {},
  debug: () => {},
  warnOnce: () => {},
  forget: () => {},
}

/**
 * Keeps what the merge writes: each output area copied into one buffer for the partition (the
 * merge reuses its areas), with where each area ends and its marks. The buffers come back
 * from the main thread once written, and are used again: fresh memory for every partition
 * costs more in page faults than the merge itself.
 */
class Collector implements OnceWriter {
  #buf: Buffer
  #used = 0
  readonly ends: number[] = []
  readonly marks: (readonly SourceMark[])[] = []
  readonly queuedBytes = 0

  constructor(buf: Buffer) {
    this.#buf = buf
  }

  write(block: Buffer, marks: readonly SourceMark[] = []): undefined {
    if (this.#used + block.length > this.#buf.length) {
      const grown = Buffer.allocUnsafeSlow(
        Math.max(2 * this.#buf.length, this.#used + block.length),
      )
      this.#buf.copy(grown, 0, 0, this.#used)
      this.#buf = grown
    }
    this.#used += block.copy(this.#buf, this.#used)
    this.ends.push(this.#used)
    this.marks.push(marks)
    return undefined
  }

  get buffer(): ArrayBuffer {
    return this.#buf.buffer as ArrayBuffer
  }

  note(): void {}

  async drain(): Promise<void> {}

  async drainTo(): Promise<void> {}
}

/**
 * Set by the main thread when the run stops (PartThreads.close): the merge in progress ends at
 * its next round, so that the thread is idle when it is terminated. An AbortSignal as far as
 * OnceTimeMerge.run looks at one (`aborted`).
 */
const control = init.control ? new Int32Array(init.control) : null
const stopped = {
  get aborted(): boolean {
    return control !== null && Atomics.load(control, 0) !== 0
  },
} as AbortSignal

/** Output buffers the main thread gave back. */
const spare: ArrayBuffer[] = []
const arenaMemory: { memory: ArenaMemory | null } = { memory: null }

async function merge(msg: Extract<ToPartThread, { code: 'part' }>): Promise<FromPartThread> {
  const merge = new OnceTimeMerge({
    paths: [],
    from: 'start',
    maxLineBytes: init.maxLineBytes,
    readChunkBytes: init.readChunkBytes,
    format: init.format,
    labels: new Labels(),
    ...(init.zone === undefined ? {} : { zone: init.zone }),
    resume: [],
    log: quiet,
    readerThread: false,
    collectAtEnd: false,
    arenaMemory,
  })
  merge.openParts(msg.parts)
  const reuse = spare.pop()
  const out = new Collector(
    reuse ? Buffer.from(reuse) : Buffer.allocUnsafeSlow(msg.bytes + msg.bytes / 8 + 65536),
  )
  try {
    await merge.run(out, stopped)
  } finally {
    await merge.close()
  }
  return {
    code: 'done',
    index: msg.index,
    buffer: out.buffer,
    ends: out.ends,
    marks: out.marks,
    maxWritten: merge.maxWritten,
    late: merge.late,
    records: merge.records,
    failed: merge.unreadable.length > 0,
  }
}

port.on('message', (msg: ToPartThread) => {
  if (msg.code === 'buffer') {
    spare.push(msg.buffer)
    return
  }
  merge(msg).then(
    (done) => port.postMessage(done, done.code === 'done' ? [done.buffer] : []),
    (err: unknown) => port.postMessage({ code: 'failed', error: serializeError(err) }),
  )
})
