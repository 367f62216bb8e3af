/**
 * The fleet's drop-in for the shipped unit (deploy/logmerge.service.d/fleet.conf): systemd
 * reads it with the unit and `systemd-analyze verify` passes; `systemd-analyze security` shows
 * it opens IPv4 and IPv6 sockets and the host's network, and nothing else (no packet or
 * netlink sockets), with the exposure still at most 2.0.
 */
import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { expect } from 'vitest'
import { BIN, ROOT, test } from './helpers.js'

const execFileAsync = promisify(execFile)
const SYSTEMD_ANALYZE = ['/usr/bin/systemd-analyze', '/bin/systemd-analyze'].find(existsSync)
const UNIT = join(ROOT, 'deploy', 'logmerge.service')
const DROP_IN = join(ROOT, 'deploy', 'logmerge.service.d', 'fleet.conf')

const needAnalyze = (skip: (note: string) => void) => {
  if (SYSTEMD_ANALYZE) return
  if (process.env.CI) throw new Error('systemd-analyze is missing: .ci/run installs systemd')
  skip('systemd-analyze is not installed here (apt-get install systemd); CI runs this')
}

/** The shipped unit (ExecStart pointed at this checkout's bin) with `dropIn` beside it. */
function install(tmp: string, dropIn: string): string {
  const unit = readFileSync(UNIT, 'utf8').replace(/^ExecStart=\S+/m, `ExecStart=${BIN}`)
  const path = join(tmp, 'logmerge.service')
  writeFileSync(path, unit)
  mkdirSync(join(tmp, 'logmerge.service.d'))
  writeFileSync(join(tmp, 'logmerge.service.d', 'fleet.conf'), dropIn)
  return path
}

async function analyze(args: string[]): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(SYSTEMD_ANALYZE as string, args)
    return { code: 0, output: stdout + stderr }
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string }
    return { code: e.code, output: e.stdout + e.stderr }
  }
}

test('systemd-analyze verify passes with the fleet drop-in, which it reads', async ({
  tmp,
  skip,
}) => {
  needAnalyze(skip)
  const shipped = readFileSync(DROP_IN, 'utf8')
  const good = await analyze(['verify', '--man=no', install(tmp, shipped)])
  expect(good).toEqual({ code: 0, output: '' })
  // It is read: a bad key in it is reported.
  const other = join(tmp, 'bad')
  mkdirSync(other)
  const bad = await analyze(['verify', '--man=no', install(other, `${shipped}Bogus=1\n`)])
  expect(bad.output).toMatch(/fleet\.conf:\d+: Unknown key 'Bogus'/)
})

test('with the drop-in the service may use IPv4 and IPv6 sockets, and no other new kind', async ({
  tmp,
  skip,
}) => {
  needAnalyze(skip)
  const r = await analyze([
    'security',
    '--offline=yes',
    '--threshold=20',
    install(tmp, readFileSync(DROP_IN, 'utf8')),
  ])
  expect(r.code, r.output).toBe(0)
  const line = (what: string) => r.output.split('\n').find((l) => l.includes(what)) ?? ''
  expect(line('RestrictAddressFamilies=~AF_(INET|INET6)')).toMatch(/^✗/)
  expect(line('PrivateNetwork=')).toMatch(/^✗/)
  expect(line('RestrictAddressFamilies=~AF_PACKET')).toMatch(/^✓/)
  expect(line('RestrictAddressFamilies=~AF_NETLINK')).toMatch(/^✓/)
  expect(line('RestrictAddressFamilies=~…')).toMatch(/^✓/)
  expect(r.output).toMatch(/Overall exposure level for logmerge\.service: [01]\.\d/)
})
