/**
 * The reader thread of `--once --order time` (once-feed.ts, ThreadFeed): reads every input
 * front to back into memory of its own, frames and parses each block (SourceReader) and posts
 * where the block lies in the file with its leaders and times (or the block itself when the
 * framer made it). It keeps up to `depth` blocks a source ahead of the merge, the source the
 * merge is closest to needing first, and sleeps on the control word while all are that far.
 */
import { workerData } from 'node:worker_threads'
import { type FromReaderThread, type ReaderThreadInit, STOP, TAKEN, WAKE } from './once-feed.js'
import { type ReadResult, SourceReader } from './once-read.js'
import { serializeError } from './protocol.js'

/** Room for the partial line carried over, as the main thread's slots have. */
const SLOT_SLACK = 64 * 1024

const init = workerData as ReaderThreadInit
const control = new Int32Array(init.control)
const readers = init.readers.map((r) => new SourceReader(r))
const buffers = init.readers.map((r) => Buffer.allocUnsafeSlow(r.readBytes + SLOT_SLACK))
const posted = readers.map(() => 0)

/** The source to read next: not ended, not `depth` ahead, the fewest blocks ahead. */
function pick(): number {
  let best = -1
  let bestAhead = init.depth
  for (let i = 0; i < readers.length; i++) {
    if ((readers[i] as SourceReader).ended) continue
    const ahead = (posted[i] as number) - Atomics.load(control, TAKEN + i)
    if (ahead < bestAhead) {
      best = i
      bestAhead = ahead
    }
  }
  return best
}

function post(i: number, buf: Buffer, r: ReadResult): void {
  const block = r.block
  const asRead =
    block !== null &&
    r.inserted.length === 0 &&
    block.buffer === buf.buffer &&
    block.byteOffset === buf.byteOffset
  let bytes: Uint8Array | null = null
  if (block !== null && !asRead) {
    // A copy in its own ArrayBuffer: a framed block may be a view of Node's shared pool.
    bytes = new Uint8Array(block.length)
    bytes.set(block)
  }
  const leaders = r.leaders
  const msg: FromReaderThread = {
    code: 'read',
    source: i,
    seq: posted[i] as number,
    kind: block === null ? 'none' : asRead ? 'file' : 'bytes',
    length: block?.length ?? 0,
    bytes,
    fileStart: r.fileStart,
    inserted: r.inserted,
    starts: leaders?.starts ?? null,
    times: leaders?.times ?? null,
    count: leaders?.count ?? 0,
    maxTime: leaders?.maxTime ?? Number.NEGATIVE_INFINITY,
    readTo: r.readTo,
    end: r.end,
    failure: r.failure,
  }
  const transfer: ArrayBuffer[] = []
  if (bytes) transfer.push(bytes.buffer as ArrayBuffer)
  if (leaders) {
    transfer.push(leaders.starts.buffer as ArrayBuffer, leaders.times.buffer as ArrayBuffer)
  }
  init.port.postMessage(msg, transfer)
  posted[i] = (posted[i] as number) + 1
}

function run(): void {
  while (Atomics.load(control, STOP) === 0) {
    const wake = Atomics.load(control, WAKE)
    const i = pick()
    if (i < 0) {
      if (readers.every((r) => r.ended)) return
      Atomics.wait(control, WAKE, wake)
      continue
    }
    const buf = buffers[i] as Buffer
    post(i, buf, (readers[i] as SourceReader).next(buf))
  }
}

try {
  run()
} catch (err) {
  init.port.postMessage({ code: 'failed', error: serializeError(err) } satisfies FromReaderThread)
}
