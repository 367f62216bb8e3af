/**
 * The event-loop writer's batch arithmetic (batches.ts): how many blocks a writev takes, what is
 * left after a partial write, and where a batch splits when the file is left part-way.
 */
import { describe, expect, it } from 'vitest'
import { batchLength, byteLength, skipBytes, splitAt } from '../../../src/sink/batches.js'

const blocks = (...texts: string[]) => texts.map((t) => Buffer.from(t))
const text = (batch: readonly Buffer[]) => Buffer.concat(batch).toString()

describe('batchLength', () => {
  it('takes every block of a short queue, at least one', () => {
    expect(batchLength(blocks('a\n', 'b\n', 'c\n'))).toBe(3)
    expect(batchLength([Buffer.alloc(1 << 20)])).toBe(1)
  })

  it('stops at the block that reaches 512 KiB, and at IOV_MAX blocks', () => {
    const half = Buffer.alloc(256 * 1024)
    expect(batchLength([half, half, half])).toBe(2)
    expect(batchLength(Array.from({ length: 2000 }, () => Buffer.from('x\n')))).toBe(1024)
  })
})

describe('after a partial write', () => {
  it('skipBytes leaves the bytes not yet written, the block cut short included', () => {
    const batch = blocks('a-1\n', 'b-1\nb-2\n', 'c-1\n')
    expect(text(skipBytes(batch, 0))).toBe('a-1\nb-1\nb-2\nc-1\n')
    expect(text(skipBytes(batch, 4))).toBe('b-1\nb-2\nc-1\n')
    expect(text(skipBytes(batch, 6))).toBe('1\nb-2\nc-1\n')
    expect(skipBytes(batch, byteLength(batch))).toEqual([])
  })

  it('splitAt counts the whole blocks written and the bytes of the one cut short', () => {
    const batch = blocks('a-1\n', 'b-1\nb-2\n', 'c-1\n')
    expect(splitAt(batch, 0)).toEqual({ whole: 0, left: 0 })
    expect(splitAt(batch, 4)).toEqual({ whole: 1, left: 0 })
    expect(splitAt(batch, 9)).toEqual({ whole: 1, left: 5 })
    expect(splitAt(batch, 12)).toEqual({ whole: 2, left: 0 })
  })
})
