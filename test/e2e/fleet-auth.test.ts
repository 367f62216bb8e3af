/**
 * The fleet's credentials and TLS on a real nats-server (issue 18): a creds file
 * (`--nats-creds`, decentralized auth: an operator, an account with JetStream, a user JWT, as
 * `nsc` makes them) and TLS with a certificate authority generated here by openssl
 * (`tls://` with `--nats-tls-ca`, and a server that requires client certificates with
 * `--nats-tls-cert`/`--nats-tls-key`). Refusals are one line naming the server and what to fix,
 * with the documented exit code (8: a person must fix it; see docs/fleet.md).
 */
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect } from 'vitest'
import { completeLines, runLogmerge, test } from './helpers.js'
import { needNats, startNats } from './nats.js'
import { decentralized } from './nats-jwt.js'

const OPENSSL = ['/usr/bin/openssl', '/bin/openssl'].find(existsSync)

/** One line in `a.log` of host directory `h` (a host publishes it with --once). */
function oneFile(tmp: string, line: string): string {
  mkdirSync(join(tmp, 'h'), { recursive: true })
  const file = join(tmp, 'h', 'a.log')
  writeFileSync(file, `${line}\n`)
  return file
}

/** The single line of a refusal, checked for the server's name and the fix. */
function refusal(stderr: string): string {
  const lines = stderr.trim().split('\n')
  expect(lines, stderr).toHaveLength(1)
  return lines[0] as string
}

describe('fleet credentials file', () => {
  test('a user creds file is accepted; another account, exit 8; a missing file, exit 2', {
    timeout: 60_000,
  }, async ({ tmp, skip }) => {
    needNats(skip)
    const auth = decentralized()
    const nats = await startNats(tmp, { auth: { config: auth.serverConfig } })
    const url = `nats://${nats.address}/LOGS`
    const file = oneFile(tmp, 'signed line')
    const creds = join(tmp, 'fleet.creds')
    writeFileSync(creds, auth.userCreds('fleet'))
    const stranger = join(tmp, 'stranger.creds')
    writeFileSync(stranger, auth.strangerCreds())
    const out = join(tmp, 'out.log')

    // Without credentials the server refuses (so the creds file below is what lets it in).
    const none = await runLogmerge([file, '--once', '-o', url])
    expect(none.code, none.stderr).toBe(8)
    const bad = await runLogmerge([file, '--once', '-o', url, '--nats-creds', stranger])
    expect(bad.code, bad.stderr).toBe(8)
    expect(refusal(bad.stderr)).toMatch(
      new RegExp(
        `^logmerge: error: NATS server ${nats.address.replace(/\./g, '\\.')} refused logmerge: .*[Aa]uthorization.*--nats-creds`,
      ),
    )
    const missing = await runLogmerge([file, '--once', '-o', url, '--nats-creds', `${creds}.no`])
    expect(missing.code).toBe(2)
    expect(refusal(missing.stderr)).toMatch(/cannot read --nats-creds .*fleet\.creds\.no/)

    const good = await runLogmerge([file, '--once', '-o', url, '--nats-creds', creds])
    expect(good.code, good.stderr).toBe(0)
    const centre = await runLogmerge([url, '--once', '-o', out, '--nats-creds', creds])
    expect(centre.code, centre.stderr).toBe(0)
    expect(completeLines(out)).toEqual(['signed line'])
  })
})

