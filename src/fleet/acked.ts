/**
 * What the stream has acknowledged of each file on a host: the offsets a host's checkpoint
 * records (never what was merely sent). Moved only by the effects of acknowledged messages,
 * in order (packer.ts, sender.ts). Pure logic.
 */
import type { SourceStats } from '../sink/sink.js'
import type { Acked, Effect } from './packer.js'

export class AckedFiles {
  readonly #files = new Map<string, Acked>()

  /**
   * Does what an acknowledged message's effect says. `onNoted`: a file was noted for the first
   * time; `onForgot`: a file left, with the generations the files still use.
   */
  apply(
    effect: Effect,
    onNoted: () => void,
    onForgot: (key: string, inUse: Set<string>) => void,
  ): boolean {
    switch (effect.kind) {
      case 'mark': {
        const before = this.#files.get(effect.key)
        const a = effect.acked
        this.#files.set(effect.key, {
          offset: a.offset,
          head: a.head ?? before?.head,
          stats: a.stats ?? before?.stats,
          gen: a.gen,
        })
        return true
      }
      case 'note':
        if (this.#files.has(effect.key)) return false
        this.#files.set(effect.key, effect.acked)
        onNoted()
        return true
      case 'forget': {
        if (!this.#files.delete(effect.key)) return false
        const inUse = new Set<string>()
        for (const a of this.#files.values()) if (a.gen) inUse.add(a.gen)
        onForgot(effect.key, inUse)
        return true
      }
    }
  }

  /** A checkpoint's view: offsets, heads, stats, and the generation each offset is in. */
  view(): {
    offsets: Map<string, number>
    heads: Map<string, Uint8Array>
    stats: Map<string, SourceStats>
    currentOf: Map<string, string | null>
  } {
    const offsets = new Map<string, number>()
    const heads = new Map<string, Uint8Array>()
    const stats = new Map<string, SourceStats>()
    const currentOf = new Map<string, string | null>()
    for (const [key, a] of this.#files) {
      offsets.set(key, a.offset)
      if (a.head) heads.set(key, a.head)
      if (a.stats) stats.set(key, a.stats)
      currentOf.set(key, a.gen)
    }
    return { offsets, heads, stats, currentOf }
  }
}
