/**
 * The input descriptors within a reader's budget (input-slots.ts): parking the idlest files
 * when the budget is used up, an open waiting until a file can be parked or a slot is free,
 * and the blocking shell's slots, which never wait.
 */
import { mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { parkBatch } from '../../../src/tail/fd-budget.js'
import { InputSlots, SyncInputSlots } from '../../../src/tail/input-slots.js'

const dir = mkdtempSync(join(tmpdir(), 'logmerge-slots-'))
const files = ['a', 'b', 'c', 'd'].map((n) => {
  const path = join(dir, `${n}.log`)
  writeFileSync(path, `${n}\n`)
  return path
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('parkBatch', () => {
  it('parks an eighth of what is held (at most the budget), at least one', () => {
    expect(parkBatch(2, 2)).toBe(1)
    expect(parkBatch(64, 64)).toBe(8)
    expect(parkBatch(64, 200)).toBe(8) // over the budget (kept files): still an eighth of it
    expect(parkBatch(1000, 9)).toBe(2)
  })
})

describe('InputSlots', () => {
  it('parks idle files to open past the budget', async () => {
    const open: number[] = []
    const asked: number[] = []
    const slots: InputSlots = new InputSlots(2, (count) => {
      asked.push(count)
      const parked = open.splice(0, count)
      for (const fd of parked) slots.close(fd)
      return parked.length
    })
    for (const path of files.slice(0, 3)) open.push(await slots.open(path))
    expect(asked).toEqual([1]) // the third open parked one of the two
    expect(open.length).toBe(2)
    for (const fd of open.splice(0)) slots.close(fd)
  })

  it('waits for a slot when nothing can be parked, and opens once one is freed', async () => {
    const slots = new InputSlots(1, () => 0)
    const first = await slots.open(files[0] as string)
    let second: number | null = null
    const opening = slots.open(files[1] as string).then((fd) => {
      second = fd
    })
    await new Promise((r) => setTimeout(r, 20))
    expect(second).toBeNull() // waiting: the budget is used up and nothing is parkable
    slots.close(first) // a slot is free: the waiting open looks again at once
    await opening
    expect(second).not.toBeNull()
    slots.close(second as unknown as number)
  })

  it("counts a descriptor opened elsewhere (adopt, prescan's) against the budget", async () => {
    const asked: number[] = []
    const slots = new InputSlots(1, (count) => {
      asked.push(count)
      return 0
    })
    const kept = openSync(files[0] as string, 'r')
    slots.adopt()
    let opened: number | null = null
    const opening = slots.open(files[1] as string).then((fd) => {
      opened = fd
    })
    await new Promise((r) => setTimeout(r, 20))
    expect(asked.length).toBeGreaterThan(0) // the budget was used up: it tried to park
    expect(opened).toBeNull()
    slots.close(kept) // the adopted descriptor closed through the slots frees its slot
    await opening
    expect(opened).not.toBeNull()
    slots.close(opened as unknown as number)
  })
})

describe('SyncInputSlots', () => {
  it('parks idle files when the budget is used up, and never waits', () => {
    const open: number[] = []
    const asked: number[] = []
    const slots: SyncInputSlots = new SyncInputSlots(2, (count) => {
      asked.push(count)
      const parked = open.splice(0, count)
      for (const fd of parked) slots.close(fd)
      return parked.length
    })
    for (const path of files) open.push(slots.open(path))
    expect(asked).toEqual([1, 1])
    expect(open.length).toBe(2)
    for (const fd of open.splice(0)) slots.close(fd)
  })

  it('opens over the budget when nothing can be parked', () => {
    const slots = new SyncInputSlots(1, () => 0)
    const a = slots.open(files[0] as string)
    const b = slots.open(files[1] as string)
    expect(b).not.toBe(a)
    slots.close(a)
    slots.close(b)
  })
})
