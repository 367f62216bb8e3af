import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  Cursor,
  type CursorInit,
  FINGERPRINT_BYTES,
  identityKey,
  sameIdentity,
} from '../../../src/tail/cursor.js'

const NEWLINE = 0x0a
const ID = { dev: 7, ino: 42 }
/** Large enough that no generated line is ever split. */
const NO_SPLIT = 2 ** 30
const RUNS = { numRuns: 300 }

const cursor = (init: Partial<CursorInit> = {}): Cursor =>
  new Cursor({ identity: ID, offset: 0, head: Buffer.alloc(0), maxLineBytes: NO_SPLIT, ...init })

const b = (text: string): Buffer => Buffer.from(text, 'latin1')

// ---------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------

/** Bytes with the interesting ones (newline, CR, NUL, bytes of broken UTF-8) over-represented. */
const byteArb = (newlineWeight: number): fc.Arbitrary<number> =>
  fc.oneof(
    { weight: 20, arbitrary: fc.integer({ min: 0, max: 255 }) },
    { weight: 4, arbitrary: fc.constantFrom(0x0d, 0x00, 0xff, 0xfe, 0xc3, 0xe2, 0x80, 0xbf) },
    { weight: newlineWeight, arbitrary: fc.constant(NEWLINE) },
  )

const inputArb = (newlineWeight = 2, maxLength = 400): fc.Arbitrary<Buffer> =>
  fc.array(byteArb(newlineWeight), { maxLength }).map((bytes) => Buffer.from(bytes))

/** Raw cut points; `chunksOf` maps them into the input (duplicates give empty chunks). */
const cutsArb = fc.array(fc.nat(), { maxLength: 24 })

const maxLineArb = fc.integer({ min: 2, max: 64 })

/**
 * Lines whose content lengths sit right around multiples of maxLineBytes-1 (the split points),
 * optionally followed by a partial line of such a length.
 */
const boundaryInputArb = (maxLineBytes: number): fc.Arbitrary<Buffer> => {
  const room = maxLineBytes - 1
  const lengthArb = fc
    .tuple(fc.integer({ min: 0, max: 4 }), fc.integer({ min: -1, max: 1 }))
    .map(([k, d]) => Math.max(0, k * room + d))
  const contentArb = lengthArb.chain((n) =>
    fc.array(
      fc.integer({ min: 0, max: 255 }).filter((x) => x !== NEWLINE),
      { minLength: n, maxLength: n },
    ),
  )
  return fc
    .tuple(fc.array(contentArb, { maxLength: 8 }), fc.option(contentArb, { nil: undefined }))
    .map(([lines, partial]) => {
      const parts = lines.map((line) => Buffer.from([...line, NEWLINE]))
      if (partial !== undefined) parts.push(Buffer.from(partial))
      return Buffer.concat(parts)
    })
}

/** Cuts `input` at the given points (taken modulo length+1, sorted); may yield empty chunks. */
const chunksOf = (input: Buffer, cuts: readonly number[]): Buffer[] => {
  const points = cuts.map((c) => c % (input.length + 1)).sort((x, y) => x - y)
  const chunks: Buffer[] = []
  let prev = 0
  for (const p of points) {
    chunks.push(input.subarray(prev, p))
    prev = p
  }
  chunks.push(input.subarray(prev))
  return chunks
}

const bytewise = (input: Buffer): Buffer[] => Array.from(input, (_, i) => input.subarray(i, i + 1))

/** Feeds every chunk; returns the concatenated blocks (before any flush). */
const feed = (
  c: Cursor,
  chunks: readonly Buffer[],
  afterEach?: (consumed: number, out: Buffer) => void,
): Buffer => {
  const blocks: Buffer[] = []
  let consumed = 0
  for (const chunk of chunks) {
    const block = c.frame(chunk)
    consumed += chunk.length
    if (block !== null) {
      // A returned block is never empty and always ends with a whole line.
      expect(block.length).toBeGreaterThan(0)
      expect(block[block.length - 1]).toBe(NEWLINE)
      blocks.push(Buffer.from(block))
    }
    afterEach?.(consumed, Buffer.concat(blocks))
  }
  return Buffer.concat(blocks)
}

const feedAndFlush = (c: Cursor, chunks: readonly Buffer[]): Buffer => {
  const out = feed(c, chunks)
  const flushed = c.flush()
  return flushed === null ? out : Buffer.concat([out, flushed])
}

// ---------------------------------------------------------------------------------------------
// Oracles, written independently of the implementation
// ---------------------------------------------------------------------------------------------

