/**
 * The pure parts of the metrics: the listen address, the bound on input series, the tally that
 * turns per-file totals into counters, and the lag's mark.
 */
import { describe, expect, test } from 'vitest'
import { InputLabels, OTHER } from '../../../src/metrics/input-labels.js'
import { lagAt } from '../../../src/metrics/lag.js'
import { formatListen, parseListen } from '../../../src/metrics/listen.js'
import { SourceTally, zeroCounts } from '../../../src/metrics/source-tally.js'
import type { SourceStats } from '../../../src/sink/sink.js'

describe('parseListen', () => {
  test.each([
    ['127.0.0.1:9775', { host: '127.0.0.1', port: 9775 }],
    ['[::1]:9775', { host: '::1', port: 9775 }],
    ['[::]:0', { host: '::', port: 0 }],
    ['localhost:65535', { host: 'localhost', port: 65535 }],
    ['metrics.example.org:80', { host: 'metrics.example.org', port: 80 }],
  ])('%s', (text, want) => {
    expect(parseListen(text)).toEqual(want)
    expect(formatListen(want)).toBe(text)
  })

  test.each([
    ['nonsense', /no port/],
    ['9775', /no port/],
    [':9775', /the address is missing/],
    ['127.0.0.1:', /no port/],
    ['127.0.0.1:65536', /port must be 0 to 65535, got "65536"/],
    ['127.0.0.1:http', /port must be 0 to 65535/],
    ['::1:9775', /put an IPv6 address in brackets: \[::1\]:9775/],
    ['[localhost]:9775', /is not an IPv6 address/],
    ['300.1.1.1:9775', /"300.1.1.1" is neither an IP address nor a host name/],
    ['1.2.3:9775', /neither an IP address nor a host name/],
    ['bad_host:9775', /neither an IP address nor a host name/],
  ])('%s is refused', (text, why) => {
    const got = parseListen(text)
    expect('problem' in got && got.problem).toMatch(why)
  })
})

describe('InputLabels', () => {
  const inputs = new Set(['/l/a.log', '/l/b.log', '/l/c.log', '/d/x.log', '/d/x.log.1'])
  const matches = (p: string) => inputs.has(p)

  test('an input name is itself; a rotated generation that is not an input is its family', () => {
    const labels = new InputLabels(matches, 10)
    expect(labels.nameOf('/l/a.log')).toBe('/l/a.log')
    expect(labels.nameOf('/l/a.log.1')).toBe('/l/a.log')
    expect(labels.nameOf('/l/a.log-20261124')).toBe('/l/a.log')
    // A directory input that matches the generation names it itself.
    expect(labels.nameOf('/d/x.log.1')).toBe('/d/x.log.1')
    expect(labels.nameOf('/z/other.log')).toBe('/z/other.log')
  })

  test('the first `max` inputs keep their own series for good; later ones are summed as other', () => {
    const labels = new InputLabels(matches, 2)
    expect(labels.labelOf('/l/a.log')).toBe('/l/a.log')
    expect(labels.labelOf('/l/b.log')).toBe('/l/b.log')
    expect(labels.labelOf('/l/c.log')).toBe(OTHER)
    expect(labels.labelOf('/d/x.log')).toBe(OTHER)
    expect(labels.labelOf('/l/a.log')).toBe('/l/a.log')
    expect(labels.labelOf('/l/c.log')).toBe(OTHER)
    expect(labels.summed).toBe(2)
    expect(new InputLabels(matches, 0).labelOf('/l/a.log')).toBe(OTHER)
  })
})

const stats = (o: Partial<SourceStats>): SourceStats => ({
  lines: 0,
  linesSplit: 0,
  truncations: 0,
  pendingBytes: 0,
  lastActivity: 0,
  ...o,
})

describe('SourceTally', () => {
  test('counts what each total grew by since it was last seen', () => {
    const tally = new SourceTally()
    const into = zeroCounts()
    tally.take('1:1', stats({ lines: 3, bytes: 30 }), into)
    tally.take('1:1', stats({ lines: 5, bytes: 50, truncations: 1 }), into)
    tally.take('1:2', stats({ lines: 2, bytes: 7, linesSplit: 1 }), into)
    expect(into).toEqual({ lines: 7, bytes: 57, linesSplit: 1, truncations: 1, late: 0 })
  })

  test('totals restored from the state file are not counted again; late starts at 0', () => {
    const tally = new SourceTally(new Map([['1:1', stats({ lines: 100, bytes: 1000, late: 4 })]]))
    const into = zeroCounts()
    tally.take('1:1', stats({ lines: 110, bytes: 1100, late: 2 }), into)
    expect(into).toEqual({ lines: 10, bytes: 100, linesSplit: 0, truncations: 0, late: 2 })
  })

  test('restored totals wait for their file to reach the writer (it starts empty)', () => {
    const tally = new SourceTally(new Map([['1:1', stats({ lines: 100 })]]))
    tally.keepOnly(new Map()) // the first look: the writer knows no file yet
    const into = zeroCounts()
    tally.take('1:1', stats({ lines: 103 }), into)
    expect(into.lines).toBe(3)
  })

  test('a file that left the writer and a new one under its identity count from 0', () => {
    const tally = new SourceTally()
    const into = zeroCounts()
    tally.take('1:1', stats({ lines: 50 }), into)
    tally.keepOnly(new Map([['1:1', 0]]))
    tally.keepOnly(new Map([['1:2', 0]]))
    tally.take('1:1', stats({ lines: 4 }), into)
    expect(into.lines).toBe(54)
    // A total that went down without the file leaving (inode reused at once) all counts too.
    tally.take('1:1', stats({ lines: 1 }), into)
    expect(into.lines).toBe(55)
  })
})

describe('lagAt', () => {
  test('caught up: no lag, no mark', () => {
    expect(lagAt(1000, 500, 500, null)).toEqual({ lag: { bytes: 0, seconds: 0 }, mark: null })
  })

  test('behind and not moving: the seconds count from the first look that found it behind', () => {
    let look = lagAt(1000, 500, 100, null)
    expect(look.lag).toEqual({ bytes: 400, seconds: 0 })
    look = lagAt(6000, 700, 100, look.mark)
    expect(look.lag).toEqual({ bytes: 600, seconds: 5 })
    look = lagAt(11000, 700, 400, look.mark) // some read, not yet what was there at 1000
    expect(look.lag).toEqual({ bytes: 300, seconds: 10 })
  })

  test('a file written all the time that logmerge keeps up with is at 0 seconds', () => {
    let look = lagAt(1000, 500, 480, null)
    for (let t = 2000, size = 600; t < 10000; t += 1000, size += 100) {
      look = lagAt(t, size, size - 20, look.mark) // always read past the last look's size
      expect(look.lag.seconds).toBe(0)
      expect(look.lag.bytes).toBe(20)
    }
  })
})