/** A CA, a server certificate for 127.0.0.1 signed by it, and a client certificate. */
function makeCertificates(dir: string): Record<string, string> {
  const openssl = OPENSSL as string
  const p = (name: string) => join(dir, name)
  const run = (args: string[]) => execFileSync(openssl, args, { cwd: dir, stdio: 'pipe' })
  const key = (name: string) =>
    run(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', p(name)])
  key('ca.key')
  run([
    'req',
    '-x509',
    '-new',
    '-key',
    p('ca.key'),
    '-subj',
    '/CN=logmerge test CA',
    '-days',
    '2',
    '-out',
    p('ca.pem'),
  ])
  // Another CA, which signed nothing here (a client that trusts it trusts no server here).
  key('other.key')
  run([
    'req',
    '-x509',
    '-new',
    '-key',
    p('other.key'),
    '-subj',
    '/CN=other CA',
    '-days',
    '2',
    '-out',
    p('other.pem'),
  ])
  const leaf = (name: string, cn: string, ext: string) => {
    key(`${name}.key`)
    run(['req', '-new', '-key', p(`${name}.key`), '-subj', `/CN=${cn}`, '-out', p(`${name}.csr`)])
    writeFileSync(p(`${name}.ext`), `${ext}\n`)
    run([
      'x509',
      '-req',
      '-in',
      p(`${name}.csr`),
      '-CA',
      p('ca.pem'),
      '-CAkey',
      p('ca.key'),
      '-CAcreateserial',
      '-days',
      '2',
      '-extfile',
      p(`${name}.ext`),
      '-out',
      p(`${name}.pem`),
    ])
  }
  leaf('server', '127.0.0.1', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth')
  leaf('client', 'logmerge', 'extendedKeyUsage=clientAuth')
  return {
    ca: p('ca.pem'),
    other: p('other.pem'),
    serverCert: p('server.pem'),
    serverKey: p('server.key'),
    clientCert: p('client.pem'),
    clientKey: p('client.key'),
  }
}

describe('fleet TLS', () => {
  test('tls:// with the CA works; a server not trusted is one line and exit 8', {
    timeout: 60_000,
  }, async ({ tmp, skip }) => {
    needNats(skip)
    if (!OPENSSL) return skip('openssl is not installed here')
    const certs = makeCertificates(tmp) as Record<string, string> & { ca: string; other: string }
    const nats = await startNats(tmp, {
      tls: { cert: certs.serverCert as string, key: certs.serverKey as string },
    })
    const url = `tls://${nats.address}/LOGS`
    const file = oneFile(tmp, 'over tls')
    const out = join(tmp, 'out.log')

    const untrusted = await runLogmerge([file, '--once', '-o', url, '--nats-tls-ca', certs.other])
    expect(untrusted.code, untrusted.stderr).toBe(8)
    expect(refusal(untrusted.stderr)).toMatch(
      /^logmerge: error: NATS server 127\.0\.0\.1:\d+: TLS: .*certificate.*--nats-tls-ca/,
    )
    // Without any CA the system's are used, which do not know this one.
    const system = await runLogmerge([file, '--once', '-o', url])
    expect(system.code, system.stderr).toBe(8)

    const good = await runLogmerge([file, '--once', '-o', url, '--nats-tls-ca', certs.ca])
    expect(good.code, good.stderr).toBe(0)
    const centre = await runLogmerge([url, '--once', '-o', out, '--nats-tls-ca', certs.ca])
    expect(centre.code, centre.stderr).toBe(0)
    expect(completeLines(out)).toEqual(['over tls'])
  })

  test('a server that requires client certificates: refused without one (exit 8), works with', {
    timeout: 60_000,
  }, async ({ tmp, skip }) => {
    needNats(skip)
    if (!OPENSSL) return skip('openssl is not installed here')
    const certs = makeCertificates(tmp) as Record<string, string>
    const ca = certs.ca as string
    const nats = await startNats(tmp, {
      tls: { cert: certs.serverCert as string, key: certs.serverKey as string, verify: { ca } },
    })
    const url = `tls://${nats.address}/LOGS`
    const file = oneFile(tmp, 'mutual')
    const out = join(tmp, 'out.log')

    const anonymous = await runLogmerge([file, '--once', '-o', url, '--nats-tls-ca', ca])
    expect(anonymous.code, anonymous.stderr).toBe(8)
    expect(refusal(anonymous.stderr)).toMatch(/NATS server 127\.0\.0\.1:\d+.*--nats-tls-cert/)

    const client = [
      '--nats-tls-ca',
      ca,
      '--nats-tls-cert',
      certs.clientCert as string,
      '--nats-tls-key',
      certs.clientKey as string,
    ]
    const good = await runLogmerge([file, '--once', '-o', url, ...client])
    expect(good.code, good.stderr).toBe(0)
    const centre = await runLogmerge([url, '--once', '-o', out, ...client])
    expect(centre.code, centre.stderr).toBe(0)
    expect(completeLines(out)).toEqual(['mutual'])
  })
})
