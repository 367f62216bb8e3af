/**
 * The fleet end to end on a real nats-server (one node): hosts publish their files to a
 * JetStream stream (`-o nats://...`), the centre merges the stream into one file. Every engine's
 * readers publish; lines are labelled with host and file; a full stream holds the hosts back
 * without losing a line; a wrong password, a server that is not there, messages the stream
 * no longer holds and bytes of a generation that never came are one-line errors with their
 * exit codes.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { jetstream, jetstreamManager } from '@nats-io/jetstream'
import { connect } from '@nats-io/transport-node'
import { describe, expect } from 'vitest'
import { encodeBatch } from '../../src/fleet/frame.js'
import {
  completeLines,
  ENGINES,
  expectMerged,
  Journal,
  runLogmerge,
  spawnLogmerge,
  stop,
  test,
  uniqueLines,
  waitFor,
  waitForAll,
} from './helpers.js'
import { freePort, needNats, startNats } from './nats.js'

/** A host's input directory with `files` empty files in it. */
function hostDir(tmp: string, host: string, files: readonly string[]): string[] {
  mkdirSync(join(tmp, host), { recursive: true })
  return files.map((f) => {
    const path = join(tmp, host, f)
    writeFileSync(path, '')
    return path
  })
}

const quick = ['--checkpoint-interval', '50', '--poll-interval', '100', '--from', 'start']

/**
 * A centre `--once --order time --format prefix` over the stream at `url` writes exactly the
 * `lines` (each `host:file.log: <ISO time> ...`), sorted by their time.
 */
async function expectCentreByTime(tmp: string, url: string, lines: readonly string[]) {
  const out = join(tmp, 'fleet.log')
  const centre = await runLogmerge([
    url,
    '--once',
    '-o',
    out,
    '--order',
    'time',
    '--format',
    'prefix',
    '--reorder-window',
    '60s',
  ])
  expect(centre.code, centre.stderr).toBe(0)
  const time = (l: string) => l.slice(l.indexOf(': ') + 2, l.indexOf(': ') + 26)
  expect(completeLines(out)).toEqual([...lines].sort((x, y) => time(x).localeCompare(time(y))))
}