/** Plain framing: complete lines (each with its newline) and the trailing partial line. */
const frameOracle = (input: Buffer): { complete: Buffer; partial: Buffer } => {
  const complete: number[] = []
  let line: number[] = []
  for (const byte of input) {
    line.push(byte)
    if (byte === NEWLINE) {
      complete.push(...line)
      line = []
    }
  }
  return { complete: Buffer.from(complete), partial: Buffer.from(line) }
}

/** One line's content (no newline) as output pieces, each with a newline. */
const splitLine = (content: readonly number[], maxLineBytes: number): number[] => {
  const room = maxLineBytes - 1
  const out: number[] = []
  let rest = content.slice()
  while (rest.length > room) {
    out.push(...rest.slice(0, room), NEWLINE)
    rest = rest.slice(room)
  }
  out.push(...rest, NEWLINE)
  return out
}

/**
 * What a cursor should have returned after seeing `input` (before flush): complete lines split
 * into pieces, plus the pieces already cut from an overlong partial line; what it still holds;
 * how many lines were overlong; and what flush() should return.
 */
const streamOracle = (
  input: Buffer,
  maxLineBytes: number,
): { out: Buffer; pending: Buffer; split: number; flushed: Buffer | null } => {
  const room = maxLineBytes - 1
  const out: number[] = []
  let split = 0
  let line: number[] = []
  for (const byte of input) {
    if (byte === NEWLINE) {
      if (line.length > room) split++
      out.push(...splitLine(line, maxLineBytes))
      line = []
    } else {
      line.push(byte)
    }
  }
  if (line.length > room) split++
  while (line.length > room) {
    out.push(...line.slice(0, room), NEWLINE)
    line = line.slice(room)
  }
  const pending = Buffer.from(line)
  return {
    out: Buffer.from(out),
    pending,
    split,
    flushed: line.length > 0 ? Buffer.from([...line, NEWLINE]) : null,
  }
}

/**
 * Removes the newlines the cursor inserted, walking the output against the input it came from.
 * A newline is original when the input has one right after the line's content; otherwise it
 * was inserted. Returns the restored bytes and the content length before each inserted newline.
 */
const unsplit = (output: Buffer, input: Buffer): { restored: Buffer; insertedAfter: number[] } => {
  const restored: number[] = []
  const insertedAfter: number[] = []
  let start = 0
  while (start < output.length) {
    const end = output.indexOf(NEWLINE, start)
    if (end < 0)
      throw new Error(
        `output does not end with a newline: ${output.subarray(start).toString('hex')}`,
      )
    restored.push(...output.subarray(start, end))
    if (input[restored.length] === NEWLINE) {
      restored.push(NEWLINE)
    } else {
      insertedAfter.push(end - start)
    }
    start = end + 1
  }
  return { restored: Buffer.from(restored), insertedAfter }
}

const outputLines = (output: Buffer): Buffer[] => {
  const lines: Buffer[] = []
  let start = 0
  while (start < output.length) {
    const end = output.indexOf(NEWLINE, start)
    lines.push(output.subarray(start, end < 0 ? output.length : end + 1))
    start = end < 0 ? output.length : end + 1
  }
  return lines
}

// ---------------------------------------------------------------------------------------------

describe('identity helpers', () => {
  it('identityKey joins device and inode', () => {
    expect(identityKey({ dev: 3, ino: 99 })).toBe('3:99')
  })

  it('sameIdentity compares device and inode', () => {
    expect(sameIdentity({ dev: 1, ino: 2 }, { dev: 1, ino: 2 })).toBe(true)
    expect(sameIdentity({ dev: 1, ino: 2 }, { dev: 1, ino: 3 })).toBe(false)
    expect(sameIdentity({ dev: 1, ino: 2 }, { dev: 2, ino: 2 })).toBe(false)
  })
})

describe('Cursor constructor', () => {
  for (const bad of [1, 0, -1, 2.5, 1023.5, Number.NaN, Number.POSITIVE_INFINITY]) {
    it(`rejects maxLineBytes ${bad} with a RangeError naming the value`, () => {
      expect(() => cursor({ maxLineBytes: bad })).toThrow(RangeError)
      expect(() => cursor({ maxLineBytes: bad })).toThrow(String(bad))
    })
  }

  it('accepts maxLineBytes 2, the smallest that fits a byte and a newline', () => {
    const c = cursor({ maxLineBytes: 2 })
    expect(c.maxLineBytes).toBe(2)
    expect(c.frame(b('ab\n'))).toEqual(b('a\nb\n'))
  })

  it('starts with the given identity and offset, nothing held and nothing split', () => {
    const c = cursor({ offset: 1234, maxLineBytes: 100 })
    expect(c.identity).toEqual(ID)
    expect(c.offset).toBe(1234)
    expect(c.committedOffset).toBe(1234)
    expect(c.pendingBytes).toBe(0)
    expect(c.linesSplit).toBe(0)
    expect(c.flush()).toBeNull()
  })

  it('keeps at most FINGERPRINT_BYTES of the given head, as its own copy', () => {
    const given = Buffer.alloc(FINGERPRINT_BYTES + 10, 0x61)
    const c = cursor({ offset: 500, head: given })
    expect(c.head.length).toBe(FINGERPRINT_BYTES)
    expect(c.headIncomplete).toBe(false)
    given.fill(0x62)
    expect(c.head).toEqual(Buffer.alloc(FINGERPRINT_BYTES, 0x61))
  })
})

