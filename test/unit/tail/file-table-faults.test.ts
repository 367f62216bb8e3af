/**
 * The FileTable's bookkeeping for bad inputs (issue 7): what a non-regular file is called and
 * what the user is told to do, warnings that come once per episode, where an input that could
 * not be opened at start-up begins once it can, files whose reads fail, and a closed rotated
 * file that grows again. Pure: real fs.Stats of real files where a stat is needed.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, type Stats, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { identityKey } from '../../../src/tail/cursor.js'
import { FileTable } from '../../../src/tail/file-table.js'
import { PRUNE_UNFINISHED_AFTER } from '../../../src/tail/generation-rules.js'
import { notAFile } from '../../../src/tail/input-faults.js'
import { inotifyLimitMessage } from '../../../src/tail/polled-roots.js'
import type { Tracked } from '../../../src/tail/tracked.js'

/** A logger that records what it was asked to say, with warnOnce's once-per-key rule. */
class Said {
  readonly warned: string[] = []
  readonly infos: string[] = []
  readonly #keys = new Set<string>()
  warnOnce = (key: string, message: string) => {
    if (this.#keys.has(key)) return
    this.#keys.add(key)
    this.warned.push(message)
  }
  forget = (key: string) => {
    this.#keys.delete(key)
  }
  info = (message: string) => {
    this.infos.push(message)
  }
}

let dir: string
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'file-table-faults-'))
})
afterEach(() => rmSync(dir, { recursive: true, force: true }))

const enoent = Object.assign(new Error('ENOENT'), { code: 'ENOENT', syscall: 'stat' })
const eacces = Object.assign(new Error('EACCES'), { code: 'EACCES', syscall: 'stat' })

describe('notAFile', () => {
  it('names the kind of file and what to do instead', () => {
    const fifo = join(dir, 'fifo')
    execFileSync('mkfifo', [fifo])
    expect(notAFile(fifo, statSync(fifo))).toBe(
      `${fifo} is a FIFO (named pipe), not a regular file; skipping it: logmerge follows regular files only (have the program write its log to a file)`,
    )
    expect(notAFile('/dev/null', statSync('/dev/null'))).toMatch(
      /^\/dev\/null is a character device, .*\(remove it from the inputs\)$/,
    )
    expect(notAFile(dir, statSync(dir))).toBe(
      `${dir} is a directory, not a log file; skipping it (to follow the files in it, give a glob such as '${dir}/*')`,
    )
  })
})

describe('judgeName', () => {
  it('warns once per episode: again after the name was a regular file in between', () => {
    const table = new FileTable<number>(1024)
    const said = new Said()
    const file = join(dir, 'a.log')
    writeFileSync(file, 'x\n')
    const devNull = { stats: statSync('/dev/null') }
    expect(table.judgeName(file, devNull, true, said)).toBeNull()
    expect(table.judgeName(file, devNull, true, said)).toBeNull()
    expect(said.warned).toHaveLength(1)
    expect(table.unreadableNow()).toEqual([file])
    expect(table.judgeName(file, { stats: statSync(file) }, true, said)).not.toBeNull()
    expect(table.unreadableNow()).toEqual([])
    expect(table.judgeName(file, devNull, true, said)).toBeNull()
    expect(said.warned).toHaveLength(2)
  })

  it('a stat error other than "missing" is named with its code; a missing name only at start-up', () => {
    const table = new FileTable<number>(1024)
    const said = new Said()
    table.judgeName('/x/a.log', { error: eacces }, true, said)
    table.judgeName('/x/b.log', { error: enoent }, true, said) // not a start-up name: quiet
    table.beginStartup(['/x/c.log'])
    table.judgeName('/x/c.log', { error: enoent }, false, said)
    expect(said.warned).toEqual([
      'cannot follow /x/a.log: permission denied (EACCES); will keep trying',
      '/x/c.log does not exist',
    ])
    expect(table.unreadableNow().sort()).toEqual(['/x/a.log', '/x/b.log', '/x/c.log'])
  })
})