describe('fleet', () => {
  test('two hosts into one file while following: every line once, labelled with host and file', {
    timeout: 60_000,
  }, async ({ tmp, skip }) => {
    needNats(skip)
    const nats = await startNats(tmp)
    const url = `nats://${nats.address}/LOGS`
    const [a, b] = hostDir(tmp, 'web-1', ['app.log', 'err.log']) as [string, string]
    const [c] = hostDir(tmp, 'db-1', ['app.log']) as [string]
    const out = join(tmp, 'fleet.log')
    const web = spawnLogmerge([
      join(tmp, 'web-1', '*.log'),
      '-o',
      url,
      '--host-id',
      'web-1',
      '--state',
      join(tmp, 'web.state'),
      ...quick,
    ])
    const db = spawnLogmerge([
      c,
      '-o',
      url,
      '--host-id',
      'db-1',
      '--engine',
      'threads',
      '--state',
      join(tmp, 'db.state'),
      ...quick,
    ])
    const centre = spawnLogmerge([url, '-o', out, '--format', 'prefix', ...quick])
    const journal = new Journal()
    for (let round = 0; round < 20; round++) {
      journal.append(a, uniqueLines('a', 5))
      journal.append(b, uniqueLines('b', 3))
      journal.append(c, uniqueLines('c', 7))
      await new Promise((r) => setTimeout(r, 20))
    }
    const labelled = (f: string) =>
      f === c ? 'db-1:app.log' : f === a ? 'web-1:app.log' : 'web-1:err.log'
    const expected = [...journal.streams].flatMap(([f, lines]) =>
      lines.map((l) => `${labelled(f)}: ${l}`),
    )
    await waitForAll(out, expected, { proc: centre, timeout: 30_000 })
    // status on both sides: the host's offsets are what the stream acknowledged; the centre
    // shows every host with no lag.
    const hostStatus = await runLogmerge(['status', '--state', join(tmp, 'web.state')])
    expect(hostStatus.code, hostStatus.stderr).toBe(0)
    expect(hostStatus.stdout.toString()).toMatch(
      new RegExp(
        `stream +nats://${nats.address}/LOGS as host web-1: last message acknowledged \\d+ at `,
      ),
    )
    let text = ''
    await waitFor(
      async () => {
        const r = await runLogmerge(['status', '-o', out])
        text = r.stdout.toString() + r.stderr
        return (
          r.code === 0 &&
          /^web-1\t\d+\t\S+\t160\t0\t0\.0$/m.test(text) &&
          /^db-1\t\d+\t\S+\t140\t0\t0\.0$/m.test(text)
        )
      },
      { what: 'the centre status to show both hosts with no lag', timeout: 30_000 },
    ).catch((err) => {
      throw new Error(`${(err as Error).message}; status said:\n${text}`)
    })
    const json = JSON.parse((await runLogmerge(['status', '-o', out, '--json'])).stdout.toString())
    expect(json.hosts.map((h: { host: string }) => h.host).sort()).toEqual(['db-1', 'web-1'])
    await Promise.all([stop(web), stop(db), stop(centre)])
    // Strip the labels: each line once, each file in order, and each label the right one.
    const output = completeLines(out)
    const stripped = output.map((l) => l.slice(l.indexOf(': ') + 2))
    expectMerged(stripped, journal)
    expect(new Set(output)).toEqual(new Set(expected))
  })

  describe.each(ENGINES)('host engine %s', (engine) => {
    test('publishes every line of its files (--once), the centre merges them (--once)', {
      timeout: 60_000,
    }, async ({ tmp, skip }) => {
      needNats(skip)
      const nats = await startNats(tmp)
      const url = `nats://${nats.address}/LOGS`
      const files = hostDir(tmp, 'h', ['a.log', 'b.log', 'c.log'])
      const journal = new Journal()
      for (const f of files) journal.append(f, uniqueLines(engine, 2000))
      // A line longer than a message carries: split the way --max-line-bytes splits.
      const long = `${'x'.repeat(600_000)}`
      writeFileSync(files[0] as string, `${long}\n`, { flag: 'a' })
      const host = await runLogmerge([
        ...files,
        '-o',
        url,
        '--once',
        '--engine',
        engine,
        '--threads',
        '2',
        '--host-id',
        `h-${engine}`,
      ])
      expect(host.code, host.stderr).toBe(0)
      const out = join(tmp, 'fleet.log')
      const centre = await runLogmerge(['--once', url, '-o', out])
      expect(centre.code, centre.stderr).toBe(0)
      const output = completeLines(out)
      const pieces = output.filter((l) => l.startsWith('xxx'))
      expect(pieces.join('')).toBe(long)
      expect(pieces.length).toBe(3) // 600,000 bytes in pieces of at most ~240 KiB
      expectMerged(
        output.filter((l) => !l.startsWith('xxx')),
        journal,
      )
    })
  })

  test('--order time merges the hosts by timestamp (centre --once)', {
    timeout: 60_000,
  }, async ({ tmp, skip }) => {
    needNats(skip)
    const nats = await startNats(tmp)
    const url = `nats://${nats.address}/LOGS`
    const at = (ms: number) => new Date(Date.UTC(2026, 0, 1) + ms).toISOString()
    const hosts = ['web-1', 'web-2', 'db-1']
    const all: string[] = []
    for (const [h, host] of hosts.entries()) {
      const [a, b] = hostDir(tmp, host, ['a.log', 'b.log']) as [string, string]
      const lines = (file: string, offset: number) => {
        const out: string[] = []
        for (let i = 0; i < 300; i++)
          out.push(`${at((i * 6 + offset) * 1000)} ${host} ${file} ${i}`)
        writeFileSync(file === 'a' ? a : b, out.map((l) => `${l}\n`).join(''))
        all.push(...out.map((l) => `${host}:${file}.log: ${l}`))
      }
      lines('a', h * 2)
      lines('b', h * 2 + 1)
      const r = await runLogmerge([
        join(tmp, host, '*.log'),
        '--once',
        '-o',
        url,
        '--host-id',
        host,
      ])
      expect(r.code, r.stderr).toBe(0)
    }
    await expectCentreByTime(tmp, url, all)
  })

  test("--once --order time: a file whose first message comes after other hosts' messages is merged in its place", {
    timeout: 60_000,
  }, async ({ tmp, skip }) => {
    needNats(skip)
    const nats = await startNats(tmp)
    const url = `nats://${nats.address}/LOGS`
    const at = (ms: number) => new Date(Date.UTC(2026, 0, 1) + ms).toISOString()
    const all: string[] = []
    const write = (path: string, host: string, file: string, offset: number) => {
      const out = Array.from(
        { length: 200 },
        (_, i) => `${at((i * 3 + offset) * 1000)} ${host} ${file} ${i}`,
      )
      writeFileSync(path, out.map((l) => `${l}\n`).join(''))
      all.push(...out.map((l) => `${host}:${file}.log: ${l}`))
    }
    const publish = async (host: string, files: string) => {
      const r = await runLogmerge([join(tmp, host, files), '--once', '-o', url, '--host-id', host])
      expect(r.code, r.stderr).toBe(0)
    }
    // db-1 publishes a.log, then web-1 its two files, then db-1 its b.log: in the stream, b.log's
    // first message comes after every other line, though its lines belong among them. Before
    // the whole --once snapshot held the merge, they were all written at the end.
    const [dbA] = hostDir(tmp, 'db-1', ['a.log']) as [string]
    write(dbA, 'db-1', 'a', 0)
    await publish('db-1', 'a.log')
    const [webA, webB] = hostDir(tmp, 'web-1', ['a.log', 'b.log']) as [string, string]
    write(webA, 'web-1', 'a', 1)
    write(webB, 'web-1', 'b', 2)
    await publish('web-1', '*.log')
    write(join(tmp, 'db-1', 'b.log'), 'db-1', 'b', 0.5)
    await publish('db-1', 'b.log')
    await expectCentreByTime(tmp, url, all)
  })

  test('a full stream holds the host back; nothing is lost once the centre reads it', {
    timeout: 90_000,
  }, async ({ tmp, skip }) => {
    needNats(skip)
    const nats = await startNats(tmp)
    const url = `nats://${nats.address}/LOGS`
    const [file] = hostDir(tmp, 'h', ['a.log']) as [string]
    // 1 MiB: 4 messages of 256 KiB; the host has ~4.5 MiB to send.
    const host = spawnLogmerge([
      file,
      '-o',
      url,
      '--host-id',
      'h',
      '--from',
      'start',
      '--nats-max-bytes',
      '1M',
      '--state',
      join(tmp, 'h.state'),
      ...quick,
    ])
    const journal = new Journal()
    for (let i = 0; i < 20; i++) journal.append(file, uniqueLines(`full${i}`, 5000))
    await waitFor(() => /stream LOGS is full/.test(host.stderr()), {
      proc: host,
      what: 'the host to say the stream is full',
    })
    const out = join(tmp, 'fleet.log')
    const centre = spawnLogmerge([url, '-o', out, ...quick])
    await waitForAll(out, journal.all, { proc: centre, timeout: 60_000 })
    await Promise.all([stop(host), stop(centre)])
    expectMerged(completeLines(out), journal)
    expect(host.stderr()).toMatch(/publishing to .* again/)
  })

  test('a wrong password is refused with one line and exit 8; the right one works', {
    timeout: 60_000,
  }, async ({ tmp, skip }) => {
    needNats(skip)
    const nats = await startNats(tmp, { auth: { user: 'fleet', pass: 's3cret' } })
    const [file] = hostDir(tmp, 'h', ['a.log']) as [string]
    writeFileSync(file, 'one line\n')
    const bad = await runLogmerge([file, '--once', '-o', `nats://fleet:wrong@${nats.address}/LOGS`])
    expect(bad.code).toBe(8)
    const lines = bad.stderr.trim().split('\n')
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(
      /^logmerge: error: NATS server 127\.0\.0\.1:\d+ refused logmerge: .*[Aa]uthorization/,
    )
    expect(bad.stderr).not.toContain('wrong') // the password is never printed
    const centreBad = await runLogmerge([
      `nats://fleet:nope@${nats.address}/LOGS`,
      '--once',
      '-o',
      join(tmp, 'out.log'),
    ])
    expect(centreBad.code).toBe(8)
    const good = await runLogmerge([
      file,
      '--once',
      '-o',
      `nats://fleet:s3cret@${nats.address}/LOGS`,
    ])
    expect(good.code, good.stderr).toBe(0)
    const centre = await runLogmerge([
      `nats://fleet:s3cret@${nats.address}/LOGS`,
      '--once',
      '-o',
      join(tmp, 'out.log'),
    ])
    expect(centre.code, centre.stderr).toBe(0)
    expect(completeLines(join(tmp, 'out.log'))).toEqual(['one line'])
  })

  test('a token in the URL: a wrong one is refused (exit 8), the right one works', {
    timeout: 60_000,
  }, async ({ tmp, skip }) => {
    needNats(skip)
    const nats = await startNats(tmp, { auth: { token: 't0ken' } })
    const [file] = hostDir(tmp, 'h', ['a.log']) as [string]
    writeFileSync(file, 'tokened\n')
    const bad = await runLogmerge([file, '--once', '-o', `nats://nope@${nats.address}/LOGS`])
    expect(bad.code).toBe(8)
    expect(bad.stderr).toMatch(/refused logmerge/)
    const good = await runLogmerge([file, '--once', '-o', `nats://t0ken@${nats.address}/LOGS`])
    expect(good.code, good.stderr).toBe(0)
    const out = join(tmp, 'out.log')
    const centre = await runLogmerge([`nats://t0ken@${nats.address}/LOGS`, '--once', '-o', out])
    expect(centre.code, centre.stderr).toBe(0)
    expect(completeLines(out)).toEqual(['tokened'])
  })

  test('no server at the address: one line and exit 7, soon', async ({ tmp, skip }) => {
    needNats(skip)
    const port = await freePort()
    const [file] = hostDir(tmp, 'h', ['a.log']) as [string]
    const started = Date.now()
    const r = await runLogmerge([file, '-o', `nats://127.0.0.1:${port}/LOGS`])
    expect(r.code).toBe(7)
    expect(r.stderr).toMatch(
      new RegExp(`logmerge: error: cannot reach NATS server 127\\.0\\.0\\.1:${port}: .*refused`),
    )
    expect(Date.now() - started).toBeLessThan(15_000)
    const c = await runLogmerge([`nats://127.0.0.1:${port}/LOGS`, '-o', join(tmp, 'out.log')])
    expect(c.code).toBe(7)
  })

  test('messages the stream no longer holds: exit 9 naming them; --nats-skip-lost goes on', {
    timeout: 60_000,
  }, async ({ tmp, skip }) => {
    needNats(skip)
    const nats = await startNats(tmp)
    const url = `nats://${nats.address}/LOGS`
    const [file] = hostDir(tmp, 'h', ['a.log']) as [string]
    const out = join(tmp, 'fleet.log')
    const state = join(tmp, 'centre.state')
    writeFileSync(file, 'first\n')
    expect((await runLogmerge([file, '--once', '-o', url])).code).toBe(0)
    const first = await runLogmerge([url, '--once', '-o', out, '--state', state])
    expect(first.code, first.stderr).toBe(0)
    const nc = await connect({ servers: nats.address })
    const jsm = await jetstreamManager(nc)
    // The centre read everything up to here (how many messages a host sends is its business).
    const from = (await jsm.streams.info('LOGS')).state.last_seq + 1
    // More is published, then deleted before the centre reads it (a purge by hand).
    writeFileSync(file, 'second\n')
    expect((await runLogmerge([file, '--once', '-o', url, '--host-id', 'other'])).code).toBe(0)
    const to = (await jsm.streams.info('LOGS')).state.last_seq
    expect(to).toBeGreaterThanOrEqual(from)
    await jsm.streams.purge('LOGS')
    await nc.close()
    const lost = await runLogmerge([url, '--once', '-o', out, '--state', state])
    expect(lost.code).toBe(9)
    expect(lost.stderr).toMatch(
      new RegExp(
        `logmerge: error: messages ${from} to ${to} of stream LOGS were deleted before the centre merged them`,
      ),
    )
    const skipped = await runLogmerge([
      url,
      '--once',
      '-o',
      out,
      '--state',
      state,
      '--nats-skip-lost',
    ])
    expect(skipped.code, skipped.stderr).toBe(0)
    expect(skipped.stderr).toMatch(new RegExp(`going on from ${to + 1} \\(--nats-skip-lost\\)`))
    expect(completeLines(out)).toEqual(['first'])
  })

  test('bytes of a generation that never came (the rest of the run skipped as early): exit 9 naming them, again after a restart; --nats-skip-lost goes on', {
    timeout: 60_000,
  }, async ({ tmp, skip }) => {
    needNats(skip)
    const nats = await startNats(tmp)
    const url = `nats://${nats.address}/LOGS`
    const out = join(tmp, 'fleet.log')
    const state = join(tmp, 'centre.state')
    const centre = () => runLogmerge([url, '--once', '-o', out, '--state', state])
    // The centre makes the stream and its state.
    expect((await centre()).code).toBe(0)
    const nc = await connect({ servers: nats.address })
    const js = jetstream(nc)
    // Hand-made messages of host h (as a host's publisher packs them): run A's number 0, then
    // its number 2 (number 1, bytes 3-6, never reaches the stream), then run B, which resumed
    // at the host's checkpoint (everything acknowledged) and lets generation A.0 go at 9.
    // Run ids begin with the run's start time in base 36 (as a host makes them).
    const A = `${Date.now().toString(36)}aaaaaa`
    const B = `${(Date.now() + 1).toString(36)}bbbbbb`
    const message = (r: string, c: number, s: number, text: string | null) => {
      const data = Buffer.from(text ?? '')
      const seg =
        text === null
          ? { g: `${A}.0`, s, e: s, n: 0, x: 1 as const }
          : { g: `${A}.0`, s, e: s + data.length, n: data.length }
      const meta = {
        v: 1 as const,
        h: 'h',
        r,
        c,
        g: { [`${A}.0`]: { p: '/var/log/a.log', l: 'a.log', o: 0 } },
        s: [seg],
      }
      return encodeBatch(meta, [data], data.length)
    }
    await js.publish('LOGS.h', message(A, 0, 0, 'l1\n'))
    expect((await centre()).code).toBe(0)
    await js.publish('LOGS.h', message(A, 2, 6, 'l3\n'))
    await js.publish('LOGS.h', message(B, 0, 9, null))
    await nc.close()
    const gap = new RegExp(
      `logmerge: error: stream LOGS message 3: h /var/log/a\\.log \\(generation ${A}\\.0\\): bytes 3-9 never came \\(1 message\\(s\\) of its run ${A} were skipped waiting for its number 1, which never came: stream messages 2-2\\)`,
    )
    const lost = await centre()
    expect(lost.code, lost.stderr).toBe(9)
    expect(lost.stderr).toMatch(gap)
    // Nothing of that message was taken: a restart stops there again.
    const again = await centre()
    expect(again.code, again.stderr).toBe(9)
    expect(again.stderr).toMatch(/message 3: h \/var\/log\/a\.log .*bytes 3-9 never came/)
    const skipped = await runLogmerge([
      url,
      '--once',
      '-o',
      out,
      '--state',
      state,
      '--nats-skip-lost',
    ])
    expect(skipped.code, skipped.stderr).toBe(0)
    expect(skipped.stderr).toMatch(
      new RegExp(
        `logmerge: error: h /var/log/a\\.log \\(generation ${A}\\.0\\): bytes 3-9 never came.*going on \\(--nats-skip-lost\\)`,
      ),
    )
    expect(completeLines(out)).toEqual(['l1'])
  })

  test('usage errors: exit 2 before anything is started', async ({ tmp }) => {
    const url = 'nats://127.0.0.1:1/LOGS'
    const cases: [string[], RegExp][] = [
      [[join(tmp, 'a.log'), '-o', url, '--order', 'time'], /--order time` with a nats:\/\/ output/],
      [
        [join(tmp, 'a.log'), '-o', url, '--format', 'json'],
        /--format json` with a nats:\/\/ output/,
      ],
      [
        [url, join(tmp, 'a.log'), '-o', join(tmp, 'o.log')],
        /the centre takes one input, the stream/,
      ],
      [
        [join(tmp, 'a.log'), '-o', join(tmp, 'o.log'), '--host-id', 'x'],
        /--host-id is for a nats:\/\/ output or input/,
      ],
      [[url, '-o', join(tmp, 'o.log'), '--host-id', 'x'], /--host-id is for a host/],
      [[join(tmp, 'a.log'), '-o', 'nats://h:4222/A.B'], /is not a stream name/],
      [[join(tmp, 'a.log'), '-o', url, '--host-id', 'bad id'], /--host-id` to be 1 to 128/],
    ]
    for (const [args, message] of cases) {
      const r = await runLogmerge(args)
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2)
      expect(r.stderr).toMatch(message)
    }
  })

  test('check-config knows the fleet keys', async ({ tmp }) => {
    const file = join(tmp, 'config.json')
    writeFileSync(
      file,
      JSON.stringify({
        jobs: [
          {
            name: 'ship',
            inputs: ['/var/log/app/*.log'],
            output: 'nats://u:p@n1:4222,n2/LOGS',
            hostId: 'web-1',
            natsReplicas: 3,
            natsMaxBytes: '2G',
          },
          {
            name: 'merge',
            inputs: ['tls://n1:4222/LOGS'],
            output: join(tmp, 'fleet.log'),
            natsTlsCa: 'ca.pem',
            order: 'time',
            format: 'prefix',
          },
        ],
      }),
    )
    const ok = await runLogmerge(['check-config', file])
    expect(ok.code, ok.stderr).toBe(0)
    expect(ok.stdout.toString()).toContain(
      'job ship: /var/log/app/*.log -> nats://n1:4222,n2:4222/LOGS as host web-1',
    )
    expect(ok.stdout.toString()).toContain('job merge: tls://n1:4222/LOGS ->')
    expect(ok.stdout.toString()).not.toContain('u:p')
    writeFileSync(
      file,
      JSON.stringify({
        inputs: ['a.log'],
        output: 'nats://n1/LOGS',
        natsReplicas: 0,
        natsSkipLost: 'yes',
      }),
    )
    const bad = await runLogmerge(['check-config', file])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/natsReplicas: expected an integer >= 1/)
    expect(bad.stderr).toMatch(/natsSkipLost: expected true or false/)
  })
})
