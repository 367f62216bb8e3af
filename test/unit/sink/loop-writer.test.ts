/**
 * The event-loop writer's marks: a checkpoint's snapshot must never count a source as further
 * than the bytes in the output. A note (a source starting at an offset) waits behind the blocks
 * queued before it: those may hold its bytes under another key (a copytruncate copy's rest is
 * read through the truncated file's cursor, then the copy is noted at its end).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, expect, test } from 'vitest'
import { silentLogger } from '../../../src/log.js'
import { LoopWriter } from '../../../src/sink/loop-writer.js'

let dir: string
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'logmerge-loop-writer-'))
})
afterEach(() => rmSync(dir, { recursive: true, force: true }))

const open = (path: string) =>
  LoopWriter.open(path, {
    highWaterBytes: 1024 * 1024,
    log: silentLogger,
    onFatal: (err) => {
      throw err
    },
  })

test('a note behind a block being written takes effect only once the block is out', async () => {
  const out = join(dir, 'out.log')
  const writer = await open(out)
  const block = Buffer.from('copy rest 1\ncopy rest 2\n')
  writer.write(block, { key: 'live', offset: 500 }) // the copy's rest, under the live file's key
  writer.note({ key: 'copy', offset: 524 }) // the copy, read to its end
  const during = writer.snapshot()
  expect(during.offsets.has('copy')).toBe(false)
  expect(during.size).toBe(0)
  await writer.drain()
  const after = writer.snapshot()
  expect(after.size).toBe(block.length)
  expect(Object.fromEntries(after.offsets)).toEqual({ live: 500, copy: 524 })
  expect(readFileSync(out, 'utf8')).toBe(block.toString())
  await writer.close()
})

test('a note with nothing queued is recorded at once, and only the first note of a key', async () => {
  const writer = await open(join(dir, 'out.log'))
  writer.note({ key: 'a', offset: 7 })
  expect(writer.snapshot().offsets.get('a')).toBe(7)
  writer.note({ key: 'a', offset: 99 })
  expect(writer.snapshot().offsets.get('a')).toBe(7)
  writer.write(Buffer.from('x\n'), { key: 'b', offset: 2 })
  writer.note({ key: 'a', offset: 99 }) // queued behind the write: still not a second note
  await writer.drain()
  expect(Object.fromEntries(writer.snapshot().offsets)).toEqual({ a: 7, b: 2 })
  await writer.close()
})

test('drainTo resolves once the queue is that short, while the rest is still being written', async () => {
  const out = join(dir, 'out.log')
  const writer = await open(out)
  const area = 256 * 1024
  const blocks = Array.from({ length: 8 }, (_, i) => Buffer.alloc(area, 0x61 + i))
  blocks.forEach((block, i) => {
    writer.write(block, { key: 'a', offset: (i + 1) * area })
  })
  await writer.drainTo(3 * area)
  // Written a batch (512 KiB) at a time: the waiter goes on before the last ones are out.
  expect(writer.queuedBytes).toBeLessThanOrEqual(3 * area)
  expect(writer.queuedBytes).toBeGreaterThan(0)
  const snap = writer.snapshot()
  expect(snap.size).toBe(8 * area - writer.queuedBytes)
  expect(snap.offsets.get('a')).toBe(snap.size)
  await writer.drainTo(0)
  expect(writer.queuedBytes).toBe(0)
  await writer.drainTo(0) // idle: at once
  expect(readFileSync(out).equals(Buffer.concat(blocks))).toBe(true)
  await writer.close()
})

test('a block written once the warning that the output was deleted is out goes to the new file', async () => {
  // The warning says "lines written before this warning went with the deleted file": so every
  // line written after it must be in the new file. The warning used to come before the new
  // file was open (an open through libuv's pool): a block written on the warning went into the
  // deleted file (output-faults.test.ts, top-down under load, 2 runs in 20).
  const out = join(dir, 'out.log')
  let writer: LoopWriter | null = null
  const warned: string[] = []
  const log = {
    ...silentLogger,
    warn: (message: string) => {
      warned.push(message)
      // As a reader whose lines were appended once the warning was seen.
      if (/was deleted while open/.test(message))
        writer?.write(Buffer.from('after the warning\n'), { key: 'a', offset: 18 })
    },
  }
  writer = await LoopWriter.open(out, {
    highWaterBytes: 1024 * 1024,
    log,
    watchMs: 5,
    onFatal: (err) => {
      throw err
    },
  })
  writer.write(Buffer.from('before\n'), { key: 'a', offset: 7 })
  await writer.drain()
  rmSync(out)
  for (let i = 0; i < 400 && !warned.some((m) => /was deleted while open/.test(m)); i++)
    await new Promise((r) => setTimeout(r, 5))
  await writer.drain()
  expect(warned.filter((m) => /was deleted while open/.test(m))).toHaveLength(1)
  expect(readFileSync(out, 'utf8')).toBe('after the warning\n')
  expect(writer.snapshot().size).toBe('after the warning\n'.length)
  await writer.close()
})

test('done is called for a block only once its bytes are in the output, each block once', async () => {
  const out = join(dir, 'out.log')
  const writer = await open(out)
  const blocks = [100, 70_000, 3, 300_000].map((n, i) =>
    Buffer.alloc(n, String.fromCharCode(97 + i)).fill('\n', n - 1),
  )
  const seen: number[] = []
  let expected = 0
  for (const [i, block] of blocks.entries()) {
    expected += block.length
    const upTo = expected
    writer.write(block, { key: 'k', offset: upTo }, () => {
      // The bytes are in the file when the writer lets go of the memory (a reader reuses it).
      expect(readFileSync(out).length).toBeGreaterThanOrEqual(upTo)
      seen.push(i)
    })
  }
  expect(seen).toEqual([]) // queued, not written yet: the memory is still the writer's
  await writer.drain()
  expect(seen).toEqual([0, 1, 2, 3])
  expect(readFileSync(out)).toEqual(Buffer.concat(blocks))
  await writer.close()
})
