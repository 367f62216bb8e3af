/**
 * What the reader threads told of each source (engines/thread-sources.ts): the owner rule (a
 * key two threads hold is the last teller's; a stale thread's forget does not undo it), a
 * reused inode dropped from the writer first, and a checkpoint asked for only for new sources.
 */
import { describe, expect, it } from 'vitest'
import { ThreadSources } from '../../../src/engines/thread-sources.js'
import type { SourceMark } from '../../../src/sink/sink.js'
import type { SourceState } from '../../../src/tail/source-state.js'

const source = (path: string, born: number, offset = 0): SourceState => ({
  dev: 1,
  ino: 7,
  born,
  path,
  head: '',
  offset,
})

function harness() {
  const forgotten: string[] = []
  const noted: SourceMark[] = []
  const opened: string[] = []
  let saves = 0
  const sources = new ThreadSources({
    forget: (key) => forgotten.push(key),
    note: (mark) => noted.push(mark),
    opened: (_key, path) => opened.push(path),
    save: () => {
      saves++
    },
  })
  return {
    sources,
    forgotten,
    noted,
    opened,
    get saves() {
      return saves
    },
  }
}

describe('ThreadSources', () => {
  it('records what a thread tells, notes it for the writer, and asks for a checkpoint once', () => {
    const h = harness()
    h.sources.told('1:7', source('/l/a.log', 100), 0)
    h.sources.told('1:7', source('/l/a.log', 100, 50), 0)
    expect(h.sources.states.get('1:7')?.offset).toBe(50)
    expect(h.sources.ownerOf('1:7')).toBe(0)
    expect(h.sources.seen).toBe(2)
    expect(h.noted.map((m) => m.key)).toEqual(['1:7', '1:7'])
    expect(h.opened).toEqual(['/l/a.log', '/l/a.log'])
    expect(h.saves).toBe(1) // only when the source was new
    expect(h.forgotten).toEqual([])
  })

  it('gives a key another thread tells of to that thread, the old offset dropped first', () => {
    const h = harness()
    h.sources.told('1:7', source('/l/a.log', 100), 0)
    h.sources.told('1:7', source('/m/b.log', 100), 1)
    expect(h.sources.ownerOf('1:7')).toBe(1)
    expect(h.forgotten).toEqual(['1:7'])
    // The old thread's forget of the key does not undo the owner's record.
    h.sources.forgot('1:7', 0)
    expect(h.sources.states.get('1:7')?.path).toBe('/m/b.log')
    expect(h.forgotten).toEqual(['1:7'])
    // The owner's does.
    h.sources.forgot('1:7', 1)
    expect(h.sources.states.has('1:7')).toBe(false)
    expect(h.sources.ownerOf('1:7')).toBeUndefined()
    expect(h.forgotten).toEqual(['1:7', '1:7'])
  })

  it('drops the offset of a recorded source whose inode a file born at another time reuses', () => {
    const h = harness()
    h.sources.started(source('/l/a.log', 100, 900))
    expect(h.sources.states.get('1:7')?.offset).toBe(900)
    h.sources.told('1:7', source('/l/a.log', 200), 0) // born later: another file
    expect(h.forgotten).toEqual(['1:7'])
    expect(h.saves).toBe(0) // the key was recorded at start-up already
    h.sources.told('1:7', source('/l/a.log', 200, 10), 0) // the same file again
    expect(h.forgotten).toEqual(['1:7'])
  })

  it('keeps a recorded source told of again by its own file', () => {
    const h = harness()
    h.sources.started(source('/l/a.log', 100, 900))
    h.sources.told('1:7', source('/l/a.log', 100, 900), 0)
    expect(h.forgotten).toEqual([])
  })
})
