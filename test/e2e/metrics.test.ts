/**
 * Metrics (issue 19) on a spawned bin/logmerge, every engine: lines appended to an input move
 * its counters by exactly that many, at /metrics and in the metrics file, and Debian's
 * `promtool check metrics` accepts both with no lint problem; rotations, copytruncate copies
 * and truncations are counted for their input; a full output (EFBIG, the real RLIMIT_FSIZE)
 * shows as write errors, a pause and a lag that grows, then clears. A bad address (taken, not
 * this machine's, not an address) is one line and exit 2. The inputs over
 * --metrics-max-inputs are summed under input="other". The example alert rules pass
 * `promtool check rules` and their own `promtool test rules`; the drop-in that lets the
 * hardened unit listen passes `systemd-analyze verify` and opens only what it says.
 */
import { execFile, execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterEach, describe, expect } from 'vitest'
import {
  BIN,
  type Child,
  ENGINES,
  follow,
  Journal,
  logrotateFor,
  ROOT,
  runLogmerge,
  stop,
  test,
  uniqueLines,
  waitFor,
  waitForAll,
} from './helpers.js'

const execFileAsync = promisify(execFile)
const PROMTOOL = ['/usr/bin/promtool', '/usr/local/bin/promtool'].find(existsSync)
const SYSTEMD_ANALYZE = ['/usr/bin/systemd-analyze', '/bin/systemd-analyze'].find(existsSync)
const UNIT = join(ROOT, 'deploy', 'logmerge.service')
const DROP_IN = join(ROOT, 'deploy', 'logmerge.service.d', 'metrics-listen.conf')
const ALERTS = join(ROOT, 'deploy', 'logmerge-alerts.yml')
const ALERTS_TEST = join(ROOT, 'test', 'e2e', 'logmerge-alerts.test.yml')

/** Short intervals keep the file fast; --threads 2 matches the 2-core CI machines. */
const FAST = ['--checkpoint-interval', '50', '--poll-interval', '100', '--threads', '2']

/** CI installs promtool (.ci/run: Debian's prometheus), so only a machine without it may skip. */
function needPromtool(skip: (note: string) => void): string {
  if (PROMTOOL) return PROMTOOL
  if (process.env.CI) throw new Error('promtool is missing: .ci/run installs prometheus')
  skip('promtool is not installed here (apt-get install prometheus); CI runs this')
  return ''
}

async function promtool(args: readonly string[], stdin?: string) {
  const child = execFile(PROMTOOL as string, args)
  child.stdin?.end(stdin ?? '')
  let output = ''
  child.stdout?.on('data', (d) => (output += d))
  child.stderr?.on('data', (d) => (output += d))
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
  return { code, output }
}

// ---------------------------------------------------------------------------------------------
// Reading the exposition
// ---------------------------------------------------------------------------------------------

/** The base URL of a logmerge started with `--metrics-listen 127.0.0.1:0 --log-level info`. */
async function metricsUrl(lm: Child): Promise<string> {
  const m = await waitFor(() => /metrics: serving (http:\/\/\S+\/metrics)/.exec(lm.stderr()), {
    proc: lm,
    what: 'the metrics address',
  })
  return m[1] as string
}

async function scrape(url: string): Promise<string> {
  const res = await fetch(url)
  expect(res.status).toBe(200)
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
  return res.text()
}

/** The value of the sample `name` whose labels include `labels`, or undefined. */
function sample(
  text: string,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (!m || m[1] !== name) continue
    const have = new Map<string, string>()
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) {
      have.set(
        l[1] as string,
        (l[2] as string).replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c)),
      )
    }
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) return Number(m[3])
  }
  return undefined
}

const fileText = (path: string): string => {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return ''
  }
}

/** Waits until `read()`'s sample reaches `want`, then expects exactly `want` (never more). */
async function expectReaches(
  read: () => Promise<string> | string,
  name: string,
  labels: Record<string, string>,
  want: number,
  lm: Child,
): Promise<void> {
  const got = await waitFor(
    async () => {
      const v = sample(await read(), name, labels)
      return v !== undefined && v >= want ? { v } : null
    },
    { proc: lm, what: `${name}${JSON.stringify(labels)} >= ${want}` },
  )
  expect(got.v, `${name} ${JSON.stringify(labels)}`).toBe(want)
}

