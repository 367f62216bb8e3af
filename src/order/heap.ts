/**
 * A binary min-heap whose items know their own position, so an item whose key changed can be
 * moved (or removed) in O(log n) without a search. The merge keeps its sources in three of
 * these at once (by next record, by oldest arrival, by watermark), so the position lives in a
 * slot the heap is given rather than in one fixed field.
 */

/** Where an item keeps its position in one heap (-1 when not in it). */
export interface HeapSlot<T> {
  get(item: T): number
  set(item: T, position: number): void
}

export class IndexedHeap<T> {
  readonly #items: T[] = []
  readonly #before: (a: T, b: T) => boolean
  readonly #slot: HeapSlot<T>

  /** `before(a, b)`: a must come out before b (a strict order: false for equal keys). */
  constructor(before: (a: T, b: T) => boolean, slot: HeapSlot<T>) {
    this.#before = before
    this.#slot = slot
  }

  get size(): number {
    return this.#items.length
  }

  peek(): T | undefined {
    return this.#items[0]
  }

  has(item: T): boolean {
    return this.#slot.get(item) >= 0
  }

  push(item: T): void {
    const i = this.#items.length
    this.#items.push(item)
    this.#slot.set(item, i)
    this.#up(i)
  }

  pop(): T | undefined {
    const top = this.#items[0]
    if (top !== undefined) this.remove(top)
    return top
  }

  remove(item: T): void {
    const i = this.#slot.get(item)
    if (i < 0) return
    const last = this.#items.pop() as T
    this.#slot.set(item, -1)
    if (i === this.#items.length) return
    this.#items[i] = last
    this.#slot.set(last, i)
    this.#down(i)
    this.#up(this.#slot.get(last))
  }

  /** The item's key changed: restore the heap order around it. */
  update(item: T): void {
    const i = this.#slot.get(item)
    if (i < 0) return
    this.#down(i)
    this.#up(this.#slot.get(item))
  }

  /** The item that would be on top if the top were taken out (without taking it). */
  secondBest(): T | undefined {
    const items = this.#items
    const left = items[1]
    const right = items[2]
    if (right === undefined || left === undefined) return left
    return this.#before(right, left) ? right : left
  }

  /** The top item's key grew (it may now belong further down). */
  topChanged(): void {
    if (this.#items.length > 1) this.#down(0)
  }

  #up(start: number): void {
    const items = this.#items
    const item = items[start] as T
    let i = start
    while (i > 0) {
      const parentIndex = (i - 1) >> 1
      const parent = items[parentIndex] as T
      if (!this.#before(item, parent)) break
      items[i] = parent
      this.#slot.set(parent, i)
      i = parentIndex
    }
    items[i] = item
    this.#slot.set(item, i)
  }

  #down(start: number): void {
    const items = this.#items
    const n = items.length
    const item = items[start] as T
    let i = start
    for (;;) {
      const left = 2 * i + 1
      if (left >= n) break
      const right = left + 1
      let child = left
      if (right < n && this.#before(items[right] as T, items[left] as T)) child = right
      const childItem = items[child] as T
      if (!this.#before(childItem, item)) break
      items[i] = childItem
      this.#slot.set(childItem, i)
      i = child
    }
    items[i] = item
    this.#slot.set(item, i)
  }
}