describe('frame: framing into whole lines', () => {
  it('returns complete lines and holds the partial one until flush', () => {
    const c = cursor()
    expect(c.frame(b('one\ntw'))).toEqual(b('one\n'))
    expect(c.pendingBytes).toBe(2)
    expect(c.frame(b('o\nthree'))).toEqual(b('two\n'))
    expect(c.frame(b('!'))).toBeNull()
    expect(c.pendingBytes).toBe(6)
    expect(c.flush()).toEqual(b('three!\n'))
    expect(c.pendingBytes).toBe(0)
    expect(c.flush()).toBeNull()
  })

  it('returns null for an empty chunk and changes nothing', () => {
    const c = cursor({ offset: 10 })
    c.frame(b('ab'))
    expect(c.frame(Buffer.alloc(0))).toBeNull()
    expect(c.offset).toBe(12)
    expect(c.pendingBytes).toBe(2)
  })

  it('passes CR, NUL, blank lines and invalid UTF-8 through untouched', () => {
    const c = cursor()
    const input = Buffer.from([0x61, 0x0d, 0x0a, 0x0a, 0x00, 0xff, 0xc3, 0x0a, 0x0a])
    expect(c.frame(input)).toEqual(input)
    expect(c.pendingBytes).toBe(0)
  })

  it('completes a held line with a chunk that is just a newline', () => {
    const c = cursor()
    expect(c.frame(b('abc'))).toBeNull()
    expect(c.frame(b('\n'))).toEqual(b('abc\n'))
  })

  it('any chunking gives the same output as one chunk, and both match the oracle', () => {
    fc.assert(
      fc.property(inputArb(), cutsArb, (input, cuts) => {
        const { complete, partial } = frameOracle(input)

        const whole = cursor()
        expect(feed(whole, [input])).toEqual(complete)
        expect(whole.pendingBytes).toBe(partial.length)
        expect(whole.flush()).toEqual(partial.length > 0 ? Buffer.concat([partial, b('\n')]) : null)

        const chunked = cursor()
        expect(feed(chunked, chunksOf(input, cuts))).toEqual(complete)
        expect(chunked.pendingBytes).toBe(partial.length)
        expect(chunked.flush()).toEqual(
          partial.length > 0 ? Buffer.concat([partial, b('\n')]) : null,
        )
        expect(chunked.linesSplit).toBe(0)
      }),
      RUNS,
    )
  })

  it('byte-by-byte feeding matches the oracle', () => {
    fc.assert(
      fc.property(inputArb(3, 120), (input) => {
        const { complete, partial } = frameOracle(input)
        const c = cursor()
        expect(feed(c, bytewise(input))).toEqual(complete)
        expect(c.pendingBytes).toBe(partial.length)
      }),
      { numRuns: 100 },
    )
  })

  it('after every chunk, the output so far is exactly the complete lines of the bytes so far', () => {
    fc.assert(
      fc.property(inputArb(), cutsArb, (input, cuts) => {
        const c = cursor()
        feed(c, chunksOf(input, cuts), (consumed, out) => {
          const { complete, partial } = frameOracle(input.subarray(0, consumed))
          expect(out).toEqual(complete)
          expect(c.pendingBytes).toBe(partial.length)
        })
      }),
      RUNS,
    )
  })

  it('does not depend on the caller keeping returned blocks apart from later chunks', () => {
    // Later frames must not change a block already returned.
    const c = cursor()
    const first = c.frame(b('a\nb'))
    const copy = Buffer.from(first ?? Buffer.alloc(0))
    c.frame(b('c\nd'))
    c.flush()
    expect(first).toEqual(copy)
  })
})