describe('an input that could not be opened at start-up', () => {
  const size = (st: Stats, n: number) => ({ dev: st.dev, ino: st.ino, size: n })

  it('begins at its start-up size once it can be opened (--from end), if it is the same file', () => {
    const table = new FileTable<number>(1024)
    const file = join(dir, 'secret.log')
    writeFileSync(file, 'old\n')
    const st = statSync(file)
    table.beginStartup([file])
    expect(table.startSize(file, size(st, 4))).toBe(4) // during start-up: its size now
    table.openFailed(file, size(st, 4))
    table.endStartup()
    expect(table.startSize(file, size(st, 40))).toBe(4) // grew while unreadable: from 4
    expect(table.startSize(file, size(st, 2))).toBeNull() // shorter: truncated, from 0
    expect(table.startSize(file, { dev: st.dev, ino: st.ino + 1, size: 40 })).toBeNull()
    const tracked = table.opened(
      file,
      3,
      { identity: st, size: 40, head: Buffer.from('old\n') },
      true,
      4,
    )
    expect(tracked?.cursor.offset).toBe(4)
    expect(table.startSize(file, size(st, 40))).toBeNull() // used once
  })

  it('a name first missing at start-up and created later begins at 0', () => {
    const table = new FileTable<number>(1024)
    const file = join(dir, 'later.log')
    table.beginStartup([file])
    table.endStartup()
    writeFileSync(file, 'x\n')
    expect(table.startSize(file, { ...statSync(file), size: 2 })).toBeNull()
  })

  it('says once when it can be opened again', () => {
    const table = new FileTable<number>(1024)
    const said = new Said()
    table.openWorked('/x/a.log', said) // never failed: nothing to say
    table.openFailed('/x/a.log', { dev: 1, ino: 2, size: 0 })
    table.openWorked('/x/a.log', said)
    table.openWorked('/x/a.log', said)
    expect(said.infos).toEqual(['/x/a.log: can be opened now; following it'])
  })
})

describe('read errors', () => {
  it('warn once, count as unread for --once until a read works, then say so once', () => {
    const table = new FileTable<number>(1024)
    const said = new Said()
    const file = tracked(table, '/x/bad.log')
    const eio = Object.assign(new Error('EIO'), { code: 'EIO', syscall: 'read' })
    table.readFailed(file, eio, said)
    table.readFailed(file, eio, said)
    expect(said.warned).toEqual([
      'cannot read /x/bad.log: input/output error (EIO); will retry (the other inputs go on)',
    ])
    expect(table.unreadableNow()).toEqual(['/x/bad.log'])
    table.readWorked(file, said)
    table.readWorked(file, said)
    expect(table.unreadableNow()).toEqual([])
    expect(said.infos).toEqual(['/x/bad.log: can be read again; reading on from where it stopped'])
    table.readFailed(file, eio, said) // a second episode warns again
    expect(said.warned).toHaveLength(2)
  })
})

describe('a closed rotated file', () => {
  it('is wanted again only when it has grown past where it was read to', () => {
    const table = new FileTable<number>(1024)
    const file = tracked(table, '/x/app.log')
    expect(table.look('/x/app.log', null).orphaned).toBe(file) // rotated away
    file.handle = null
    table.released(file)
    expect(file.finished).toBe(true)
    const id = file.cursor.identity
    expect(table.wanted({ ...id, size: 10 })).toBeUndefined() // as read: stays closed
    expect(table.wanted({ ...id, size: 11 })).toBe(file) // written to after it was closed
    const again = table.adoptOrphan('/x/app.log.1', 5, {
      identity: id,
      size: 11,
      head: file.cursor.head,
    })
    expect(again).toBe(file)
    expect(file.finished).toBe(false)
    expect(file.cursor.offset).toBe(10) // reads on from there
  })
})

describe('a remembered file found under a new name', () => {
  const remember = (size: number, offset: number) => {
    const table = new FileTable<number>(1024)
    const identity = { dev: 1, ino: 42 }
    const head = Buffer.from('first line\n')
    table.remember([{ identity, head, offset, path: '/x/app.log' }])
    const file = { identity, size, head }
    return table.adoptHit('/x/app.log.3', 7, file, 'remembered')
  }

  it('says it reads the rest only when there is a rest to read', () => {
    expect(remember(100, 60)?.message).toBe(
      '/x/app.log.3: rotated while logmerge was not looking; reading the rest of it',
    )
    // Read to its end by the last run, only renamed since (every older generation, at each
    // restart): adopted, quietly.
    const quiet = remember(100, 100)
    expect(quiet?.file.cursor.offset).toBe(100)
    expect(quiet?.message).toBeNull()
  })
})

