/**
 * The event-loop reader's pool of big read buffers: a buffer is handed out again only after it
 * was given back, never while a block in it may still be queued; the pool stays small and lets
 * its buffers go once catch-up is over.
 */
import { expect, test } from 'vitest'
import { ReadBuffers } from '../../../src/tail/read-buffers.js'

test('a buffer comes back from take only after give, and never to two takers at once', () => {
  const pool = new ReadBuffers(1024)
  const a = pool.take(1000, 0) as Buffer
  const b = pool.take(1000, 0) as Buffer
  expect(a.buffer).not.toBe(b.buffer)
  pool.give(a, 1)
  const c = pool.take(10, 2) as Buffer
  expect(c.buffer).toBe(a.buffer)
  const d = pool.take(10, 3) as Buffer
  expect([a.buffer, b.buffer]).not.toContain(d.buffer)
})

test('a request bigger than the buffers is refused (the reader allocates as before)', () => {
  const pool = new ReadBuffers(1024)
  expect(pool.take(1025, 0)).toBeNull()
  expect(pool.take(1024, 0)?.length).toBe(1024)
})

test('each buffer has its own memory (a view of a shared slab would be written by the next read)', () => {
  const pool = new ReadBuffers(64)
  const a = pool.take(64, 0) as Buffer
  expect(a.byteOffset).toBe(0)
  expect(a.buffer.byteLength).toBe(64)
})

test('keeps at most 8 between reads, and none once nothing was taken for 10 s', () => {
  const pool = new ReadBuffers(16)
  const out = Array.from({ length: 12 }, () => pool.take(16, 0) as Buffer)
  for (const buf of out) pool.give(buf, 1)
  expect(pool.kept).toBe(8)
  pool.trim(9_999)
  expect(pool.kept).toBe(8)
  pool.trim(10_000)
  expect(pool.kept).toBe(0)
  pool.give(out[0] as Buffer, 10_001) // a late give after the pool went idle is not kept
  expect(pool.kept).toBe(0)
})