describe('frame: long lines', () => {
  it('splits a line into pieces of maxLineBytes-1 bytes plus newline', () => {
    const c = cursor({ maxLineBytes: 4 })
    expect(c.frame(b('abcdefgh\n'))).toEqual(b('abc\ndef\ngh\n'))
    expect(c.linesSplit).toBe(1)
  })

  it('does not split a line of exactly maxLineBytes bytes including its newline', () => {
    const c = cursor({ maxLineBytes: 4 })
    expect(c.frame(b('abc\nxyz\n'))).toEqual(b('abc\nxyz\n'))
    expect(c.linesSplit).toBe(0)
  })

  it('splits a line one byte too long into a full piece and a one-byte piece', () => {
    const c = cursor({ maxLineBytes: 4 })
    expect(c.frame(b('abcd\n'))).toEqual(b('abc\nd\n'))
    expect(c.linesSplit).toBe(1)
  })

  it('a line of exactly twice the room ends in a full piece, not an empty one', () => {
    const c = cursor({ maxLineBytes: 4 })
    expect(c.frame(b('abcdef\n'))).toEqual(b('abc\ndef\n'))
  })

  it('splits only the overlong lines of a block, keeping the others as they are', () => {
    const c = cursor({ maxLineBytes: 4 })
    expect(c.frame(b('ab\nabcdefg\n\nxyz\nlonger!\n'))).toEqual(
      b('ab\nabc\ndef\ng\n\nxyz\nlon\nger\n!\n'),
    )
    expect(c.linesSplit).toBe(2)
  })

  it('cuts an overlong partial line as soon as it is held and flushes the rest', () => {
    const c = cursor({ maxLineBytes: 4 })
    expect(c.frame(b('abcdefg'))).toEqual(b('abc\ndef\n'))
    expect(c.pendingBytes).toBe(1)
    expect(c.frame(b('hi'))).toBeNull()
    expect(c.pendingBytes).toBe(3)
    expect(c.frame(b('j'))).toEqual(b('ghi\n'))
    expect(c.pendingBytes).toBe(1)
    expect(c.flush()).toEqual(b('j\n'))
    expect(c.linesSplit).toBe(1)
  })

  it('cuts the partial tail of a chunk that also completes lines', () => {
    const c = cursor({ maxLineBytes: 4 })
    expect(c.frame(b('ab\ncdefgh'))).toEqual(b('ab\ncde\n'))
    // "fgh" still fits in one output line with its newline, so it is held, not cut.
    expect(c.pendingBytes).toBe(3)
    expect(c.frame(b('\n'))).toEqual(b('fgh\n'))
    expect(c.linesSplit).toBe(1)
  })

  it('with maxLineBytes 2 every byte of a long line is its own line', () => {
    const c = cursor({ maxLineBytes: 2 })
    expect(c.frame(b('abc'))).toEqual(b('a\nb\n'))
    expect(c.frame(b('\nd\n'))).toEqual(b('c\nd\n'))
    expect(c.linesSplit).toBe(1)
  })

  it('any chunking gives the oracle output; lines fit; removing inserted newlines restores the input', () => {
    fc.assert(
      fc.property(maxLineArb, inputArb(1, 500), cutsArb, (maxLineBytes, input, cuts) => {
        const room = maxLineBytes - 1
        const expected = streamOracle(input, maxLineBytes)
        const expectedAll =
          expected.flushed === null ? expected.out : Buffer.concat([expected.out, expected.flushed])

        for (const chunks of [[input], chunksOf(input, cuts)]) {
          const c = cursor({ maxLineBytes })
          const out = feed(c, chunks)
          expect(out).toEqual(expected.out)
          expect(c.pendingBytes).toBe(expected.pending.length)
          expect(c.linesSplit).toBe(expected.split)
          const flushed = c.flush()
          expect(flushed).toEqual(expected.flushed)
          const all = flushed === null ? out : Buffer.concat([out, flushed])
          expect(all).toEqual(expectedAll)

          for (const line of outputLines(all)) expect(line.length).toBeLessThanOrEqual(maxLineBytes)

          const { restored, insertedAfter } = unsplit(all, input)
          expect(restored).toEqual(input)
          // Newlines are inserted only after a full piece, except the one flush() adds.
          const flushAdded = expected.flushed !== null ? 1 : 0
          const atSplits = insertedAfter.slice(0, insertedAfter.length - flushAdded)
          for (const len of atSplits) expect(len).toBe(room)
        }
      }),
      RUNS,
    )
  })

  it('`inserted` names exactly the added newlines: dropping them from each block gives the bytes consumed', () => {
    fc.assert(
      fc.property(maxLineArb, inputArb(1, 500), cutsArb, (maxLineBytes, input, cuts) => {
        const c = cursor({ maxLineBytes })
        const restored: Buffer[] = []
        const take = (block: Buffer | null) => {
          if (block === null) return
          const positions = [...c.inserted]
          expect(positions).toEqual([...positions].sort((x, y) => x - y))
          for (const at of positions) expect(block[at]).toBe(NEWLINE)
          let from = 0
          for (const at of positions) {
            restored.push(block.subarray(from, at))
            from = at + 1
          }
          restored.push(block.subarray(from))
          // Everything before the held bytes is accounted for, block by block.
          expect(Buffer.concat(restored).length).toBe(c.committedOffset)
        }
        for (const chunk of chunksOf(input, cuts)) take(c.frame(chunk))
        take(c.flush())
        expect(Buffer.concat(restored)).toEqual(input)
      }),
      RUNS,
    )
  })

  it('lines around the split points come out the same for any chunking', () => {
    fc.assert(
      fc.property(
        maxLineArb.chain((m) => fc.tuple(fc.constant(m), boundaryInputArb(m), cutsArb)),
        ([maxLineBytes, input, cuts]) => {
          const expected = streamOracle(input, maxLineBytes)
          const whole = cursor({ maxLineBytes })
          const chunked = cursor({ maxLineBytes })
          const outWhole = feedAndFlush(whole, [input])
          const outChunked = feedAndFlush(chunked, chunksOf(input, cuts))
          const expectedAll =
            expected.flushed === null
              ? expected.out
              : Buffer.concat([expected.out, expected.flushed])
          expect(outWhole).toEqual(expectedAll)
          expect(outChunked).toEqual(expectedAll)
          expect(whole.linesSplit).toBe(expected.split)
          expect(chunked.linesSplit).toBe(expected.split)
          expect(unsplit(outChunked, input).restored).toEqual(input)
        },
      ),
      RUNS,
    )
  })

  it('byte-by-byte feeding gives the same pieces as one chunk', () => {
    fc.assert(
      fc.property(maxLineArb, inputArb(1, 200), (maxLineBytes, input) => {
        const whole = cursor({ maxLineBytes })
        const single = cursor({ maxLineBytes })
        expect(feedAndFlush(single, bytewise(input))).toEqual(feedAndFlush(whole, [input]))
        expect(single.linesSplit).toBe(whole.linesSplit)
      }),
      { numRuns: 150 },
    )
  })

  it('after every chunk, pendingBytes <= maxLineBytes-1 and the output matches the oracle so far', () => {
    fc.assert(
      fc.property(maxLineArb, inputArb(1, 500), cutsArb, (maxLineBytes, input, cuts) => {
        const c = cursor({ maxLineBytes })
        feed(c, chunksOf(input, cuts), (consumed, out) => {
          expect(c.pendingBytes).toBeLessThanOrEqual(maxLineBytes - 1)
          const expected = streamOracle(input.subarray(0, consumed), maxLineBytes)
          expect(out).toEqual(expected.out)
          expect(c.pendingBytes).toBe(expected.pending.length)
          expect(c.linesSplit).toBe(expected.split)
        })
      }),
      RUNS,
    )
  })

  it('holds bounded memory for a huge line without a newline (100 chunks of 64 KiB, 1 MiB max)', () => {
    const maxLineBytes = 1024 * 1024
    const chunkBytes = 64 * 1024
    const c = cursor({ maxLineBytes })
    const outs: Buffer[] = []
    for (let i = 0; i < 100; i++) {
      const block = c.frame(Buffer.alloc(chunkBytes, 0x41 + (i % 26)))
      if (block !== null) outs.push(block)
      expect(c.pendingBytes).toBeLessThanOrEqual(maxLineBytes)
      expect(c.pendingBytes).toBeLessThanOrEqual(maxLineBytes - 1)
      expect(c.offset).toBe((i + 1) * chunkBytes)
      expect(c.committedOffset).toBe(c.offset - c.pendingBytes)
    }
    const total = 100 * chunkBytes
    const room = maxLineBytes - 1
    const fullPieces = Math.floor((total - 1) / room) // cut while more than `room` bytes remain
    const out = Buffer.concat(outs)
    expect(out.length).toBe(fullPieces * maxLineBytes)
    for (const line of outputLines(out)) expect(line.length).toBe(maxLineBytes)
    expect(c.pendingBytes).toBe(total - fullPieces * room)
    expect(c.linesSplit).toBe(1)
    const flushed = c.flush()
    expect(flushed?.length).toBe(total - fullPieces * room + 1)
    expect(c.committedOffset).toBe(total)
  })
})

