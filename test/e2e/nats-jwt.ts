/**
 * NATS decentralized auth for the fleet tests: an operator, an account with JetStream and its
 * users, as JWTs signed with nkeys (what `nsc` makes), and the creds files `--nats-creds`
 * reads. Written here so the tests need nothing but nats-server; the format is the one
 * nats-server's JWT library (v2) reads: base64url header and claims, an ed25519 signature by
 * the issuer's key.
 */
import { createHash } from 'node:crypto'
import { createAccount, createOperator, createUser, type KeyPair } from '@nats-io/nkeys'

/** RFC 4648 base32 without padding. */
function base32(bytes: Uint8Array): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'
  let out = ''
  let bits = 0
  let value = 0
  for (const byte of bytes) {
    value = (value << 8) | byte
    bits += 8
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31]
      bits -= 5
    }
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31]
  return out
}

const b64url = (b: Uint8Array | string): string => Buffer.from(b).toString('base64url')
const text = (b: Uint8Array): string => Buffer.from(b).toString('latin1')

/** A JWT of `kind` about `subject`, issued (signed) by `issuer`. */
function jwt(issuer: KeyPair, subject: KeyPair, name: string, nats: object): string {
  const claims = {
    jti: '',
    iat: Math.floor(Date.now() / 1000),
    iss: issuer.getPublicKey(),
    name,
    sub: subject.getPublicKey(),
    nats: { ...nats, version: 2 },
  }
  // The id is a hash of the claims without it (as the JWT library makes it).
  claims.jti = base32(createHash('sha512-256').update(JSON.stringify(claims)).digest())
  const head = b64url(JSON.stringify({ typ: 'JWT', alg: 'ed25519-nkey' }))
  const body = b64url(JSON.stringify(claims))
  const sig = b64url(issuer.sign(Buffer.from(`${head}.${body}`)))
  return `${head}.${body}.${sig}`
}

const UNLIMITED = { subs: -1, data: -1, payload: -1 }

export interface Decentralized {
  /** The server config lines: the operator, and the account preloaded in memory. */
  readonly serverConfig: string[]
  /** A creds file's text for a new user of the account. */
  userCreds(name: string): string
  /** A creds file's text for a user of an account the server does not know. */
  strangerCreds(): string
}

export function decentralized(): Decentralized {
  const operator = createOperator()
  const account = createAccount()
  // JetStream needs the server's system account.
  const system = createAccount()
  const operatorJwt = jwt(operator, operator, 'lmtest', {
    type: 'operator',
    system_account: system.getPublicKey(),
  })
  const systemJwt = jwt(operator, system, 'SYS', { type: 'account' })
  const accountJwt = jwt(operator, account, 'LOGS', {
    type: 'account',
    limits: {
      ...UNLIMITED,
      imports: -1,
      exports: -1,
      wildcards: true,
      conn: -1,
      leaf: -1,
      mem_storage: -1,
      disk_storage: -1,
      streams: -1,
      consumer: -1,
    },
    default_permissions: { pub: {}, sub: {} },
  })
  const creds = (issuer: KeyPair, name: string) => {
    const user = createUser()
    const userJwt = jwt(issuer, user, name, { type: 'user', pub: {}, sub: {}, ...UNLIMITED })
    return [
      '-----BEGIN NATS USER JWT-----',
      userJwt,
      '------END NATS USER JWT------',
      '',
      '-----BEGIN USER NKEY SEED-----',
      text(user.getSeed()),
      '------END USER NKEY SEED------',
      '',
    ].join('\n')
  }
  return {
    serverConfig: [
      `operator: "${operatorJwt}"`,
      'resolver: MEMORY',
      `system_account: ${system.getPublicKey()}`,
      `resolver_preload: { ${account.getPublicKey()}: "${accountJwt}", ${system.getPublicKey()}: "${systemJwt}" }`,
    ],
    userCreds: (name) => creds(account, name),
    strangerCreds: () => creds(createAccount(), 'stranger'),
  }
}
