import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { firstOverlong, LineFramer, splitOverlong } from '../../../src/batch/frame.js'

const NL = 0x0a

/**
 * What framing `input` must give, computed line by line: each line cut into pieces of
 * maxLineBytes - 1 bytes with a newline added after each, the last line given a newline if it
 * has none; and where (in the output) the added newlines are.
 */
function oracle(input: Buffer, maxLineBytes: number): { out: Buffer; inserted: number[] } {
  const room = maxLineBytes - 1
  const out: number[] = []
  const inserted: number[] = []
  let lineStart = 0
  while (lineStart < input.length) {
    const nl = input.indexOf(NL, lineStart)
    const end = nl === -1 ? input.length : nl
    let at = lineStart
    while (end - at > room) {
      for (let i = at; i < at + room; i++) out.push(input[i] as number)
      inserted.push(out.length)
      out.push(NL)
      at += room
    }
    for (let i = at; i < end; i++) out.push(input[i] as number)
    if (nl === -1) inserted.push(out.length)
    out.push(NL)
    lineStart = end + 1
  }
  return { out: Buffer.from(out), inserted }
}

/** Lines of lengths around multiples of `room` (the cut points), some without content. */
const inputArb = fc
  .array(fc.integer({ min: 0, max: 60 }), { maxLength: 25 })
  .chain((lengths) =>
    fc.tuple(
      fc.constant(lengths),
      fc.boolean(), // does the input end with a partial line?
    ),
  )
  .map(([lengths, partial]) => {
    const parts = lengths.map((n, i) => `${String.fromCharCode(97 + (i % 26)).repeat(n)}\n`)
    const text = parts.join('')
    return Buffer.from(partial && text.length > 0 ? text.slice(0, -1) : text)
  })

describe('LineFramer', () => {
  it('frames any input, read in any chunks into any slot, as the line-by-line oracle', () => {
    fc.assert(
      fc.property(
        inputArb,
        fc.integer({ min: 2, max: 20 }),
        fc.array(fc.integer({ min: 1, max: 70 }), { minLength: 1, maxLength: 10 }),
        fc.integer({ min: 1, max: 90 }),
        fc.integer({ min: 1, max: 40 }),
        (input, maxLineBytes, wants, slotBytes, minRead) => {
          const framer = new LineFramer(maxLineBytes)
          const slot = Buffer.alloc(slotBytes)
          const blocks: Buffer[] = []
          const inserted: number[] = []
          let outBytes = 0
          let offset = 0
          for (let k = 0; ; k++) {
            const { buf, start, want } = framer.readBuffer(
              slot,
              wants[k % wants.length] ?? 1,
              minRead,
            )
            expect(want).toBeGreaterThan(0)
            const n = Math.min(want, input.length - offset)
            input.copy(buf, start, offset, offset + n)
            offset += n
            const framed = n === 0 ? framer.flush() : framer.frame(buf, start, n)
            if (framed !== null) {
              expect(framed.block.length).toBeGreaterThan(0)
              expect(framed.block[framed.block.length - 1]).toBe(NL)
              for (const at of framed.inserted) inserted.push(outBytes + at)
              outBytes += framed.block.length
              blocks.push(Buffer.from(framed.block)) // the slot is read into again
            }
            buf.fill(0xee) // nothing may rely on the read buffer after frame()
            if (n === 0) break
          }
          const expected = oracle(input, maxLineBytes)
          expect(Buffer.concat(blocks).toString('latin1')).toBe(expected.out.toString('latin1'))
          expect(inserted).toEqual(expected.inserted)
          expect(framer.pendingBytes).toBe(0)
        },
      ),
      { numRuns: 500 },
    )
  })

  it('reads into the slot while the held line leaves room, else into a buffer of its own', () => {
    const framer = new LineFramer(1000)
    const slot = Buffer.alloc(16)
    const first = framer.readBuffer(slot, 16, 4)
    expect(first.buf).toBe(slot)
    first.buf.write('0123456789abcdef')
    expect(framer.frame(first.buf, 0, 16)).toBeNull() // no newline yet: all held
    const second = framer.readBuffer(slot, 16, 4)
    expect(second.buf).not.toBe(slot)
    expect(second.start).toBe(16)
    expect(second.buf.subarray(0, 16).toString()).toBe('0123456789abcdef')
    second.buf.write('\n', 16)
    expect(framer.frame(second.buf, 16, 1)?.block.toString()).toBe('0123456789abcdef\n')
    const third = framer.readBuffer(slot, 16, 4)
    expect(third.buf).toBe(slot)
    expect(third.want).toBe(16)
  })

  it('a block of ordinary lines is a view of the read buffer, nothing inserted', () => {
    const framer = new LineFramer(100)
    const slot = Buffer.alloc(32)
    const { buf, start } = framer.readBuffer(slot, 32, 4)
    const n = buf.write('a 1\nb 2\nc', start)
    const framed = framer.frame(buf, start, n)
    expect(framed?.block.buffer).toBe(slot.buffer)
    expect(framed?.block.byteOffset).toBe(slot.byteOffset)
    expect(framed?.block.toString()).toBe('a 1\nb 2\n')
    expect(framed?.inserted).toEqual([])
    expect(framer.pendingBytes).toBe(1)
  })

  it('refuses a maxLineBytes that cannot hold a byte and a newline', () => {
    expect(() => new LineFramer(1)).toThrow(/maxLineBytes must be an integer >= 2, got 1/)
    expect(() => new LineFramer(2.5)).toThrow(RangeError)
  })
})

describe('firstOverlong, splitOverlong', () => {
  /** The first line start at or after `from` whose content is longer than `room`, one by one. */
  const naive = (block: Buffer, from: number, room: number): number => {
    for (let s = from; s < block.length; ) {
      const nl = block.indexOf(NL, s)
      if (nl - s > room) return s
      s = nl + 1
    }
    return -1
  }

  it('finds the first line longer than room, as a line-by-line search does', () => {
    fc.assert(
      fc.property(inputArb, fc.integer({ min: 1, max: 30 }), (input, room) => {
        const block =
          input.length > 0 && input[input.length - 1] !== NL
            ? Buffer.concat([input, Buffer.from('\n')])
            : input
        const starts = [0]
        for (let i = 0; i < block.length - 1; i++) if (block[i] === NL) starts.push(i + 1)
        for (const from of starts)
          expect(firstOverlong(block, from, room)).toBe(naive(block, from, room))
      }),
      { numRuns: 300 },
    )
  })

  it('cuts only the long lines, and says where the added newlines are', () => {
    const inserted: number[] = []
    const block = Buffer.from('ab\nabcdefg\nx\nabcd\n')
    expect(splitOverlong(block, 3, inserted).toString()).toBe('ab\nabc\ndef\ng\nx\nabc\nd\n')
    expect(inserted).toEqual([6, 10, 18])
    const same = Buffer.from('abc\nde\n')
    expect(splitOverlong(same, 3, [])).toBe(same)
  })
})