describe('linesSplit', () => {
  it('counts a long line fed one byte at a time once', () => {
    const c = cursor({ maxLineBytes: 4 })
    for (const chunk of bytewise(b('abcdefghijklmnop\n'))) c.frame(chunk)
    expect(c.linesSplit).toBe(1)
  })

  it('counts each overlong line, and a new overlong line after a flush again', () => {
    const c = cursor({ maxLineBytes: 4 })
    c.frame(b('abcdefg'))
    c.flush()
    c.frame(b('hijklmn'))
    c.frame(b('op\nqrstu\n'))
    expect(c.linesSplit).toBe(3)
  })

  it('does not count lines that fit exactly', () => {
    const c = cursor({ maxLineBytes: 4 })
    for (const chunk of bytewise(b('abc\ndef\ngh'))) c.frame(chunk)
    c.flush()
    expect(c.linesSplit).toBe(0)
  })

  it('counts each overlong line exactly once for any chunking', () => {
    fc.assert(
      fc.property(maxLineArb, inputArb(1, 500), cutsArb, (maxLineBytes, input, cuts) => {
        const expected = streamOracle(input, maxLineBytes).split
        const room = maxLineBytes - 1
        const c = cursor({ maxLineBytes })
        feedAndFlush(c, chunksOf(input, cuts))
        expect(c.linesSplit).toBe(expected)
        // Cross-check the oracle's count the plain way.
        const contents = input.toString('latin1').split('\n')
        expect(contents.filter((line) => line.length > room).length).toBe(expected)
      }),
      RUNS,
    )
  })
})

