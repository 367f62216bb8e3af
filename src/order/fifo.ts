/**
 * A first-in first-out queue with O(1) shift: an array and the index of its first item, the
 * front cleared as it goes (so emitted blocks can be collected) and compacted now and then.
 */
export class Fifo<T> {
  #items: (T | undefined)[] = []
  #first = 0

  get length(): number {
    return this.#items.length - this.#first
  }

  /** The oldest item, or undefined when empty. */
  get front(): T | undefined {
    return this.#items[this.#first]
  }

  /** The newest item, or undefined when empty. */
  get back(): T | undefined {
    return this.length > 0 ? this.#items[this.#items.length - 1] : undefined
  }

  push(item: T): void {
    this.#items.push(item)
  }

  shift(): T | undefined {
    if (this.length === 0) return undefined
    const item = this.#items[this.#first]
    this.#items[this.#first] = undefined
    this.#first++
    if (this.#first === this.#items.length) {
      this.#items = []
      this.#first = 0
    } else if (this.#first >= 64 && this.#first * 2 >= this.#items.length) {
      this.#items.splice(0, this.#first)
      this.#first = 0
    }
    return item
  }

  pop(): T | undefined {
    if (this.length === 0) return undefined
    const item = this.#items.pop()
    if (this.length === 0) {
      this.#items = []
      this.#first = 0
    }
    return item
  }
}
