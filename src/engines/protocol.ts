/**
 * The closed protocol between the main thread and reader threads. Every message carries a
 * `code` from a fixed set; an unknown code is a bug and fails loudly. Errors cross the thread
 * boundary as plain fields and are rebuilt (SerializedError, errors.ts).
 */
import type { MessagePort } from 'node:worker_threads'
import type { SerializedError } from '../errors.js'
import type { OutputFormat } from '../format/formats.js'
import type { Level } from '../log.js'
import type { LockedWriterShare } from '../sink/locked-writer.js'
import type { SourceMark } from '../sink/sink.js'
import type { SourceState } from '../tail/source-state.js'
import type { TableSummary } from '../tail/tracked.js'
import type { TimestampFormat, TimestampOptions } from '../time/timestamps.js'

/**
 * The control cells of a blocking reader thread. The main thread bumps WAKE after each message;
 * the thread reads WAKE before it takes its messages, sets ASLEEP, and waits for WAKE to move.
 * A bump that comes before the wait ends it at once, so the main thread calls Atomics.notify
 * only when ASLEEP is set.
 */
export const WAKE = 0
export const ASLEEP = 1
export const CONTROL_BYTES = 8

/** Main thread -> reader thread. */
export type ToWorker =
  /** The input names this thread owns at start-up. */
  | {
      readonly code: 'start'
      readonly paths: readonly string[]
      /** Files the last checkpoint recorded, for this thread's names. */
      readonly remembered: readonly SourceState[]
      /** --format prefix|json: path -> label of the files found at start-up (see Labels). */
      readonly labels: Readonly<Record<string, string>>
    }
  /**
   * What discovery saw since the last message, each path once: names that appeared or went
   * away (look at them again), and files written to. One message a turn of the main thread's
   * event loop, not one an event: a writer logging a line at a time makes an event a line.
   */
  | {
      readonly code: 'events'
      readonly resolve: readonly string[]
      readonly changed: readonly string[]
    }
  /** Read what is left and stop; `flush` writes held partial lines (--once). */
  | { readonly code: 'stop'; readonly flush: boolean }
  /** Metrics: answer with the thread's table summary. */
  | { readonly code: 'summary' }

/** Reader thread -> main thread. */
export type FromWorker =
  /** A diagnostic: the main thread's logger words it (job name, journald priority). */
  | { readonly code: 'log'; readonly level: Level; readonly message: string }
  /** top-down: a block of whole lines for the main thread's writer. */
  | { readonly code: 'block'; readonly bytes: Uint8Array; readonly mark: SourceMark | undefined }
  | { readonly code: 'done'; readonly unreadable: readonly string[] }
  /**
   * The start-up pass is done: every file present has its start point and is followed. The
   * engine says it is ready (sd_notify READY=1, "ready: following") once every thread has sent
   * this: a line appended after that is delivered, never taken for one before --from end's start.
   */
  | { readonly code: 'started' }
  /**
   * The thread's modules are loaded (its first message). The main thread opens no input before
   * every thread has sent it: module loads take descriptors too (up to 13 files at once per
   * thread, measured), and under a low ulimit -n an input opened meanwhile made a load fail
   * with EMFILE.
   */
  | { readonly code: 'loaded' }
  /** A file was opened: what a checkpoint needs to find it again, and where it starts. */
  | { readonly code: 'source'; readonly source: SourceState; readonly key: string }
  /** A finished file is gone from disk: it leaves the checkpoints. */
  | { readonly code: 'forget'; readonly key: string }
  /** top-down: a file was read to its end and let go (--order time ends its source). */
  | { readonly code: 'released'; readonly key: string }
  | { readonly code: 'failed'; readonly error: SerializedError; readonly path: string | null }
  /** The answer to 'summary': files open, parked, missing, events per name. */
  | { readonly code: 'summary'; readonly summary: TableSummary }

/**
 * top-down: a block bigger than this is posted in memory the thread keeps using (see PostSink
 * in worker.ts), of postBufferBytes; the main thread sends such memory back once written.
 */
export const LENT_MIN_BYTES = 64 * 1024

/** The size of a posted block's reused memory: a read chunk and a held partial line. */
export const postBufferBytes = (readChunkBytes: number): number => readChunkBytes + LENT_MIN_BYTES

/** Whether a posted block's memory may be the thread's to use again (see LENT_MIN_BYTES). */
export const isLent = (memory: ArrayBufferLike): boolean => memory.byteLength > LENT_MIN_BYTES

/** The options a reader thread runs with (plain data: workerData is structured-cloned). */
export interface WorkerInit {
  readonly id: number
  /** Which reader shell the thread runs: the blocking one or the event-loop one. */
  readonly style: 'sync' | 'async'
  /** Where blocks go: the shared locked writer, or posted to the main thread's writer. */
  readonly sink:
    | { readonly kind: 'locked'; readonly share: LockedWriterShare }
    | {
        readonly kind: 'post'
        readonly inflight: SharedArrayBuffer
        readonly highWaterBytes: number
        /**
         * The big blocks' memory, sent back by the main thread once written (each message an
         * ArrayBuffer, transferred): the thread copies its next big block into it.
         */
        readonly returns: MessagePort
      }
  /** Int32 [WAKE]: the wake-up count; [ASLEEP]: 1 while the thread waits (see below). */
  readonly control: SharedArrayBuffer
  readonly port: MessagePort
  readonly follow: boolean
  readonly from: 'start' | 'end'
  /** When the run began on the main thread, before prescan (see ReaderOptions.startedAt). */
  readonly startedAt: number
  readonly maxLineBytes: number
  readonly readChunkBytes: number
  readonly pollIntervalMs: number
  readonly readConcurrency: number
  /** Input files the thread may hold open at once (its share, see tail/fd-budget.ts). */
  readonly maxOpenFiles: number
  /** Names the thread's sweep stats a second at most (its share, see SWEEP_NAMES_PER_SECOND). */
  readonly sweepPerSecond: number
  readonly logLevel: Level
  /** Output format and what json's "time" needs (locked writers format in the thread). */
  readonly format: OutputFormat
  readonly labels: Readonly<Record<string, string>>
  readonly timestampFormat: TimestampFormat | undefined
  readonly timestamps: TimestampOptions
}