describe('parking (more files than descriptors)', () => {
  it('parks the idlest named files; a parked file keeps its name and cursor', () => {
    const table = new FileTable<number>(1024)
    const a = tracked(table, '/x/a.log')
    const b = tracked(table, '/x/b.log')
    const c = tracked(table, '/x/c.log')
    a.lastActivity = 3
    b.lastActivity = 1
    c.lastActivity = 2
    expect(table.idlest(2)).toEqual([b, c])
    expect(table.park(b)).toBe(3) // the shell closes this handle
    expect([...table.parkedFiles()]).toEqual([b])
    expect(table.idlest(5)).toEqual([c, a]) // parked: not open
    expect(table.look('/x/b.log', b.cursor.identity).step).toEqual({ kind: 'same' })
    expect([...table.missing()]).toEqual([]) // still followed by its name
    table.unparked(b, 9)
    expect(b.handle).toBe(9)
    expect(b.cursor.offset).toBe(10)
  })

  it('a parked file whose name moved on is missing, stranded at its name, and wanted again', () => {
    const table = new FileTable<number>(1024)
    const a = tracked(table, '/x/a.log')
    table.park(a)
    const next = { dev: 1, ino: 424242 }
    expect(table.strandedAt('/x/a.log', a.cursor.identity)).toBe(false)
    const { step, orphaned } = table.look('/x/a.log', next)
    expect(orphaned).toBe(a)
    expect(step).toEqual({ kind: 'open' })
    expect(a.parked).toBe(false)
    expect(table.strandedAt('/x/a.log', next)).toBe(true) // its rest is read first
    expect(table.wanted({ ...a.cursor.identity, size: 10 })).toBe(a)
  })

  it('a scan judges only files missing when it began: concurrent scans never drop a live file', () => {
    const table = new FileTable<number>(1024)
    const a = tracked(table, '/x/a.log')
    table.park(a) // closed: once its name moves on it is missing, found only by a scan
    // Two scans begin while a.log is still named, read the directory, and then a.log is
    // renamed (a.log.1) before they finish: neither saw it under either name.
    const first = table.missingKeys()
    const second = table.missingKeys()
    table.look('/x/a.log', null)
    expect([...table.missing()]).toEqual([a])
    expect(table.settleScan(new Set(['/x']), new Set(), first)).toEqual([])
    expect(table.settleScan(new Set(['/x']), new Set(), second)).toEqual([])
    expect(table.files.has(a.key)).toBe(true)
    // Scans that began after it went missing and do not find it: gone after
    // PRUNE_UNFINISHED_AFTER of them (it was never read to its end, so it gets the longer wait).
    for (let i = 1; i < PRUNE_UNFINISHED_AFTER; i++)
      expect(table.settleScan(new Set(['/x']), new Set(), table.missingKeys())).toEqual([])
    expect(table.settleScan(new Set(['/x']), new Set(), table.missingKeys())).toEqual([a])
  })
})

describe('inotifyLimitMessage', () => {
  const err = (code: string) => Object.assign(new Error(code), { code })

  it('names the limit, the sysctl that raises it, and the polling meanwhile', () => {
    expect(inotifyLimitMessage('/var/log', err('ENOSPC'), 1000)).toBe(
      'cannot watch /var/log: the inotify watch limit is reached (ENOSPC); finding new files there by polling every 1000 ms instead. Raise fs.inotify.max_user_watches: sysctl -w fs.inotify.max_user_watches=524288 (and set it in /etc/sysctl.d/ to keep it)',
    )
    expect(inotifyLimitMessage('/var/log', err('EMFILE'), 250)).toMatch(
      /^cannot watch \/var\/log: no inotify instance left \(EMFILE: fs\.inotify\.max_user_instances .*polling every 250 ms .*sysctl -w fs\.inotify\.max_user_instances=1024 /,
    )
  })
})

/** A file followed under `path`, read to offset 10 (its first bytes "0123456789"). */
function tracked(table: FileTable<number>, path: string): Tracked<number> {
  const identity = { dev: 1, ino: Math.floor(Math.random() * 1e9) }
  const head = Buffer.from('0123456789')
  table.beginStartup([path]) // a start-up name under --from end begins where it is told
  table.look(path, identity)
  const file = table.opened(path, 3, { identity, size: 10, head }, true, 10)
  table.endStartup()
  if (!file) throw new Error('not opened')
  expect(file.cursor.offset).toBe(10)
  expect(table.files.get(identityKey(identity))).toBe(file)
  return file
}
