/**
 * What the readers count for the metrics: a cursor's bytes (every byte of the blocks it hands
 * on, the newlines it adds included), and a file table's summary (files open, parked and
 * missing; rotations and copytruncate copies per input name).
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { Cursor } from '../../../src/tail/cursor.js'
import { FileTable } from '../../../src/tail/file-table.js'

describe('Cursor.bytes', () => {
  it('is the length of every block returned, split pieces and a flushed partial line included', () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom('a', 'bb', '\n', 'cccccccccccc', 'dd\n'), { maxLength: 60 }),
        fc.integer({ min: 2, max: 16 }),
        fc.boolean(),
        (pieces, maxLineBytes, flush) => {
          const cursor = new Cursor({
            identity: { dev: 1, ino: 2 },
            offset: 0,
            head: Buffer.alloc(0),
            maxLineBytes,
            counts: { lines: 7, bytes: 70, linesSplit: 0, truncations: 0 },
          })
          let handed = 0
          let lines = 0
          for (const piece of pieces) {
            const block = cursor.frame(Buffer.from(piece, 'latin1'))
            handed += block?.length ?? 0
            lines += block ? block.toString('latin1').split('\n').length - 1 : 0
          }
          const rest = flush ? cursor.flush() : null
          handed += rest?.length ?? 0
          lines += rest ? 1 : 0
          expect(cursor.bytes).toBe(70 + handed) // carried over from the checkpoint, then grown
          expect(cursor.lines).toBe(7 + lines)
        },
      ),
      { numRuns: 300 },
    )
  })
})

describe('FileTable.summary', () => {
  const opened = (table: FileTable<number>, path: string, ino: number, handle: number) =>
    table.opened(
      path,
      handle,
      { identity: { dev: 1, ino }, size: 0, head: Buffer.from(`head of ${ino}`) },
      false,
      0,
    )

  it('counts files open and parked, names missing, and per name its rotations and copies', () => {
    const table = new FileTable<number>(1024)
    expect(table.look('/l/a.log', { dev: 1, ino: 10 }).step.kind).toBe('open')
    const a = opened(table, '/l/a.log', 10, 3)
    table.look('/l/b.log', { dev: 1, ino: 20 })
    const b = opened(table, '/l/b.log', 20, 4)
    expect(a && b).toBeTruthy()
    table.park(b as NonNullable<typeof b>)
    table.unreadable.add('/l/missing.log')
    expect(table.summary()).toEqual({ open: 1, parked: 1, missing: 1, names: [] })

    // a.log rotated (rename + create): the old file loses the name, a new one takes it.
    expect(table.look('/l/a.log', { dev: 1, ino: 11 }).orphaned).toBe(a)
    opened(table, '/l/a.log', 11, 5)
    // Removed, then created again: one more.
    expect(table.look('/l/a.log', null).orphaned?.key).toBe('1:11')
    // logrotate's copytruncate copy of b.log, read after the truncation, counts for b.log.
    table.rememberCopy('/l/b.log.1', { dev: 1, ino: 21 }, Buffer.from('head of 20'), 100)
    // The next copy written in place over it (same inode, cp or copyFileSync): a copy too.
    table.rememberCopy('/l/b.log.1', { dev: 1, ino: 21 }, Buffer.from('head of 20'), 200)
    const s = table.summary()
    expect(s.names).toEqual([
      { path: '/l/a.log', rotations: 2, copies: 0 },
      { path: '/l/b.log', rotations: 0, copies: 2 },
    ])
    expect(s.open).toBe(2) // the old a.log is still open, read to its end before it is closed
  })
})
