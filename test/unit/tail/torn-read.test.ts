/**
 * A copytruncate between the look that decides to read a file and the read itself (issue 16,
 * the in-place copy test under load): the read at our offset then returns the next
 * generation's bytes. The shells read in chunks and hand each block to the sink before the
 * next read, and the event-loop shell waits for the pool and for the sink in between, so on a
 * loaded machine the writer copies, truncates and writes past our offset meanwhile. Taken as
 * ours, those bytes ended our partial line and came out as lines, and the lines of ours
 * between our offset and the truncation were lost (334 lines and a torn line in one run of
 * async). Each chunk is now taken only when the file still begins as ours after it was read
 * (Cursor.readStillOurs); otherwise the next look sees the truncation and reads the copy first.
 *
 * The interleaving is forced: the sink copies and truncates the file when it gets the first
 * block, and writes the next generation past where the next read starts.
 */
import {
  appendFileSync,
  copyFileSync,
  mkdtempSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { Cursor } from '../../../src/tail/cursor.js'
import { Recorder, SHELLS, type Shell, type ShellOptions } from './shells.js'

let dir: string
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'logmerge-torn-read-'))
})
afterEach(() => rmSync(dir, { recursive: true, force: true }))

/** `n` lines `<gen>-<i>-...` of 40 bytes each (with the newline). */
const generation = (gen: string, n: number): string[] =>
  Array.from({ length: n }, (_, i) => `${gen}-${i}-`.padEnd(39, 'x'))

describe.each(Object.keys(SHELLS))('%s shell', (kind) => {
  // Small chunks: the first block reaches the sink while most of the file is still unread.
  const make = (sink: Recorder): Shell =>
    (SHELLS[kind] as (sink: Recorder, opts: ShellOptions) => Shell)(sink, { readChunkBytes: 1024 })

  test('copied in place and truncated while a read was under way, and written past our offset: the copy holds the rest of ours, the next generation comes after, every line once', async () => {
    const log = join(dir, 'a.log')
    const first = generation('g1', 200) // 8,000 bytes: eight chunks
    const second = generation('g2', 100) // 4,000 bytes: past the first chunk's end
    writeFileSync(`${log}.1`, 'an older copy, written over in place\n')
    writeFileSync(log, `${first.join('\n')}\n`)
    const sink = new Recorder(() => {
      // The writer's copytruncate (fs.copyFileSync over the old copy), and its next lines.
      copyFileSync(log, `${log}.1`)
      truncateSync(log, 0)
      appendFileSync(log, `${second.join('\n')}\n`)
    })
    const shell = make(sink)
    await shell.findRotated([log])
    await shell.start([log])
    await shell.changed(log)
    expect(sink.lines).toEqual([...first, ...second])
    await shell.close()
  })
})

describe('Cursor.readStillOurs', () => {
  const cursor = (head: string) =>
    new Cursor({
      identity: { dev: 1, ino: 2 },
      head: Buffer.from(head),
      offset: 100,
      maxLineBytes: 1024,
    })

  test('the same first bytes, or more of them: ours', () => {
    expect(cursor('g1-0-abc').readStillOurs(Buffer.from('g1-0-abc'))).toBe(true)
    expect(cursor('g1-0-abc').readStillOurs(Buffer.from('g1-0-abc\ng1-1'))).toBe(true)
  })

  test('other first bytes: truncated and written again', () => {
    expect(cursor('g1-0-abc').readStillOurs(Buffer.from('g2-0-abc'))).toBe(false)
  })

  test('fewer bytes than the fingerprint, even agreeing ones: truncated (it held them)', () => {
    expect(cursor('g1-0-abc').readStillOurs(Buffer.from('g1-'))).toBe(false)
    expect(cursor('g1-0-abc').readStillOurs(Buffer.alloc(0))).toBe(false)
  })

  test('no fingerprint: nothing to tell by', () => {
    expect(cursor('').readStillOurs(Buffer.from('anything'))).toBe(true)
  })
})
