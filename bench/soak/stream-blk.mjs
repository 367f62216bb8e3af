// @ts-check
/**
 * Reads a stream's messages straight from a nats-server 2.9 store (the `.blk` files of
 * `<store>/jetstream/$G/streams/<STREAM>/msgs`), for a kept soak directory: no server needed.
 * Each record: length (u32, high bit: has headers), sequence (u64, top bits: flags), time
 * (i64 ns), subject length (u16), subject, [header length (u32), headers], payload, hash (8).
 * Not a full reader of the format (no compression, no encryption: what the tests make).
 *
 *   node bench/soak/stream-blk.mjs DIR [--host H] [--from SEQ] [--to SEQ] [--grep TEXT]
 *
 * prints one line per logmerge message: sequence, subject, host run, message number, and its
 * segments (generation, start, end, "x" for an end marker). The fleet soak of 2026-12-07 18:30
 * was read with it (docs/fleet.md).
 */
import { readdirSync, readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'

/**
 * @param {string} dir
 * @returns {Map<number, { subject: string, time: number, payload: Buffer }>}
 */
export function readStore(dir) {
  const out = new Map()
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.blk'))) {
    const b = readFileSync(`${dir}/${f}`)
    let at = 0
    while (at + 22 <= b.length) {
      let rl = b.readUInt32LE(at)
      const hasHeaders = (rl & 0x80000000) !== 0
      rl &= 0x7fffffff
      if (rl < 22 || at + rl > b.length) break
      const raw = b.readBigUInt64LE(at + 4)
      const seq = Number(raw & ~(3n << 62n))
      const time = Number(b.readBigInt64LE(at + 12))
      const slen = b.readUInt16LE(at + 20)
      const subject = b.subarray(at + 22, at + 22 + slen).toString()
      let p = at + 22 + slen
      if (hasHeaders) p += 4 + b.readUInt32LE(p)
      if ((raw & (1n << 63n)) === 0n)
        out.set(seq, { subject, time, payload: b.subarray(p, at + rl - 8) })
      at += rl
    }
  }
  return out
}

/**
 * The BatchMeta of a logmerge message (src/fleet/frame.ts), or null.
 * @param {Buffer} payload
 * @returns {{ h: string, r: string, c: number, s: { g: string, s: number, e: number, x?: 1 }[] } | null}
 */
export function metaOf(payload) {
  if (payload.length < 8 || payload.subarray(0, 4).toString() !== 'LMF1') return null
  const n = payload.readUInt32BE(4)
  return JSON.parse(payload.subarray(8, 8 + n).toString())
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      host: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      grep: { type: 'string' },
    },
  })
  const store = readStore(positionals[0] ?? '.')
  const seqs = [...store.keys()].sort((a, b) => a - b)
  for (const seq of seqs) {
    if (values.from && seq < Number(values.from)) continue
    if (values.to && seq > Number(values.to)) continue
    const m = store.get(seq)
    if (!m) continue
    const meta = metaOf(m.payload)
    if (!meta || (values.host && meta.h !== values.host)) continue
    if (values.grep && !m.payload.includes(values.grep)) continue
    const segs = meta.s.map((s) => `${s.g}:${s.s}-${s.e}${s.x ? 'x' : ''}`).join(' ')
    console.log(`${seq} ${m.subject} ${meta.r} ${meta.c} ${segs}`)
  }
}