describe('offset and committedOffset', () => {
  it('offset advances by every byte given; committedOffset stops before the held partial', () => {
    const c = cursor({ offset: 100 })
    c.frame(b('abc\nde'))
    expect(c.offset).toBe(106)
    expect(c.committedOffset).toBe(104)
    c.frame(b('f'))
    expect(c.offset).toBe(107)
    expect(c.committedOffset).toBe(104)
    c.frame(b('\n'))
    expect(c.committedOffset).toBe(108)
    c.frame(b('gh'))
    c.flush()
    expect(c.offset).toBe(110)
    expect(c.committedOffset).toBe(110)
  })

  it('committedOffset covers exactly the input bytes already returned, for any chunking', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 40 }),
        fc.oneof(fc.constant(NO_SPLIT), maxLineArb),
        inputArb(2, 400),
        cutsArb,
        (start, maxLineBytes, input, cuts) => {
          const c = cursor({ offset: start, maxLineBytes })
          let lastCommitted = start
          feed(c, chunksOf(input, cuts), (consumed, out) => {
            expect(c.offset).toBe(start + consumed)
            expect(c.committedOffset).toBe(c.offset - c.pendingBytes)
            expect(c.committedOffset).toBeGreaterThanOrEqual(lastCommitted)
            lastCommitted = c.committedOffset
            // The returned output, without the newlines the cursor inserted, is exactly the
            // input up to committedOffset: nothing past it is missing from the output.
            const committed = input.subarray(0, c.committedOffset - start)
            expect(unsplit(out, committed).restored).toEqual(committed)
          })
          c.flush()
          expect(c.offset).toBe(start + input.length)
          expect(c.committedOffset).toBe(c.offset)
          expect(c.pendingBytes).toBe(0)
        },
      ),
      RUNS,
    )
  })
})