const bytesOf = (lines: readonly string[]): number =>
  lines.reduce((n, l) => n + Buffer.byteLength(l) + 1, 0)

// ---------------------------------------------------------------------------------------------

describe.each(ENGINES)('engine %s', (engine) => {
  test(`${engine}: N lines move the input's counters by exactly N (and their bytes), at /metrics and in the metrics file; promtool accepts both; a rename rotation, a copytruncate and its copy are counted`, async ({
    tmp,
    skip,
  }) => {
    needPromtool(skip)
    const a = join(tmp, 'a.log')
    const b = join(tmp, 'b.log')
    writeFileSync(a, '')
    writeFileSync(b, '')
    const prom = join(tmp, 'textfile', 'logmerge.prom')
    mkdirSync(join(tmp, 'textfile'))
    const metricsArgs = ['--metrics-listen', '127.0.0.1:0', '--metrics-file', prom]
    const { lm, out } = await follow({
      cwd: tmp,
      engine,
      inputs: ['a.log', 'b.log'],
      probe: [a, b],
      args: [...FAST, ...metricsArgs, '--log-level', 'info'],
    })
    const url = await metricsUrl(lm)
    const fromWeb = () => scrape(url)
    const fromFile = () => fileText(prom)
    const job = { logmerge_job: 'main' }
    const A = { ...job, input: a }
    const B = { ...job, input: b }
    const LINES = 'logmerge_input_lines_total'
    const BYTES = 'logmerge_input_bytes_total'

    // The probes that came out are all there is so far: the counter says exactly that many.
    const probes = (name: string) =>
      fileText(out)
        .split('\n')
        .filter((l) => l.startsWith(`probe-${name}-`))
    const start = probes('a.log')
    await expectReaches(fromWeb, LINES, A, start.length, lm)
    await expectReaches(fromWeb, BYTES, A, bytesOf(start), lm)

    // N lines, in several writes.
    const lines = uniqueLines('metric', 1000)
    const journal = new Journal()
    for (let i = 0; i < lines.length; i += 250) journal.append(a, lines.slice(i, i + 250))
    await waitForAll(out, lines, { proc: lm })
    await expectReaches(fromWeb, LINES, A, start.length + lines.length, lm)
    await expectReaches(fromWeb, BYTES, A, bytesOf(start) + bytesOf(lines), lm)
    await expectReaches(fromFile, LINES, A, start.length + lines.length, lm)
    await expectReaches(fromFile, BYTES, A, bytesOf(start) + bytesOf(lines), lm)
    expect(sample(await fromWeb(), LINES, B)).toBe(probes('b.log').length)
    const outputBytes = sample(await fromWeb(), 'logmerge_output_bytes_total', job) as number
    expect(outputBytes).toBeGreaterThanOrEqual(bytesOf(start) + bytesOf(lines))
    // Files open: as of the last refresh (every 5 poll intervals; the threads answer a message).
    await expectReaches(fromWeb, 'logmerge_input_files', { ...job, state: 'open' }, 2, lm)
    expect(sample(await fromWeb(), 'logmerge_job_info', { ...job, engine })).toBe(1)
    // prom-client's default metrics, the event-loop lag among them.
    expect(sample(await fromWeb(), 'nodejs_eventloop_lag_p99_seconds')).toBeGreaterThan(0)
    expect(sample(await fromWeb(), 'process_cpu_seconds_total')).toBeGreaterThan(0)

    // promtool: the format and its lint rules (names, units, _total on counters only).
    for (const [what, text] of [
      ['/metrics', await fromWeb()],
      ['the metrics file', fromFile()],
    ] as const) {
      const checked = await promtool(['check', 'metrics'], text)
      expect(checked, `promtool check metrics on ${what}`).toEqual({ code: 0, output: '' })
    }

    // a.log rotated by rename + create: one rotation, and the new file's lines counted too.
    renameSync(a, `${a}.1`)
    const after = uniqueLines('rotated', 40)
    journal.append(a, after)
    await waitForAll(out, after, { proc: lm })
    await expectReaches(fromWeb, 'logmerge_input_rotations_total', A, 1, lm)
    await expectReaches(fromWeb, LINES, A, start.length + lines.length + after.length, lm)

    // b.log by logrotate's copytruncate: a truncation, and the copy found (and counted for b).
    const bLines = uniqueLines('copied', 30)
    journal.append(b, bLines)
    await waitForAll(out, bLines, { proc: lm })
    const rotate = await logrotateFor(tmp, b, ['copytruncate', 'rotate 5'])
    await rotate()
    const more = uniqueLines('truncated', 20)
    journal.append(b, more)
    await waitForAll(out, more, { proc: lm })
    await expectReaches(fromWeb, 'logmerge_input_truncations_total', B, 1, lm)
    await expectReaches(fromWeb, 'logmerge_input_copytruncate_copies_total', B, 1, lm)
    const bProbes = probes('b.log').length
    await expectReaches(fromWeb, LINES, B, bProbes + bLines.length + more.length, lm)
    expect(sample(await fromWeb(), 'logmerge_input_truncations_total', A)).toBe(0)

    await stop(lm)
    // The file's last version, written at the end, has every job's final counts.
    expect(sample(fromFile(), LINES, A)).toBe(start.length + lines.length + after.length)
    expect(sample(fromFile(), LINES, B)).toBe(bProbes + bLines.length + more.length)
  })

  test(`${engine}: a full output (EFBIG) shows as write errors, a pause and a growing lag; all clear once the limit is raised`, async ({
    tmp,
  }) => {
    const a = join(tmp, 'a.log')
    writeFileSync(a, '')
    const { lm, out } = await follow({
      cwd: tmp,
      engine,
      inputs: ['a.log'],
      probe: [a],
      args: [...FAST, '--metrics-listen', '127.0.0.1:0', '--log-level', 'info'],
    })
    const url = await metricsUrl(lm)
    const job = { logmerge_job: 'main' }
    const A = { ...job, input: a }
    const at = async (name: string, labels: Record<string, string> = job) =>
      sample(await scrape(url), name, labels) ?? Number.NaN
    expect(await at('logmerge_output_paused')).toBe(0)
    expect(await at('logmerge_output_write_errors_total', { ...job, code: 'EFBIG' })).toBe(0)

    execFileSync('prlimit', ['--pid', String(lm.pid), `--fsize=${statSync(out).size + 2048}:`])
    const stuck = uniqueLines(`stuck-${'x'.repeat(80)}`, 100)
    const journal = new Journal()
    journal.append(a, stuck)
    await waitFor(async () => (await at('logmerge_output_paused')) === 1, {
      proc: lm,
      what: 'paused = 1',
    })
    // The pause began before this and cannot end before the limit is raised: it lasts at least
    // from here to there. (Not "over 1 s because the lag reached 1 s": the lag's seconds count
    // from the last look that found the input caught up, up to a refresh before the bytes came.)
    const sawPaused = Date.now()
    expect(
      await at('logmerge_output_write_errors_total', { ...job, code: 'EFBIG' }),
    ).toBeGreaterThan(0)
    expect(await at('logmerge_output_pauses_total')).toBe(1)
    // The lag: bytes not in the output, and seconds that grow while nothing moves.
    await waitFor(async () => (await at('logmerge_input_lag_bytes', A)) > 0, {
      proc: lm,
      what: 'lag bytes > 0',
    })
    await waitFor(async () => (await at('logmerge_input_lag_seconds', A)) >= 1, {
      proc: lm,
      what: 'lag seconds >= 1',
    })

    const raised = Date.now()
    execFileSync('prlimit', ['--pid', String(lm.pid), '--fsize=unlimited:'])
    await waitForAll(out, stuck, { proc: lm })
    await waitFor(async () => (await at('logmerge_output_paused')) === 0, {
      proc: lm,
      what: 'paused = 0',
    })
    await waitFor(async () => (await at('logmerge_input_lag_bytes', A)) === 0, {
      proc: lm,
      what: 'lag bytes = 0',
    })
    expect(await at('logmerge_input_lag_seconds', A)).toBe(0)
    // 1 ms for the sum of the counter's increments in floating point.
    expect(await at('logmerge_output_paused_seconds_total')).toBeGreaterThanOrEqual(
      (raised - sawPaused - 1) / 1000,
    )
    expect(await at('logmerge_output_pauses_total')).toBe(1)
    await stop(lm)
  })

  test(`${engine}: --metrics-listen on an address already in use: one line, exit 2, nothing read or written`, async ({
    tmp,
  }) => {
    const taken = await listenSomewhere()
    const port = (taken.address() as { port: number }).port
    const a = join(tmp, 'a.log')
    writeFileSync(a, 'one\n')
    const out = join(tmp, 'out.log')
    const ran = await runLogmerge(
      ['--engine', engine, '--metrics-listen', `127.0.0.1:${port}`, '-o', out, a],
      { cwd: tmp },
    )
    expect(ran.code, ran.stderr).toBe(2)
    expect(ran.stderr).toBe(
      `logmerge: error: cannot listen on 127.0.0.1:${port} (--metrics-listen): the address is already in use (choose another port, or stop what listens there (ss -ltnp 'sport = :${port}'))\n`,
    )
    expect(existsSync(out)).toBe(false)
  })
})

