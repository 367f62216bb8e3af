/**
 * The host's packing of blocks into stream messages, whole lines only: each block becomes a
 * segment labelled with its file generation and the byte range it holds there, segments fill a
 * message of up to MESSAGE_BYTES, and a line longer than a message allows is split the way
 * --max-line-bytes splits (frame.ts). Sealed messages wait here, in order, until the sender
 * (sender.ts) takes them; what a message's acknowledgement must do (move a file's checkpointed
 * offset, note or forget a file) travels with it as its effects. Pure logic, no I/O.
 */
import type { SourceStats } from '../sink/sink.js'
import {
  type BatchMeta,
  encodeBatch,
  FRAME_VERSION,
  fileOffsetAt,
  type GenerationInfo,
  metaBytes,
  type Segment,
  splitLongLines,
} from './frame.js'
import type { Generation } from './generations.js'
import { MESSAGE_BYTES } from './stream.js'

/** The longest line a message carries (the rest of a message is its header). */
export const MAX_LINE_BYTES = MESSAGE_BYTES - 16 * 1024
const NEWLINE = 0x0a

/** Where a file stands as far as the stream has acknowledged (what checkpoints record). */
export interface Acked {
  offset: number
  head: Uint8Array | undefined
  stats: SourceStats | undefined
  /** The generation `offset` is in; null before its first byte (a new file, a truncation). */
  gen: string | null
}

/** Done once a message and every one before it are acknowledged. */
export type Effect =
  | { readonly kind: 'mark'; readonly key: string; readonly acked: Acked }
  | { readonly kind: 'note'; readonly key: string; readonly acked: Acked }
  | { readonly kind: 'forget'; readonly key: string }

/** A sealed message: what to send, and what its acknowledgement does. */
export interface Sent {
  readonly counter: number
  readonly payload: Buffer
  readonly lineBytes: number
  readonly effects: Effect[]
  /** The generation table version a checkpoint must have saved before this is sent. */
  readonly needs: number
  result: Promise<{ ok: true; seq: number } | { ok: false; err: Error }> | null
}

class Batch {
  readonly segments: Segment[] = []
  readonly data: Buffer[] = []
  bytes = 0
  readonly gens = new Map<string, GenerationInfo>()
  metaText = 0
  readonly effects: Effect[] = []
  needs = 0

  room(): number {
    return (
      MESSAGE_BYTES -
      this.bytes -
      metaBytes(this.segments.length + 1, this.gens.size + 1, this.metaText)
    )
  }

  addGen(gen: Generation): void {
    if (this.gens.has(gen.id)) return
    this.gens.set(gen.id, { p: gen.path, l: gen.label, o: gen.origin })
    this.metaText += gen.path.length + gen.label.length + gen.id.length
  }
}

/** Something a drain must see acknowledged: lines, or effects (see Publisher.drain). */
export const needed = (m: { lineBytes: number; effects: readonly Effect[] }): boolean =>
  m.lineBytes > 0 || m.effects.length > 0

export class Packer {
  readonly #host: string
  readonly #run: string
  #open = new Batch()
  /** Sealed, not yet handed to the sender (or handed back after a failure), in order. */
  #ready: Sent[] = []
  #counter = 0

  constructor(host: string, run: string) {
    this.#host = host
    this.#run = run
  }

  /**
   * Queues `whole` (file bytes [start, ...) of `gen`, with the reader's inserted newlines),
   * cut into messages at line boundaries; the last piece carries `acked`, earlier ones the
   * offset they end at. Returns the bytes queued (pieces of long lines included).
   */
  append(
    gen: Generation,
    whole: Buffer,
    readerInserted: readonly number[],
    start: number,
    key: string,
    acked: Acked,
    needs: number,
  ): number {
    const { block, inserted } = splitLongLines(whole, readerInserted, MAX_LINE_BYTES)
    let at = 0
    let next = 0 // index into inserted
    while (at < block.length) {
      const batch = this.#batchWithRoom(Math.min(block.length - at, MAX_LINE_BYTES))
      const room = batch.room()
      let end = block.length
      if (end - at > room) {
        // The last whole line that fits; none: the next message (a line is at most
        // MAX_LINE_BYTES, which an empty message has room for).
        const cut = room > 0 ? block.lastIndexOf(NEWLINE, at + room - 1) : -1
        if (cut < at && batch.segments.length > 0) {
          this.seal()
          continue
        }
        end = cut < at ? block.indexOf(NEWLINE, at) + 1 : cut + 1
      }
      const own: number[] = []
      while (next < inserted.length && (inserted[next] as number) < end) {
        own.push((inserted[next] as number) - at)
        next++
      }
      const s = fileOffsetAt(start, inserted, at)
      const e = fileOffsetAt(start, inserted, end)
      batch.addGen(gen)
      batch.segments.push({ g: gen.id, s, e, n: end - at, ...(own.length > 0 && { i: own }) })
      batch.data.push(block.subarray(at, end))
      batch.bytes += end - at
      if (needs > batch.needs) batch.needs = needs
      const last = end === block.length
      batch.effects.push({
        kind: 'mark',
        key,
        acked: last ? acked : { ...acked, offset: e, stats: undefined },
      })
      at = end
    }
    return block.length
  }

  /** Generation `gen` ends at file offset `at` (its file was let go). */
  end(gen: Generation, at: number): void {
    const batch = this.#batchWithRoom(0)
    batch.addGen(gen)
    batch.segments.push({ g: gen.id, s: at, e: at, n: 0, x: 1 })
  }

  /**
   * Puts `effect` behind everything queued here; false when nothing is (the caller puts it
   * behind the messages in flight, or does it now).
   */
  effect(effect: Effect): boolean {
    if (this.#open.segments.length > 0) {
      this.#open.effects.push(effect)
      return true
    }
    const last = this.#ready.at(-1)
    if (!last) return false
    last.effects.push(effect)
    return true
  }

  /** The next message to send, sealing the open batch if nothing else waits. */
  peek(): Sent | undefined {
    if (this.#ready.length === 0) this.seal()
    return this.#ready[0]
  }

  shift(): Sent | undefined {
    return this.#ready.shift()
  }

  /** Messages handed back after a failure go first again, in their order. */
  unshift(messages: readonly Sent[]): void {
    this.#ready.unshift(...messages)
  }

  /** Whether anything queued here must be acknowledged before a drain is over. */
  busy(): boolean {
    return (
      needed({ lineBytes: this.#open.bytes, effects: this.#open.effects }) ||
      this.#ready.some(needed)
    )
  }

  /** Drops everything (publishing failed for good). */
  clear(): void {
    this.#open = new Batch()
    this.#ready = []
  }

  seal(): void {
    const b = this.#open
    if (b.segments.length === 0) return
    this.#open = new Batch()
    const meta: BatchMeta = {
      v: FRAME_VERSION,
      h: this.#host,
      r: this.#run,
      c: this.#counter,
      g: Object.fromEntries(b.gens),
      s: b.segments,
    }
    this.#ready.push({
      counter: this.#counter++,
      payload: encodeBatch(meta, b.data, b.bytes),
      lineBytes: b.bytes,
      effects: b.effects,
      needs: b.needs,
      result: null,
    })
  }

  /** The open batch, sealed first if it cannot take `want` more bytes of lines. */
  #batchWithRoom(want: number): Batch {
    if (this.#open.segments.length > 0 && this.#open.room() < want) this.seal()
    return this.#open
  }
}
