/**
 * The thread engines' checkpoints line by line (LockedWriter.stateLines with toldLines, which
 * remakes a source's line only when its slot or its description moved) against the way they
 * were taken before and the event-loop engines still take them (snapshot, sourcesAt and the
 * Checkpointer's records): the same state file, source for source, whatever the sequence of
 * writes, start-up notes, forgets, descriptions and slot reuses. The writers of regions 1 and 2
 * are attached in this thread (the slots do not care which thread holds the lock).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { afterEach, beforeEach, expect, test } from 'vitest'
import { silentLogger } from '../../../src/log.js'
import { LockedWriter } from '../../../src/sink/locked-writer.js'
import { decodeState } from '../../../src/state/checkpoint.js'
import { Checkpointer, sourcesAt, toldLines } from '../../../src/state/checkpointer.js'
import type { SourceState } from '../../../src/tail/source-state.js'

let dir: string
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'logmerge-state-lines-'))
})
afterEach(() => rmSync(dir, { recursive: true, force: true }))

type Op =
  | { kind: 'write'; thread: 0 | 1; ino: number; bytes: number; head: boolean }
  | { kind: 'note'; ino: number; offset: number }
  | { kind: 'tell'; thread: 0 | 1; ino: number; name: number }
  | { kind: 'forget'; thread: 0 | 1; ino: number }
  | { kind: 'save' }

const INOS = [3, 4, 5, 6]
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    kind: fc.constant('write' as const),
    thread: fc.constantFrom(0 as const, 1 as const),
    ino: fc.constantFrom(...INOS),
    bytes: fc.integer({ min: 1, max: 40 }),
    head: fc.boolean(),
  }),
  fc.record({
    kind: fc.constant('note' as const),
    ino: fc.constantFrom(...INOS),
    offset: fc.integer({ min: 0, max: 100 }),
  }),
  fc.record({
    kind: fc.constant('tell' as const),
    thread: fc.constantFrom(0 as const, 1 as const),
    ino: fc.constantFrom(...INOS),
    name: fc.integer({ min: 0, max: 2 }),
  }),
  fc.record({
    kind: fc.constant('forget' as const),
    thread: fc.constantFrom(0 as const, 1 as const),
    ino: fc.constantFrom(...INOS),
  }),
  fc.constant({ kind: 'save' as const }),
)

const describe = (ino: number, name: number, offset: number): SourceState => ({
  dev: 1,
  ino,
  path: `/logs/${ino}-${name}.log`,
  head: Buffer.from(`told ${ino}`).toString('base64'),
  offset,
})

test('line by line, the thread engines checkpoint what the records made before: any sequence', async () => {
  let run = 0
  await fc.assert(
    fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 60 }), async (ops) => {
      run++
      const main = LockedWriter.open(join(dir, `out-${run}.log`), 2, () => {})
      const threads = [0, 1].map((t) => LockedWriter.attach(main.share, t, () => {}))
      const told = new Map<string, SourceState>()
      const owner = new Map<string, number>()
      main.ownerOf = (key) => owner.get(key)
      const offsets = new Map<string, number>()
      let seen = 0
      const changes = () => main.changes + seen
      /** A checkpointer of `main` saving to `<name>-<run>.json`, line by line when asked. */
      const checkpointer = (name: string, byLines: boolean) => {
        const lines = toldLines(told)
        return new Checkpointer(
          join(dir, `${name}-${run}.json`),
          'out',
          {
            snapshot: () => main.snapshot(),
            sources: (o) => sourcesAt(told, o),
            fsync: async () => {},
            changes: () => main.changes + seen,
            ...(byLines && { stateLines: () => main.stateLines(lines) }),
          },
          silentLogger,
        )
      }
      const before = checkpointer('before', false)
      const now = checkpointer('now', true)
      const compare = async () => {
        await before.save()
        await now.save()
        const read = (name: string) => {
          try {
            return decodeState(readFileSync(join(dir, `${name}-${run}.json`), 'utf8'))
          } catch {
            return null // not saved yet: put off in both, or never asked
          }
        }
        const a = read('before')
        const b = read('now')
        expect(b?.sources ?? null).toEqual(a?.sources ?? null)
        expect(b?.output ?? null).toEqual(a?.output ?? null)
      }
      for (const o of ops) {
        const key = `1:${'ino' in o ? o.ino : 0}`
        if (o.kind === 'write') {
          const at = (offsets.get(key) ?? 0) + o.bytes
          offsets.set(key, at)
          const block = Buffer.alloc(o.bytes, 97)
          block[o.bytes - 1] = 10
          const head = o.head ? Buffer.from(`${key} head ${at}`) : undefined
          const stats = {
            lines: at,
            linesSplit: 0,
            truncations: 0,
            pendingBytes: 0,
            lastActivity: at,
            bytes: at,
          }
          threads[o.thread]?.write(block, { key, offset: at, ...(head && { head }), stats })
        } else if (o.kind === 'note') {
          main.note({ key, offset: o.offset, head: Buffer.from(`noted ${key}`) })
          told.set(key, describe(o.ino, 9, o.offset))
          seen++
        } else if (o.kind === 'tell') {
          told.set(key, describe(o.ino, o.name, offsets.get(key) ?? 0))
          owner.set(key, o.thread)
          seen++
        } else if (o.kind === 'forget') {
          if (owner.get(key) === undefined || owner.get(key) === o.thread) {
            threads[o.thread]?.forget(key)
            told.delete(key)
            owner.delete(key)
            seen++
          }
        } else await compare()
      }
      await compare()
      main.close()
    }),
    { numRuns: 100 },
  )
})