// ---------------------------------------------------------------------------------------------

const servers: Server[] = []
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))))
})

/** A TCP server on a free loopback port, closed after the test. */
async function listenSomewhere(): Promise<Server> {
  const server = createServer()
  servers.push(server)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return server
}

describe('bad metrics options', () => {
  test.each([
    ['nonsense', /expected ADDRESS:PORT.*\(no port\), got `nonsense`/],
    ['127.0.0.1:99999', /the port must be 0 to 65535, got "99999"/],
    ['::1:9775', /put an IPv6 address in brackets: \[::1\]:9775/],
    ['300.1.2.3:9775', /"300.1.2.3" is neither an IP address nor a host name/],
    [':9775', /the address is missing/],
  ])('--metrics-listen %s: one line naming the flag, exit 2', async (value, why) => {
    const ran = await runLogmerge(['--metrics-listen', value, '-o', '-', 'README.md'])
    expect(ran.code, ran.stderr).toBe(2)
    expect(ran.stderr.trimEnd().split('\n')).toHaveLength(1)
    expect(ran.stderr).toMatch(/^logmerge: error: `--metrics-listen`: /)
    expect(ran.stderr).toMatch(why)
  })

  test('an address this machine does not have (TEST-NET-1): one line, exit 2', async () => {
    const ran = await runLogmerge(['--metrics-listen', '192.0.2.1:9775', '-o', '-', 'README.md'])
    expect(ran.code, ran.stderr).toBe(2)
    expect(ran.stderr).toBe(
      'logmerge: error: cannot listen on 192.0.2.1:9775 (--metrics-listen): no interface of this machine has that address (use 127.0.0.1, or an address `ip -brief address` lists)\n',
    )
  })

  test('a metrics file in a directory that does not exist: one line, exit 2', async ({ tmp }) => {
    const prom = join(tmp, 'no-such-dir', 'logmerge.prom')
    const ran = await runLogmerge(['--metrics-file', prom, '-o', join(tmp, 'out.log'), 'README.md'])
    expect(ran.code, ran.stderr).toBe(2)
    expect(ran.stderr.trimEnd().split('\n')).toHaveLength(1)
    expect(ran.stderr).toMatch(
      /cannot write metrics file .*logmerge\.prom: its directory .* does not exist/,
    )
  })

  test('in a config file: the keys are checked (top level only), check-config says where', async ({
    tmp,
  }) => {
    const config = join(tmp, 'config.json')
    writeFileSync(
      config,
      JSON.stringify({
        metricsListen: 'localhost',
        metricsMaxInputs: -1,
        jobs: [{ inputs: ['a.log'], output: 'out.log', metricsFile: 'm.prom' }],
      }),
    )
    const ran = await runLogmerge(['check-config', config])
    expect(ran.code, ran.stderr).toBe(2)
    const lines = ran.stderr.trimEnd().split('\n')
    expect(lines).toEqual([
      `logmerge: error: ${config}: metricsListen: expected ADDRESS:PORT, like 127.0.0.1:9775, [::1]:9775 or localhost:9775 (no port), got "localhost"`,
      `logmerge: error: ${config}: metricsMaxInputs: expected an integer >= 0 (inputs), got -1`,
      `logmerge: error: ${config}: jobs[0].metricsFile: allowed only at the top level of the file: it applies to the whole daemon, every job`,
    ])
    writeFileSync(
      config,
      JSON.stringify({
        metricsListen: '127.0.0.1:9775',
        metricsFile: 'm.prom',
        jobs: [
          { inputs: ['a.log'], output: 'a-out.log' },
          { inputs: ['b.log'], output: 'b-out.log' },
        ],
      }),
    )
    const ok = await runLogmerge(['check-config', config])
    expect(ok.code, ok.stderr).toBe(0)
    expect(ok.stdout.toString()).toContain(
      `metrics: http://127.0.0.1:9775/metrics, file ${join(tmp, 'm.prom')} (at most 100 inputs a job)\n`,
    )
  })
})

