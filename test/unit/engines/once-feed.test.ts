import { closeSync, mkdtempSync, openSync, rmSync, truncateSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { readBlockAgain } from '../../../src/engines/once-feed.js'

describe('readBlockAgain (the main thread reads a block the reader thread found)', () => {
  let dir: string
  let path: string
  let fd: number
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'logmerge-once-feed-'))
    path = join(dir, 'a.log')
    writeFileSync(path, 'one\ntwo\nthree\n')
    fd = openSync(path, 'r')
  })
  afterEach(() => {
    closeSync(fd)
    rmSync(dir, { recursive: true, force: true })
  })

  it('gives the bytes of the block, in the slot', () => {
    const slot = Buffer.alloc(16)
    const block = readBlockAgain(fd, slot, 4, 10)
    expect(Buffer.isBuffer(block) && block.toString()).toBe('two\nthree\n')
    expect(Buffer.isBuffer(block) && block.buffer).toBe(slot.buffer)
  })

  it('says so when the file was truncated or rewritten meanwhile', () => {
    truncateSync(path, 9)
    expect(readBlockAgain(fd, Buffer.alloc(16), 4, 10)).toMatch(/changed while it was read/)
    writeFileSync(path, 'one\ntwo\nthree!!!!')
    expect(readBlockAgain(fd, Buffer.alloc(16), 4, 10)).toMatch(/changed while it was read/)
  })

  it('refuses a block larger than its slot', () => {
    expect(readBlockAgain(fd, Buffer.alloc(4), 4, 10)).toMatch(/does not fit its slot/)
  })
})
