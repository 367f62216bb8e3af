import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, test } from 'vitest'
import { CentreCheckpoints, type CentreParts } from '../../../src/fleet/centre-checkpoint.js'
import { decodeCentreState } from '../../../src/fleet/centre-state.js'

const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

/**
 * CentreCheckpoints over a fake writer that counts its fsyncs and fails one made after close,
 * as a closed descriptor does. `hold` keeps the next fsync waiting until it is released.
 */
function centre() {
  const dir = mkdtempSync(join(tmpdir(), 'lm-centre-cp-'))
  dirs.push(dir)
  const statePath = join(dir, 'state.json')
  const out = { changes: 0, size: 0, closed: false, fsyncs: 0, afterClose: 0 }
  let release: (() => void) | null = null
  const hold = () => new Promise<void>((resolve) => (release = resolve))
  let held: Promise<void> | null = null
  const writer = {
    get changes() {
      return out.changes
    },
    snapshot: () => ({
      size: out.size,
      output: { dev: 1, ino: 2 },
      offsets: new Map<string, number>(),
      stats: new Map(),
    }),
    fsync: async () => {
      out.fsyncs++
      if (out.closed) {
        out.afterClose++
        throw new Error('EBADF: bad file descriptor, fsync')
      }
      if (held) await held
    },
    forget: () => {},
  }
  const warnings: string[] = []
  const parts = {
    config: { statePath, output: join(dir, 'out.log') },
    fleet: { url: { display: 'nats://127.0.0.1:4222/LOGS', stream: 'LOGS' } },
    jsm: { streams: { deleteMessage: async () => true } },
    log: {
      warnOnce: (_key: string, m: string) => warnings.push(m),
      forget: () => {},
      debug: () => {},
    },
    writer,
    applier: { hosts: new Map(), gens: new Map() },
    created: '2026-12-07T00:00:00Z',
    startedAt: new Date(),
    adoptUntil: 0,
    firstSeq: 1,
  } as unknown as CentreParts
  const cp = new CentreCheckpoints(parts, 0)
  const saved = () => decodeCentreState(readFileSync(statePath, 'utf8'))
  return {
    cp,
    out,
    warnings,
    saved,
    holdNext: () => {
      held = hold()
    },
    release: () => {
      held = null
      release?.()
    },
  }
}

describe('centre checkpoints at close', () => {
  test('a checkpoint asked for after stop() does not touch the closed output', async () => {
    const c = centre()
    c.out.size = 10
    c.cp.changed()
    await c.cp.save()
    expect(c.saved().output?.size).toBe(10)
    await c.cp.stop()
    c.out.closed = true
    // What the interval timer or a leader switch would still ask for.
    c.out.size = 20
    c.cp.changed()
    await c.cp.save()
    expect(c.out.afterClose).toBe(0)
    expect(c.warnings).toEqual([])
    expect(c.saved().output?.size).toBe(10)
  })

  test('stop() waits for the checkpoint under way, which is saved whole', async () => {
    const c = centre()
    c.out.size = 5
    c.cp.changed()
    c.holdNext()
    const running = c.cp.save()
    while (c.out.fsyncs === 0) await new Promise((r) => setImmediate(r))
    const queued = c.cp.save() // behind it; must not start once stopped
    c.out.size = 6
    c.cp.changed()
    let stopped = false
    const stopping = c.cp.stop().then(() => {
      stopped = true
    })
    await new Promise((r) => setTimeout(r, 20))
    expect(stopped).toBe(false)
    c.release()
    await Promise.all([running, queued, stopping])
    expect(c.saved().output?.size).toBe(5)
    expect(c.out.fsyncs).toBe(1)
  })
})