describe.each(['async', 'threads'])('engine %s, restarted', (engine) => {
  test(`${engine}: a restart counts from 0: the lines the last run wrote (the state file's totals) are not counted again`, async ({
    tmp,
  }) => {
    const a = join(tmp, 'a.log')
    writeFileSync(a, '')
    const args = [...FAST, '--metrics-listen', '127.0.0.1:0', '--log-level', 'info']
    const first = await follow({ cwd: tmp, engine, inputs: ['a.log'], probe: [a], args })
    const journal = new Journal()
    const before = uniqueLines('first-run', 100)
    journal.append(a, before)
    await waitForAll(first.out, before, { proc: first.lm })
    await stop(first.lm)
    const probes = () =>
      fileText(first.out)
        .split('\n')
        .filter((l) => l.startsWith('probe-a.log-'))
    const firstProbes = probes().length

    const second = await follow({ cwd: tmp, engine, inputs: ['a.log'], probe: [a], args })
    const url = await metricsUrl(second.lm)
    const A = { logmerge_job: 'main', input: a }
    const secondProbes = probes().length - firstProbes
    await expectReaches(() => scrape(url), 'logmerge_input_lines_total', A, secondProbes, second.lm)
    const after = uniqueLines('second-run', 30)
    journal.append(a, after)
    await waitForAll(second.out, after, { proc: second.lm })
    await expectReaches(
      () => scrape(url),
      'logmerge_input_lines_total',
      A,
      secondProbes + after.length,
      second.lm,
    )
    await stop(second.lm)
  })
})

