import { describe, expect, test } from 'vitest'
import { decodeBatch } from '../../../src/fleet/frame.js'
import type { Generation } from '../../../src/fleet/generations.js'
import { type Acked, MAX_LINE_BYTES, Packer } from '../../../src/fleet/packer.js'

const gen: Generation = {
  id: 'r.0',
  key: '1:1',
  head: Buffer.from('line'),
  origin: 0,
  path: '/a.log',
  label: 'a.log',
}
const acked = (offset: number): Acked => ({ offset, head: undefined, stats: undefined, gen: 'r.0' })

describe('packer', () => {
  test('lines gather in the open message until it is sealed; peek(false) takes only full ones', () => {
    const p = new Packer('web-1', 'r')
    let at = 0
    for (let i = 0; i < 10; i++) {
      const block = Buffer.from(`line ${i}\n`)
      p.append(gen, block, [], at, '1:1', acked(at + block.length), 0)
      at += block.length
    }
    expect(p.peek(false)).toBeUndefined() // not full: waits while messages are in flight
    const m = p.peek()
    expect(m).toBeDefined()
    const { meta, data } = decodeBatch((m as NonNullable<typeof m>).payload)
    expect(data.toString()).toBe(Array.from({ length: 10 }, (_, i) => `line ${i}\n`).join(''))
    expect(meta.s).toHaveLength(10)
    expect(meta.s.at(-1)).toMatchObject({ g: 'r.0', e: at })
  })

  test('a message that fills up is sealed and taken without waiting', () => {
    const p = new Packer('web-1', 'r')
    const line = `${'x'.repeat(999)}\n`
    const block = Buffer.from(line.repeat(Math.ceil((MAX_LINE_BYTES * 1.5) / 1000)))
    p.append(gen, block, [], 0, '1:1', acked(block.length), 0)
    const first = p.peek(false)
    expect(first).toBeDefined()
    p.shift()
    expect(p.peek(false)).toBeUndefined() // the rest is not a full message yet
    expect(p.busy()).toBe(true)
  })
})
