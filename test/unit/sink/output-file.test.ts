/**
 * The output's pure decisions (deleted, moved, replaced, truncated) and the two file operations
 * a switch in the middle of a failed write relies on, on real files; and the main thread's
 * bounded wait for the writers' lock.
 */
import {
  closeSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  unlinkSync,
  writeSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { Mutex } from '../../../src/sink/mutex.js'
import { bytesToKeep, cutUnfinishedLine } from '../../../src/sink/output-file.js'
import { type FileFacts, outputChange } from '../../../src/sink/output-watch.js'

const file = (over: Partial<FileFacts> = {}): FileFacts => ({
  dev: 1,
  ino: 10,
  size: 100,
  nlink: 1,
  isFile: true,
  ...over,
})

describe('outputChange', () => {
  it('the same file at the path, at least as long as written: nothing to do', () => {
    expect(outputChange(file(), file(), 100)).toBeNull()
    expect(outputChange(file({ size: 150 }), file({ size: 150 }), 100)).toBeNull()
  })

  it('nothing at the path: deleted when the open file has no link left, else moved', () => {
    expect(outputChange(file({ nlink: 0 }), null, 100)).toEqual({ kind: 'deleted' })
    expect(outputChange(file({ nlink: 1 }), null, 100)).toEqual({ kind: 'moved' })
  })

  it('another file at the path (another inode, or the same inode number on another device)', () => {
    expect(outputChange(file(), file({ ino: 11 }), 100)).toEqual({ kind: 'replaced' })
    expect(outputChange(file(), file({ dev: 2 }), 100)).toEqual({ kind: 'replaced' })
  })

  it('shorter than what we wrote: truncated, with both sizes', () => {
    const held = file({ size: 40 })
    expect(outputChange(held, held, 100)).toEqual({ kind: 'truncated', from: 100, to: 40 })
  })

  it('a pipe or a device is never reopened', () => {
    expect(outputChange(file({ isFile: false, nlink: 0 }), null, 100)).toBeNull()
  })
})

describe('leaving a file in the middle of a block', () => {
  let dir = ''
  afterEach(() => rmSync(dir, { recursive: true, force: true }))

  /** A file with `counted` bytes, then `partial` bytes of a block cut short. */
  const setUp = (counted: string, partial: string) => {
    dir = mkdtempSync(join(tmpdir(), 'logmerge-output-file-'))
    const path = join(dir, 'out.log')
    const fd = openSync(path, 'a')
    writeSync(fd, counted + partial)
    return { path, fd }
  }

  it('a file still linked keeps none of the block; cut back to the counted size', () => {
    const { path, fd } = setUp('a-1\n', 'b-1\nb-2\nb-')
    const written = Buffer.from('b-1\nb-2\nb-')
    const keep = bytesToKeep(fd, written)
    expect(keep).toBe(0)
    cutUnfinishedLine(fd, 4, written.length - keep)
    closeSync(fd)
    expect(readFileSync(path, 'latin1')).toBe('a-1\n')
  })

  it('a deleted file keeps its whole lines (a copy taken before the unlink has them)', () => {
    const { path, fd } = setUp('a-1\n', 'b-1\nb-2\nb-')
    unlinkSync(path)
    expect(bytesToKeep(fd, Buffer.from('b-1\nb-2\nb-'))).toBe('b-1\nb-2\n'.length)
    expect(bytesToKeep(fd, Buffer.from('b-'))).toBe(0)
    closeSync(fd)
  })

  it('cuts only a file exactly as it was left (someone else wrote after: left alone)', () => {
    const { path, fd } = setUp('a-1\n', 'b-')
    writeSync(fd, 'other\n')
    cutUnfinishedLine(fd, 4, 2)
    closeSync(fd)
    expect(readFileSync(path, 'latin1')).toBe('a-1\nb-other\n')
  })
})

describe('Mutex.lockFor', () => {
  it('takes a free lock; gives up on a held one once the time is out; the lock still works', () => {
    const m = Mutex.create()
    expect(m.lockFor(10)).toBe(true)
    expect(m.lockFor(20)).toBe(false) // held (by this very thread): no deadlock, just false
    m.unlock()
    expect(m.tryLock()).toBe(true)
    m.unlock()
    expect(m.lockFor(0)).toBe(true)
    m.unlock()
  })
})