describe.each(['async', 'top-down'])('engine %s, --order time', (engine) => {
  test(`${engine}: a line written after a later one is counted late for its input`, async ({
    tmp,
  }) => {
    const a = join(tmp, 'a.log')
    const b = join(tmp, 'b.log')
    writeFileSync(a, '')
    writeFileSync(b, '')
    // --from start: the files are empty, so no line can fall before a start point taken after
    // it was written (with --from end, a line appended before the start-up look is skipped).
    const args = ['--from', 'start', '--order', 'time', '--reorder-window', '0']
    args.push('--metrics-listen', '127.0.0.1:0')
    const { lm, out } = await follow({
      cwd: tmp,
      engine,
      inputs: ['a.log', 'b.log'],
      args: [...FAST, ...args, '--log-level', 'info'],
    })
    const url = await metricsUrl(lm)
    const late = (input: string) =>
      expectReaches(() => scrape(url), 'logmerge_input_late_lines_total', { input }, 1, lm)
    const journal = new Journal()
    journal.append(a, ['2026-12-06T12:00:00Z a-first'])
    await waitForAll(out, ['2026-12-06T12:00:00Z a-first'], { proc: lm })
    // An hour earlier than what is already out: written, and counted late for b.log.
    journal.append(b, ['2026-12-06T11:00:00Z b-earlier'])
    await waitForAll(out, ['2026-12-06T11:00:00Z b-earlier'], { proc: lm })
    await late(b)
    expect(sample(await scrape(url), 'logmerge_input_late_lines_total', { input: a })).toBe(0)
    await stop(lm)
  })
})

