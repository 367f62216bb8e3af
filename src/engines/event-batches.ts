/**
 * Discovery's events on their way to the reader threads (threaded.ts): gathered per thread and
 * sent once a turn of the main event loop as one 'events' message, each path once, and held
 * until every thread has its 'start'. One message a turn, not one an event: a writer logging a
 * line at a time makes an event a line.
 */
import { type Shard, send } from './reader-threads.js'

/** The events of each thread not sent yet. */
export class EventBatches {
  readonly #route: (path: string) => Shard
  readonly #pending = new Map<Shard, { resolve: Set<string>; changed: Set<string> }>()
  #started = false
  #flushing: NodeJS.Immediate | null = null

  constructor(route: (path: string) => Shard) {
    this.#route = route
  }

  add(kind: 'resolve' | 'changed', path: string): void {
    const shard = this.#route(path)
    let events = this.#pending.get(shard)
    if (!events) {
      events = { resolve: new Set(), changed: new Set() }
      this.#pending.set(shard, events)
    }
    events[kind].add(path)
    if (this.#started && this.#flushing === null) this.#flushing = setImmediate(() => this.#flush())
  }

  /** Every thread has its 'start': what came meanwhile goes now, the rest once a turn. */
  start(): void {
    this.#started = true
    this.#flush()
  }

  /** Sends what is gathered at once (before the threads' 'stop'). */
  stop(): void {
    if (this.#flushing !== null) clearImmediate(this.#flushing)
    this.#flush()
  }

  #flush(): void {
    this.#flushing = null
    for (const [shard, { resolve, changed }] of this.#pending) {
      for (const p of resolve) changed.delete(p) // a look at the name reads the file too
      send(shard, { code: 'events', resolve: [...resolve], changed: [...changed] })
    }
    this.#pending.clear()
  }
}
