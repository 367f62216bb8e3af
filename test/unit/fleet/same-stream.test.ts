/**
 * The centre's test of whether the stream is still the one its state was kept for: the servers
 * may report two creation times for one stream (concurrent creates), and only a stream made
 * again later is another stream.
 */
import { describe, expect, test } from 'vitest'
import { CREATED_SLACK_MS, sameStream } from '../../../src/fleet/centre-recover.js'

/** The two creation times the seed-2 soak's servers reported for one stream. */
const FIRST = '2026-12-06T23:10:07.846465098Z'
const SECOND = '2026-12-06T23:10:07.865984731Z'

describe('sameStream: is the stream the one the centre state was kept for', () => {
  test('the same creation time', () => {
    expect(sameStream(FIRST, FIRST)).toBe(true)
  })

  test('the times of two concurrent creates of one stream (seen after a leader change) are one stream', () => {
    // The fleet soak's centre (seed 2): its state said .846, a restarted leader reported .865.
    expect(sameStream(FIRST, SECOND)).toBe(true)
    expect(sameStream(SECOND, FIRST)).toBe(true)
  })

  test('a stream created again later is another stream', () => {
    const at = Date.parse('2026-12-06T23:10:07.846Z')
    const later = new Date(at + CREATED_SLACK_MS).toISOString()
    expect(sameStream('2026-12-06T23:10:07.846Z', later)).toBe(false)
    expect(sameStream('2026-12-06T23:10:07.846Z', '2026-12-07T09:00:00Z')).toBe(false)
  })

  test('a time that is not one is another stream', () => {
    expect(sameStream('2026-12-06T23:10:07.846Z', 'garbage')).toBe(false)
    expect(sameStream('', '2026-12-06T23:10:07.846Z')).toBe(false)
  })
})
