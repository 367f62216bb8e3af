/**
 * When the event-loop shell reads each file (read-schedule.ts): never two reads of one file at
 * once, calls during a read folded into one more pass, change events of a busy file folded
 * into one read the pacer times, a read inside another read not waiting for the limit.
 */
import pLimit from 'p-limit'
import { describe, expect, it, vi } from 'vitest'
import { ReadSchedule } from '../../../src/tail/read-schedule.js'

interface F {
  readonly name: string
}

/** A schedule whose reads are held open until `finish` is called for them. */
function harness(limit = 4, foldMs = 5) {
  const started: string[] = []
  const named: string[] = []
  let ended = 0
  let inFlight = 0
  let maxInFlight = 0
  const pending: (() => void)[] = []
  const schedule: ReadSchedule<F> = new ReadSchedule<F>({
    foldMs,
    limit: pLimit(limit),
    read: (file) => {
      started.push(file.name)
      inFlight++
      maxInFlight = Math.max(maxInFlight, inFlight)
      return new Promise<void>((resolve) =>
        pending.push(() => {
          inFlight--
          resolve()
        }),
      )
    },
    readNamed: (file) => {
      named.push(file.name)
      return schedule.pump(file)
    },
    ended: () => {
      ended++
    },
  })
  const finishAll = async () => {
    while (pending.length > 0) {
      for (const done of pending.splice(0)) done()
      await new Promise((r) => setTimeout(r, 1))
    }
  }
  return {
    schedule,
    started,
    named,
    pending,
    finishAll,
    get ended() {
      return ended
    },
    get maxInFlight() {
      return maxInFlight
    },
  }
}

const tick = () => new Promise((r) => setTimeout(r, 1))

describe('ReadSchedule', () => {
  it('folds pumps asked for during a read into one more pass, never two reads at once', async () => {
    const h = harness()
    const a = { name: 'a' }
    const first = h.schedule.pump(a)
    await tick()
    expect(h.started).toEqual(['a'])
    expect(h.schedule.reading(a)).toBe(true)
    // Three more calls while the read runs: one more pass, after it.
    void h.schedule.pump(a)
    void h.schedule.pump(a)
    const same = h.schedule.pump(a)
    expect(same).toBe(first)
    await tick()
    expect(h.started).toEqual(['a'])
    await h.finishAll()
    await first
    expect(h.started).toEqual(['a', 'a'])
    expect(h.maxInFlight).toBe(1)
    expect(h.schedule.reading(a)).toBe(false)
    expect(h.ended).toBe(1)
  })

  it('reads different files side by side within the limit', async () => {
    const h = harness(2)
    const files = ['a', 'b', 'c'].map((name) => ({ name }))
    const all = Promise.all(files.map((f) => h.schedule.pump(f)))
    await tick()
    expect(h.started).toEqual(['a', 'b']) // the third waits for a slot of the limit
    expect(h.schedule.reads).toBe(3)
    await h.finishAll()
    await all
    expect(h.started).toEqual(['a', 'b', 'c'])
    expect(h.schedule.reads).toBe(0)
  })

  it('reads a file inside another read without a slot of the limit (a limit of one)', async () => {
    const h = harness(1)
    const outer = { name: 'outer' }
    const inner = { name: 'inner' }
    const outerRead = h.schedule.pump(outer)
    await tick()
    const innerRead = h.schedule.readInside(inner)
    await tick()
    expect(h.started).toEqual(['outer', 'inner']) // not queued behind the held slot
    await h.finishAll()
    await Promise.all([outerRead, innerRead])
  })

  it('leaves a file alone inside another read while its own read runs', async () => {
    const h = harness(2)
    const a = { name: 'a' }
    const own = h.schedule.pump(a)
    await tick()
    await h.schedule.readInside(a) // returns at once: that read is under way
    expect(h.started).toEqual(['a'])
    await h.finishAll()
    await own
  })

  it('reads the first change at once, folds the next ones into one timed read', async () => {
    // A fold time long enough that no stall of a loaded machine lets a change through at once.
    const h = harness(4, 300)
    const a = { name: 'a' }
    const first = h.schedule.changed(a)
    await tick()
    expect(h.named).toEqual(['a'])
    await h.finishAll()
    await first
    // Changes within the fold time: none read at once, one read when it is due.
    for (let i = 0; i < 5; i++) await h.schedule.changed(a)
    expect(h.named).toEqual(['a'])
    await vi.waitFor(() => expect(h.named).toEqual(['a', 'a']), { timeout: 5000, interval: 20 })
    await h.finishAll()
    h.schedule.close()
  })

  it('turns a change event during a read into a paced read after it', async () => {
    const h = harness(4, 20)
    const a = { name: 'a' }
    const read = h.schedule.pump(a)
    await tick()
    const during = h.schedule.changed(a)
    expect(during).toBe(read) // the read under way answers for it
    expect(h.named).toEqual([])
    await h.finishAll()
    await read
    // Read again once, by the pacer (through readNamed: the files that lost the name first).
    await vi.waitFor(() => expect(h.named).toEqual(['a']), { timeout: 5000, interval: 10 })
    await h.finishAll()
    expect(h.started).toEqual(['a', 'a'])
    h.schedule.close()
  })

  it('asks the read under way for one more pass (again), and nothing when none runs', async () => {
    const h = harness()
    const a = { name: 'a' }
    h.schedule.again(a) // nothing under way: nothing to ask
    const read = h.schedule.pump(a)
    await tick()
    h.schedule.again(a)
    await h.finishAll()
    await read
    expect(h.started).toEqual(['a', 'a'])
  })

  it('reads nothing more once closed', async () => {
    const h = harness(4, 300)
    const a = { name: 'a' }
    const first = h.schedule.changed(a)
    await tick()
    await h.finishAll()
    await first
    await h.schedule.changed(a) // folded: due in 300 ms
    h.schedule.close()
    await new Promise((r) => setTimeout(r, 400))
    expect(h.named).toEqual(['a'])
  })
})
