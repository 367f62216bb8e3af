/**
 * The reader thread of `--once --order time` (feed.ts, ThreadFeed): reads every input
 * front to back into memory of its own, frames and parses each block (SourceReader), copies it
 * into its slot in the main thread's arena (shared memory) and posts its leaders and times. It
 * keeps up to `depth` blocks a source ahead of the merge, the source the merge is closest to
 * needing first, and sleeps on the control word while all are that far. A slot is written
 * only once the merge is done with the block it held: block n goes where block
 * n - slotsPerSource was, which is free once the merge has taken block n - slotsPerSource + 2,
 * and `depth` = slotsPerSource - 2 keeps the thread that far behind.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { serializeError } from '../errors.js'
import {
  type FromReaderThread,
  type ReaderThreadInit,
  STOP,
  TAKEN,
  type ToReaderThread,
  WAKE,
} from './feed.js'
import { type ReadResult, SourceReader } from './source-reader.js'

/**
 * One run's reading: started with its init (workerData, or the message a prestarted thread
 * waits for, prestart.ts).
 */
function start(init: ReaderThreadInit): void {
  try {
    new ReaderThread(init).run()
  } catch (err) {
    init.port.postMessage({ code: 'failed', error: serializeError(err) } satisfies FromReaderThread)
  }
}

class ReaderThread {
  readonly init: ReaderThreadInit
  readonly control: Int32Array
  readonly readers: SourceReader[]
  readonly buffers: Buffer[]
  readonly posted: number[]

  constructor(init: ReaderThreadInit) {
    if (init.depth > init.slotsPerSource - 2) throw new Error('depth leaves no free slot')
    this.init = init
    this.control = new Int32Array(init.control)
    this.readers = init.readers.map((r) => new SourceReader(r))
    // As large as the merge's slots (reads plus room for a carried partial line), so that a
    // block read here fits the slot it is copied to.
    this.buffers = init.readers.map(() => Buffer.allocUnsafeSlow(init.slotBytes))
    this.posted = this.readers.map(() => 0)
  }

  run(): void {
    const { control, readers, buffers } = this
    while (Atomics.load(control, STOP) === 0) {
      const wake = Atomics.load(control, WAKE)
      const i = this.pick()
      if (i < 0) {
        if (readers.every((r) => r.ended)) return
        Atomics.wait(control, WAKE, wake)
        continue
      }
      this.post(i, (readers[i] as SourceReader).next(buffers[i] as Buffer))
    }
  }

  /** Source i's slot for its block `seq`, in the main thread's arena. */
  slotFor(i: number, seq: number): Buffer {
    const { init } = this
    const slot = i * init.slotsPerSource + (seq % init.slotsPerSource)
    return Buffer.from(init.arena, slot * init.slotBytes, init.slotBytes)
  }

  /** The source to read next: not ended, not `depth` ahead, the fewest blocks ahead. */
  pick(): number {
    const { readers, posted, control } = this
    let best = -1
    let bestAhead = this.init.depth
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

  post(i: number, r: ReadResult): void {
    const block = r.block
    const seq = this.posted[i] as number
    let kind: 'slot' | 'bytes' | 'none' = 'none'
    let bytes: Uint8Array | null = null
    if (block !== null) {
      if (block.length <= this.init.slotBytes) {
        this.slotFor(i, seq).set(block)
        kind = 'slot'
      } else {
        // Larger than a slot (the framer made it: a joined line): a copy in its own
        // ArrayBuffer goes with the message.
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
    this.init.port.postMessage(msg, transfer)
    this.posted[i] = seq + 1
  }
}

const given = workerData as ReaderThreadInit | null
if (given) start(given)
else {
  // Prestarted (prestart.ts): the work, or the word to end, comes as a message.
  const port = parentPort
  port?.once('message', (msg: ToReaderThread) => {
    port.close()
    if (msg.code === 'init') start(msg.init)
  })
}