describe('the bound on input series', () => {
  test('over --metrics-max-inputs, inputs are summed under input="other" (their lines exactly); other paths 404, other methods 405', async ({
    tmp,
  }) => {
    const names = ['a', 'b', 'c', 'd'].map((n) => join(tmp, `${n}.log`))
    for (const p of names) writeFileSync(p, '')
    const { lm, out } = await follow({
      cwd: tmp,
      engine: 'async',
      inputs: names,
      probe: names,
      args: [
        ...FAST,
        '--metrics-listen',
        '127.0.0.1:0',
        '--metrics-max-inputs',
        '2',
        '--log-level',
        'info',
      ],
    })
    const url = await metricsUrl(lm)
    // Only /metrics, only GET and HEAD.
    expect((await fetch(url.replace(/\/metrics$/, '/'))).status).toBe(404)
    expect((await fetch(url, { method: 'POST' })).status).toBe(405)
    const head = await fetch(url, { method: 'HEAD' })
    expect([head.status, await head.text()]).toEqual([200, ''])
    const job = { logmerge_job: 'main' }
    const labelled = (text: string) =>
      new Set(
        [...text.matchAll(/^logmerge_input_lines_total\{[^}]*input="([^"]*)"/gm)].map((m) => m[1]),
      )
    const text = await scrape(url)
    expect(labelled(text).size).toBe(3) // two inputs of their own, and "other"
    expect(labelled(text).has('other')).toBe(true)
    expect(sample(text, 'logmerge_inputs_summed', job)).toBe(2)
    const summed = names.filter((n) => !labelled(text).has(n))
    expect(summed).toHaveLength(2)
    const before = sample(text, 'logmerge_input_lines_total', { ...job, input: 'other' }) as number
    const journal = new Journal()
    const lines = summed.flatMap((p, i) => {
      const l = uniqueLines(`summed${i}`, 50)
      journal.append(p, l)
      return l
    })
    await waitForAll(out, lines, { proc: lm })
    await expectReaches(
      () => scrape(url),
      'logmerge_input_lines_total',
      { ...job, input: 'other' },
      before + 100,
      lm,
    )
    await stop(lm)
  })
})

describe('deploy/: alert rules and the drop-in for --metrics-listen', () => {
  test('the example alert rules pass promtool check rules and their unit tests (promtool test rules)', async ({
    skip,
  }) => {
    const tool = needPromtool(skip)
    const { stdout } = await execFileAsync(tool, ['check', 'rules', ALERTS])
    expect(stdout).toMatch(/SUCCESS: 3 rules found/)
    const tested = await execFileAsync(tool, ['test', 'rules', ALERTS_TEST])
    expect(tested.stdout).toMatch(/SUCCESS/)
  })

  test('the unit with the drop-in passes systemd-analyze verify, and the drop-in opens the network to loopback only', async ({
    tmp,
    skip,
  }) => {
    if (!SYSTEMD_ANALYZE) {
      if (process.env.CI) throw new Error('systemd-analyze is missing: .ci/run installs systemd')
      skip('systemd-analyze is not installed here (apt-get install systemd); CI runs this')
    }
    const analyze = SYSTEMD_ANALYZE as string
    const unit = join(tmp, 'logmerge.service')
    const shipped = /^ExecStart=(\S+)/m.exec(readFileSync(UNIT, 'utf8'))?.[1] as string
    writeFileSync(
      unit,
      readFileSync(UNIT, 'utf8').replace(`ExecStart=${shipped}`, `ExecStart=${BIN}`),
    )
    const security = async () =>
      (await execFileAsync(analyze, ['security', '--offline=yes', '--threshold=20', unit])).stdout
    const without = await security()
    expect(without).toMatch(/✓ PrivateNetwork=/)
    expect(without).toMatch(/✓ RestrictAddressFamilies=~AF_\(INET\|INET6\)/)

    mkdirSync(join(tmp, 'logmerge.service.d'))
    const dropIn = join(tmp, 'logmerge.service.d', 'metrics-listen.conf')
    writeFileSync(dropIn, readFileSync(DROP_IN, 'utf8'))
    const verified = await execFileAsync(analyze, ['verify', '--man=no', unit])
    expect(verified.stdout + verified.stderr).toBe('')
    // It is read: the same drop-in with a misspelt key is warned about.
    writeFileSync(dropIn, `${readFileSync(DROP_IN, 'utf8')}PrivateNetwrk=no\n`)
    const misspelt = await execFileAsync(analyze, ['verify', '--man=no', unit])
    expect(misspelt.stderr).toMatch(/metrics-listen\.conf:\d+: Unknown key 'PrivateNetwrk'/)
    writeFileSync(dropIn, readFileSync(DROP_IN, 'utf8'))
    const withDropIn = await security()
    expect(withDropIn).toMatch(/✗ PrivateNetwork=/)
    expect(withDropIn).toMatch(/✗ RestrictAddressFamilies=~AF_\(INET\|INET6\)/)
    expect(withDropIn).toMatch(/IP address allow list with only localhost entries/)
    // Still well within the unit's bound (the test of the unit itself: at most 2.0).
    expect(withDropIn).toMatch(/Overall exposure level for logmerge\.service: 1\.\d/)
  })
})
