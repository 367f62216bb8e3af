/**
 * Which side of a fleet a run is (fleet/options.ts): a host (a nats:// output), the centre (a
 * nats:// input) or neither, and the usage errors of a run that mixes them, in the order the
 * user meets them (a malformed URL before a flag of the wrong side).
 */
import { describe, expect, it } from 'vitest'
import { type FleetOptions, fleetConfig } from '../../../src/fleet/options.js'

const count = (_flag: string, value: string | number | undefined, fallback: number) =>
  value === undefined ? fallback : Number(value)
const side = (inputs: string[], output: string | undefined, options: FleetOptions = {}) =>
  fleetConfig(inputs, output, options, '/tmp', count)

describe('fleetConfig', () => {
  it('is null for a run with no nats:// input or output', () => {
    expect(side(['a.log'], 'out.log')).toBeNull()
  })

  it('takes a nats:// output for a host and a nats:// input for the centre', () => {
    const host = side(['a.log'], 'nats://n1:4222/LOGS', { hostId: 'web-1' })
    expect(host?.role).toBe('host')
    expect(host?.hostId).toBe('web-1')
    expect(host?.url.stream).toBe('LOGS')
    const centre = side(['nats://n1:4222/LOGS'], 'fleet.log', { natsSkipLost: true })
    expect(centre?.role).toBe('centre')
    expect(centre?.skipLost).toBe(true)
  })

  it('refuses fleet flags without a stream, a stream both ways, and files beside the centre', () => {
    expect(() => side(['a.log'], 'out.log', { hostId: 'web-1' })).toThrow(
      /--host-id is for a nats:\/\/ output or input/,
    )
    expect(() => side(['nats://n1:4222/A'], 'nats://n1:4222/B')).toThrow(
      /a nats:\/\/ input and a nats:\/\/ output in one run/,
    )
    expect(() => side(['nats://n1:4222/A', 'b.log'], 'out.log')).toThrow(
      /the centre takes one input, the stream: got 2 inputs/,
    )
  })

  it("refuses one side's flags on the other", () => {
    expect(() => side(['nats://n1:4222/LOGS'], 'out.log', { hostId: 'web-1' })).toThrow(
      /--host-id is for a host/,
    )
    expect(() => side(['a.log'], 'nats://n1:4222/LOGS', { natsSkipLost: true })).toThrow(
      /--nats-skip-lost is for the centre/,
    )
  })

  it('says a malformed URL before a flag of the wrong side', () => {
    expect(() => side(['a.log'], 'nats://n1:4222', { natsSkipLost: true })).toThrow(/no stream/)
    expect(() => side(['nats://n1:4222'], 'out.log', { hostId: 'web-1' })).toThrow(/no stream/)
  })
})