describe('classify', () => {
  it('compares the size with the offset', () => {
    fc.assert(
      fc.property(fc.nat({ max: 2 ** 40 }), fc.nat({ max: 2 ** 40 }), (offset, size) => {
        const c = cursor({ offset })
        const expected = size < offset ? 'truncated' : size === offset ? 'idle' : 'grown'
        expect(c.classify(size)).toBe(expected)
      }),
      RUNS,
    )
  })

  it('examples: smaller is truncated, equal is idle, larger is grown', () => {
    const c = cursor({ offset: 10 })
    expect(c.classify(9)).toBe('truncated')
    expect(c.classify(0)).toBe('truncated')
    expect(c.classify(10)).toBe('idle')
    expect(c.classify(11)).toBe('grown')
  })

  it('a different head means truncated even when the file is now larger or the same size', () => {
    const c = cursor()
    c.frame(b('first line\nsecond line\n'))
    expect(c.offset).toBe(23)
    expect(c.classify(1000, b('FIRST line\n'))).toBe('truncated')
    expect(c.classify(23, b('first lime\n'))).toBe('truncated')
    expect(c.classify(1000, b('first line\nsecond line\n'))).toBe('grown')
    expect(c.classify(23, b('first line\nsecond line\n'))).toBe('idle')
  })

  it('a longer head that begins with ours is not a truncation; a shorter one is (the file holds fewer bytes than it did)', () => {
    const c = cursor()
    c.frame(b('0123456789\n'))
    expect(c.head).toEqual(b('0123456789\n'))
    expect(c.classify(50, b('0123456789\nmore bytes written later'))).toBe('grown')
    // The stat said 11 or 50 bytes, the read of the first bytes found fewer: truncated between.
    expect(c.classify(11, b('0123'))).toBe('truncated')
    expect(c.classify(50, Buffer.alloc(0))).toBe('truncated')
  })

  it('a fingerprint ahead of the offset: a file now shorter than it, or empty, was truncated', () => {
    // Start-up found the file rewritten while we were down: it resumes at 0 with its first
    // bytes then. Emptied by a copytruncate before the first read, it agrees with no content
    // of ours; taken for idle, the look counted as seeing the file whole after the copy.
    const c = cursor({ offset: 0, head: b('g1 a\ng1 b\n') })
    expect(c.classify(0)).toBe('truncated')
    expect(c.classify(0, Buffer.alloc(0))).toBe('truncated')
    expect(c.classify(5, b('g1 a\n'))).toBe('truncated')
    expect(c.classify(10, b('g1 a\ng1 b\n'))).toBe('grown')
    expect(c.classify(12, b('g1 a\ng1 b\ng2'))).toBe('grown')
  })

  it('with no head known, any head matches', () => {
    const c = cursor({ offset: 5 })
    expect(c.headMatches(b('anything'))).toBe(true)
    expect(c.classify(9, b('anything'))).toBe('grown')
  })

  it('head property: prefixes and extensions match, a changed byte in the common part does not', () => {
    fc.assert(
      fc.property(
        inputArb(2, 150).filter((x) => x.length > 0),
        fc.nat(),
        fc.nat(),
        inputArb(2, 80),
        fc.integer({ min: 1, max: 255 }),
        (input, cutA, flipAt, extra, delta) => {
          const c = cursor()
          c.frame(input)
          const known = c.head
          const size = c.offset + 1
          // Any prefix of what the file started with, or that plus more bytes: same file.
          const prefix = input.subarray(0, cutA % (input.length + 1))
          expect(c.headMatches(prefix)).toBe(true)
          // Read shorter than what we know of it (the file shrank after the stat): truncated.
          expect(c.classify(size, prefix)).toBe(
            prefix.length < known.length ? 'truncated' : 'grown',
          )
          const longer = Buffer.concat([input, extra])
          expect(c.classify(size, longer)).toBe('grown')
          // A byte changed inside what both heads cover: another file.
          const changed = Buffer.from(longer)
          const i = flipAt % Math.min(known.length, changed.length)
          changed[i] = ((changed[i] ?? 0) + delta) % 256
          expect(c.headMatches(changed)).toBe(false)
          expect(c.classify(size, changed)).toBe('truncated')
          expect(c.classify(c.offset, changed)).toBe('truncated')
        },
      ),
      RUNS,
    )
  })
})

describe('head learning', () => {
  it('learns up to FINGERPRINT_BYTES when fed from offset 0, for any chunking', () => {
    fc.assert(
      fc.property(inputArb(2, 200), cutsArb, (input, cuts) => {
        const c = cursor()
        feed(c, chunksOf(input, cuts), (consumed) => {
          const n = Math.min(consumed, FINGERPRINT_BYTES)
          expect(c.head).toEqual(input.subarray(0, n))
          expect(c.headIncomplete).toBe(n < FINGERPRINT_BYTES)
        })
      }),
      RUNS,
    )
  })

  it('a short file leaves the head incomplete', () => {
    const c = cursor()
    c.frame(b('hi\n'))
    expect(c.head).toEqual(b('hi\n'))
    expect(c.headIncomplete).toBe(true)
  })

  it('keeps learning when resumed at the end of a short head', () => {
    const input = Buffer.from(Array.from({ length: 100 }, (_, i) => i))
    const c = cursor({ offset: 10, head: input.subarray(0, 10) })
    c.frame(input.subarray(10, 30))
    c.frame(input.subarray(30))
    expect(c.head).toEqual(input.subarray(0, FINGERPRINT_BYTES))
    expect(c.headIncomplete).toBe(false)
  })

  it('learns nothing when started at a non-zero offset until setHead()', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 2 ** 40 }),
        inputArb(2, 200),
        cutsArb,
        (start, input, cuts) => {
          const c = cursor({ offset: start })
          feed(c, chunksOf(input, cuts))
          expect(c.head.length).toBe(0)
          expect(c.headIncomplete).toBe(true)
        },
      ),
      RUNS,
    )
  })

  it('setHead() keeps a longer head (up to FINGERPRINT_BYTES) and ignores a shorter one', () => {
    const c = cursor({ offset: 500 })
    c.frame(b('tail of the file\n'))
    expect(c.head.length).toBe(0)
    c.setHead(b('0123456789'))
    expect(c.head).toEqual(b('0123456789'))
    expect(c.headIncomplete).toBe(true)
    c.setHead(b('01234'))
    expect(c.head).toEqual(b('0123456789'))
    const long = Buffer.alloc(FINGERPRINT_BYTES * 2, 0x7a)
    c.setHead(long)
    expect(c.head).toEqual(long.subarray(0, FINGERPRINT_BYTES))
    expect(c.headIncomplete).toBe(false)
    expect(c.classify(600, long.subarray(0, FINGERPRINT_BYTES))).toBe('grown')
    expect(c.classify(600, b('zzy'))).toBe('truncated')
  })

  it('a head given to setHead() is not changed by later frames at the current offset', () => {
    const c = cursor({ offset: 500 })
    c.setHead(b('abc'))
    c.frame(b('xyz\n'))
    expect(c.head).toEqual(b('abc'))
  })
})

