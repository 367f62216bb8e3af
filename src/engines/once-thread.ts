/**
 * The reader thread of `--once --order time` (once-feed.ts, ThreadFeed): reads every input
 * front to back into memory of its own, frames and parses each block (SourceReader), copies it
 * into its slot in the main thread's arena (shared memory) and posts its leaders and times. It
 * keeps up to `depth` blocks a source ahead of the merge, the source the merge is closest to
 * needing first, and sleeps on the control word while all are that far. A slot is written
 * only once the merge is done with the block it held: block n goes where block
 * n - slotsPerSource was, which is free once the merge has taken block n - slotsPerSource + 2,
 * and `depth` = slotsPerSource - 2 keeps the thread that far behind.
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
if (init.depth > init.slotsPerSource - 2) throw new Error('depth leaves no free slot')

/** Source i's slot for its block `seq`, in the main thread's arena. */
function slotFor(i: number, seq: number): Buffer {
  const slot = i * init.slotsPerSource + (seq % init.slotsPerSource)
  return Buffer.from(init.arena, slot * init.slotBytes, init.slotBytes)
}

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

function post(i: number, r: ReadResult): void {
  const block = r.block
  const seq = posted[i] as number
  let kind: 'slot' | 'bytes' | 'none' = 'none'
  let bytes: Uint8Array | null = null
  if (block !== null) {
    if (block.length <= init.slotBytes) {
      slotFor(i, seq).set(block)
      kind = 'slot'
    } else {
      // Larger than a slot (the framer made it: a joined line): a copy in its own ArrayBuffer
      // goes with the message.
      bytes = new Uint8Array(block.length)
      bytes.set(block)
      kind = 'bytes'
    }
  }
  const leaders = r.leaders
  const msg: FromReaderThread = {
    code: 'read',
    source: i,
    seq,
    kind,
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
    post(i, (readers[i] as SourceReader).next(buffers[i] as Buffer))
  }
}

try {
  run()
} catch (err) {
  init.port.postMessage({ code: 'failed', error: serializeError(err) } satisfies FromReaderThread)
}
