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
  test('blocks queued in a turn go out as one message, each a segment with its file range', () => {
    const p = new Packer('web-1', 'r')
    let at = 0
    for (let i = 0; i < 10; i++) {
      const block = Buffer.from(`line ${i}\n`)
      p.append(gen, block, [], at, '1:1', acked(at + block.length), 0)
      at += block.length
    }
    const m = p.peek()
    const { meta, data } = decodeBatch((m as NonNullable<typeof m>).payload)
    expect(data.toString()).toBe(Array.from({ length: 10 }, (_, i) => `line ${i}\n`).join(''))
    expect(meta.s).toHaveLength(10)
    expect(meta.s.at(-1)).toMatchObject({ g: 'r.0', e: at })
    expect(m?.effects.at(-1)).toMatchObject({ kind: 'mark', acked: { offset: at } })
  })

  test('more than a message holds is cut at a line end; the pieces carry the offsets they end at', () => {
    const p = new Packer('web-1', 'r')
    const line = `${'x'.repeat(999)}\n`
    const block = Buffer.from(line.repeat(Math.ceil((MAX_LINE_BYTES * 1.5) / 1000)))
    p.append(gen, block, [], 0, '1:1', acked(block.length), 0)
    const first = p.peek() as NonNullable<ReturnType<Packer['peek']>>
    p.shift()
    const second = p.peek() as NonNullable<ReturnType<Packer['peek']>>
    const a = decodeBatch(first.payload)
    const b = decodeBatch(second.payload)
    expect(a.data.length % 1000).toBe(0)
    expect(a.data.length + b.data.length).toBe(block.length)
    expect(b.meta.s[0]).toMatchObject({ s: a.data.length, e: block.length })
    expect(first.effects[0]).toMatchObject({ acked: { offset: a.data.length } })
  })
})
