import { closeSync, fstatSync, openSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  createLogger,
  detectStyle,
  formatLine,
  prefixLines,
  stderrIsJournal,
} from '../../src/log.js'

describe('formatLine', () => {
  it('plain: logmerge, the job when there are several, the level word', () => {
    expect(formatLine('plain', 'warn', 'a.log is gone')).toBe('logmerge: warn: a.log is gone\n')
    expect(formatLine('plain', 'error', 'x', 'web')).toBe('logmerge: web: error: x\n')
  })

  it('journal: the sd-daemon priority instead of the program name', () => {
    expect(formatLine('journal', 'error', 'x')).toBe('<3>error: x\n')
    expect(formatLine('journal', 'warn', 'x', 'db')).toBe('<4>db: warn: x\n')
    expect(formatLine('journal', 'info', 'x')).toBe('<6>info: x\n')
    expect(formatLine('journal', 'debug', 'x')).toBe('<7>debug: x\n')
  })

  it('a message with newlines: every line carries the prefix (journald reads lines)', () => {
    expect(formatLine('journal', 'error', 'one\ntwo')).toBe('<3>error: one\n<3>error: two\n')
  })

  it('colour: only the level word, reset after it', () => {
    expect(formatLine('color', 'error', 'x')).toBe('logmerge: \x1b[31merror:\x1b[0m x\n')
  })

  it("prefixLines words commander's own lines for people or for journald", () => {
    const text = "error: unknown option '--x'\n(run `logmerge --help` for usage)\n"
    expect(prefixLines(text, 'plain')).toBe(
      "logmerge: error: unknown option '--x'\nlogmerge: (run `logmerge --help` for usage)\n",
    )
    expect(prefixLines(text, 'journal')).toBe(
      "<3>error: unknown option '--x'\n<3>(run `logmerge --help` for usage)\n",
    )
  })
})

describe('createLogger', () => {
  it('filters by level, warns once per key until forgotten', () => {
    const lines: string[] = []
    const log = createLogger('warn', (l) => lines.push(l), { job: 'web' })
    log.debug('hidden')
    log.info('hidden')
    log.warnOnce('k', 'first')
    log.warnOnce('k', 'again')
    log.forget('k')
    log.warnOnce('k', 'after forget')
    log.error('bad')
    expect(lines).toEqual([
      'logmerge: web: warn: first\n',
      'logmerge: web: warn: after forget\n',
      'logmerge: web: error: bad\n',
    ])
  })
})

describe('detectStyle', () => {
  /** This process's stderr as JOURNAL_STREAM would name it. */
  const stderrId = (): string => {
    const st = fstatSync(2, { bigint: true })
    return `${st.dev}:${st.ino}`
  }

  it('journal only when JOURNAL_STREAM names this stderr', async () => {
    expect(stderrIsJournal({ JOURNAL_STREAM: stderrId() })).toBe(true)
    expect(detectStyle({ JOURNAL_STREAM: stderrId() }, true)).toBe('journal')
    const dir = await mkdtemp(join(tmpdir(), 'logmerge-log-'))
    try {
      const fd = openSync(join(dir, 'other'), 'w')
      const st = fstatSync(fd, { bigint: true })
      closeSync(fd)
      expect(stderrIsJournal({ JOURNAL_STREAM: `${st.dev}:${st.ino}` })).toBe(false)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
    expect(stderrIsJournal({ JOURNAL_STREAM: 'nonsense' })).toBe(false)
    expect(stderrIsJournal({})).toBe(false)
  })

  it('colour on a terminal unless NO_COLOR is set and not empty, or TERM=dumb', () => {
    expect(detectStyle({ TERM: 'xterm' }, true)).toBe('color')
    expect(detectStyle({ TERM: 'xterm', NO_COLOR: '' }, true)).toBe('color')
    expect(detectStyle({ TERM: 'xterm', NO_COLOR: '1' }, true)).toBe('plain')
    expect(detectStyle({ TERM: 'dumb' }, true)).toBe('plain')
    expect(detectStyle({ TERM: 'xterm' }, false)).toBe('plain')
  })
})