describe('restart', () => {
  it('returns the held partial line with a newline and starts again at offset 0', () => {
    const c = cursor({ offset: 40 })
    c.setHead(b('old head'))
    expect(c.frame(b('abc\nde'))).toEqual(b('abc\n'))
    expect(c.restart()).toEqual(b('de\n'))
    expect(c.offset).toBe(0)
    expect(c.committedOffset).toBe(0)
    expect(c.pendingBytes).toBe(0)
    expect(c.head.length).toBe(0)
    expect(c.headIncomplete).toBe(true)
    // The new content is read from the start, and its head is learned again.
    expect(c.frame(b('new\n'))).toEqual(b('new\n'))
    expect(c.head).toEqual(b('new\n'))
    expect(c.offset).toBe(4)
    expect(c.classify(4)).toBe('idle')
  })

  it('returns null when nothing is held', () => {
    const c = cursor({ offset: 7 })
    c.frame(b('x\n'))
    expect(c.restart()).toBeNull()
    expect(c.offset).toBe(0)
  })

  it('after cutting an overlong partial, returns what is left; the next long line counts again', () => {
    const c = cursor({ maxLineBytes: 4 })
    expect(c.frame(b('abcdefg'))).toEqual(b('abc\ndef\n'))
    expect(c.restart()).toEqual(b('g\n'))
    expect(c.linesSplit).toBe(1)
    expect(c.frame(b('hijk\n'))).toEqual(b('hij\nk\n'))
    expect(c.linesSplit).toBe(2)
  })

  it('output before and after a restart is framed independently', () => {
    fc.assert(
      fc.property(
        maxLineArb,
        inputArb(2, 200),
        inputArb(2, 200),
        cutsArb,
        (maxLineBytes, before, after, cuts) => {
          const c = cursor({ maxLineBytes })
          const first = feed(c, chunksOf(before, cuts))
          const flushed = c.restart()
          const second = feedAndFlush(c, chunksOf(after, cuts))
          const e1 = streamOracle(before, maxLineBytes)
          const e2 = streamOracle(after, maxLineBytes)
          expect(first).toEqual(e1.out)
          expect(flushed).toEqual(e1.flushed)
          expect(second).toEqual(e2.flushed === null ? e2.out : Buffer.concat([e2.out, e2.flushed]))
          expect(c.linesSplit).toBe(e1.split + e2.split)
          expect(c.head).toEqual(after.subarray(0, FINGERPRINT_BYTES))
          expect(c.offset).toBe(after.length)
        },
      ),
      RUNS,
    )
  })
})

describe('readBuffer + frameRead: the in-place read path', () => {
  /** Feeds chunks the way the shells do: read into the cursor's own buffer after the partial. */
  const feedInPlace = (c: Cursor, chunks: readonly Buffer[]): Buffer => {
    const out: Buffer[] = []
    for (const chunk of chunks) {
      const { buf, start } = c.readBuffer(chunk.length + 3) // larger than the read, as in a shell
      chunk.copy(buf, start)
      const block = c.frameRead(buf, start, chunk.length)
      if (block) out.push(Buffer.from(block))
    }
    const rest = c.flush()
    if (rest) out.push(rest)
    return Buffer.concat(out)
  }

  it('gives exactly what frame() gives, for any chunking and any line limit', () => {
    fc.assert(
      fc.property(maxLineArb, inputArb(1, 500), cutsArb, (maxLineBytes, input, cuts) => {
        const chunks = chunksOf(input, cuts).filter((ch) => ch.length > 0)
        const viaFrame = cursor({ maxLineBytes })
        const viaRead = cursor({ maxLineBytes })
        const expected = feedAndFlush(viaFrame, chunks)
        expect(feedInPlace(viaRead, chunks).equals(expected)).toBe(true)
        expect(viaRead.linesSplit).toBe(viaFrame.linesSplit)
        expect(viaRead.offset).toBe(viaFrame.offset)
        expect(viaRead.head.equals(viaFrame.head)).toBe(true)
      }),
      RUNS,
    )
  })

  it('refuses a buffer that does not start with the held partial line', () => {
    const c = cursor()
    c.frame(b('partial'))
    expect(() => c.frameRead(Buffer.alloc(10), 0, 3)).toThrow(/readBuffer/)
  })
})
