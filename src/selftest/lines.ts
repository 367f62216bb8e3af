/**
 * The selftest's lines: `selftest w<writer> <seq> g<generation> <pad>`. The writer numbers its
 * lines 0, 1, 2, ...; the generation says which physical file content the line was written into
 * (see docs/selftest.md); the pad's length and letters are derived from the other three fields,
 * so a torn line, two lines run together or a line from another run does not pass as one.
 */

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789'

export interface SelftestLine {
  readonly writer: number
  readonly seq: number
  readonly generation: number
}

/** The line (without its newline) writer `writer` writes as number `seq` into `generation`. */
export function lineFor(writer: number, seq: number, generation: number): string {
  return `selftest w${writer} ${seq} g${generation} ${padFor(writer, seq, generation)}`
}

const LINE = /^selftest w(\d{1,6}) (\d{1,12}) g(\d{1,9}) ([0-9a-z]+)$/

/** The fields of a well-formed selftest line, or null for anything else. */
export function parseLine(text: string): SelftestLine | null {
  const m = LINE.exec(text)
  if (m === null) return null
  const line = { writer: Number(m[1]), seq: Number(m[2]), generation: Number(m[3]) }
  return m[4] === padFor(line.writer, line.seq, line.generation) ? line : null
}

/** 8 to 79 letters from FNV-1a of the fields, stretched with xorshift: lines differ in length. */
function padFor(writer: number, seq: number, generation: number): string {
  let h = 0x811c9dc5
  for (const ch of `${writer}/${seq}/${generation}`) {
    h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0
  }
  const length = 8 + (h % 72)
  let pad = ''
  for (let i = 0; i < length; i++) {
    h ^= h << 13
    h ^= h >>> 17
    h ^= h << 5
    h >>>= 0
    pad += ALPHABET[h % ALPHABET.length]
  }
  return pad
}
