/**
 * logmerge as systemd runs it, with the shipped files: the unit passes `systemd-analyze
 * verify`; its ExecStart command runs in the environment systemd gives a service (cwd /, no
 * terminal, STATE_DIRECTORY, JOURNAL_STREAM naming its stderr, NOTIFY_SOCKET, the watchdog),
 * tells a real notification socket READY=1 / WATCHDOG=1 / STOPPING=1 through systemd-notify,
 * writes journald priorities, reopens on ExecReload's SIGHUP and drains on stop's SIGTERM; and
 * real logrotate with the shipped example rotates the output while the inputs are rotated
 * (create, copytruncate, compress + delaycompress) under running writers, losing nothing.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import {
  closeSync,
  existsSync,
  fstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  writeFileSync,
} from 'node:fs'
import { dirname, join } from 'node:path'
import { promisify } from 'node:util'
import { gunzipSync } from 'node:zlib'
import { afterEach, describe, expect } from 'vitest'
import { defaults } from '../../src/config.js'
import {
  BIN,
  completeLines,
  expectMerged,
  finished,
  Journal,
  pinnedEnv,
  ROOT,
  runLogmerge,
  spawnLogmerge,
  spawnWriter,
  stop,
  test,
  uniqueLines,
  waitFor,
  waitForAll,
} from './helpers.js'

const execFileAsync = promisify(execFile)
const UNIT = join(ROOT, 'deploy', 'logmerge.service')
const LOGROTATE_EXAMPLE = join(ROOT, 'deploy', 'logrotate.d', 'logmerge')
const EXAMPLE_CONFIG = join(ROOT, 'deploy', 'config.example.json')
const SYSTEMD_ANALYZE = ['/usr/bin/systemd-analyze', '/bin/systemd-analyze'].find(existsSync)
const LOGROTATE = ['/usr/sbin/logrotate', '/sbin/logrotate'].find(existsSync) ?? 'logrotate'

// ---------------------------------------------------------------------------------------------
// The unit file
// ---------------------------------------------------------------------------------------------

/** The unit's directives, `Key` -> every value it is given (in order), ignoring sections. */
function directives(text: string): Map<string, string[]> {
  const all = new Map<string, string[]>()
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#') || line.startsWith('[')) continue
    const eq = line.indexOf('=')
    const key = line.slice(0, eq)
    all.set(key, [...(all.get(key) ?? []), line.slice(eq + 1)])
  }
  return all
}

const unitText = (): string => readFileSync(UNIT, 'utf8')

/** The one value of `key` in the shipped unit. */
function one(key: string): string {
  const values = directives(unitText()).get(key) ?? []
  expect(values, `${key}= in the unit`).toHaveLength(1)
  return values[0] as string
}

/** ExecStart's words (no quoting in the shipped unit: checked). */
function execStartWords(): string[] {
  const line = one('ExecStart')
  expect(line).not.toMatch(/["'\\]/)
  return line.split(/\s+/)
}

/** systemd's time span ("40s", "5min", "1min 30s") in milliseconds. */
function timeSpanMs(text: string): number {
  const unit: Record<string, number> = { ms: 1, s: 1000, sec: 1000, min: 60_000, m: 60_000 }
  let total = 0
  for (const m of text.matchAll(/(\d+)\s*([a-z]*)/g)) {
    total += Number(m[1]) * (unit[m[2] || 's'] ?? Number.NaN)
  }
  return total
}

describe('the unit file', () => {
  /** Writes the shipped unit with ExecStart's program replaced by `program`; returns its path. */
  const unitWith = (tmp: string, program: string): string => {
    const [shipped] = execStartWords()
    const path = join(tmp, 'logmerge.service')
    writeFileSync(path, unitText().replace(`ExecStart=${shipped}`, `ExecStart=${program}`))
    return path
  }

  const verify = async (path: string) => {
    try {
      const { stdout, stderr } = await execFileAsync(SYSTEMD_ANALYZE as string, [
        'verify',
        '--man=no',
        path,
      ])
      return { code: 0, output: stdout + stderr }
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string }
      return { code: e.code, output: e.stdout + e.stderr }
    }
  }

  /** CI installs systemd (.ci/run), so only a machine without it may skip, and says why. */
  const needAnalyze = (skip: (note: string) => void) => {
    if (SYSTEMD_ANALYZE) return
    if (process.env.CI) throw new Error('systemd-analyze is missing: .ci/run installs systemd')
    skip('systemd-analyze is not installed here (apt-get install systemd); CI runs this')
  }

  test('systemd-analyze verify passes, with ExecStart naming an existing binary', async ({
    tmp,
    skip,
  }) => {
    needAnalyze(skip)
    const good = await verify(unitWith(tmp, BIN))
    expect(good, good.output).toEqual({ code: 0, output: '' }) // no warning either
    // The check can fail: the same unit naming a missing binary does not pass.
    const bad = await verify(unitWith(tmp, join(tmp, 'no-such-logmerge')))
    expect(bad.code).not.toBe(0)
    expect(bad.output).toContain('no-such-logmerge')
  })

  test('systemd-analyze security rates its exposure at most 2.0 (of 10)', async ({ tmp, skip }) => {
    needAnalyze(skip)
    // --threshold is in tenths: 20 fails the run above an overall exposure of 2.0.
    const { stdout } = await execFileAsync(SYSTEMD_ANALYZE as string, [
      'security',
      '--offline=yes',
      '--threshold=20',
      unitWith(tmp, BIN),
    ])
    expect(stdout).toMatch(/Overall exposure level for logmerge\.service: [01]\.\d/)
  })

  test('it has what the issue asks for', () => {
    const d = directives(unitText())
    const words = execStartWords()
    expect(words.slice(1)).toEqual(['--config', '/etc/logmerge/config.json'])
    expect(one('ExecReload')).toBe('/bin/kill -HUP $MAINPID')
    expect(one('Restart')).toBe('on-failure')
    expect(one('RestartPreventExitStatus')).toBe('2') // a config error is not retried
    // Longer than logmerge's own drain limit, so logmerge gives up (exit 6) before SIGKILL.
    expect(timeSpanMs(one('TimeoutStopSec'))).toBeGreaterThan(defaults.shutdownTimeoutMs)
    expect(one('Type')).toBe('notify')
    expect(one('NotifyAccess')).toBe('all') // systemd-notify is a child process
    expect(one('StateDirectory')).toBe('logmerge')
    expect(one('DynamicUser')).toBe('yes')
    expect(one('SupplementaryGroups')).toBe('adm')
    expect(one('ProtectSystem')).toBe('strict')
    expect(one('ProtectHome')).toBe('yes')
    expect(one('PrivateTmp')).toBe('yes')
    expect(one('NoNewPrivileges')).toBe('yes')
    expect(one('RestrictAddressFamilies')).toBe('AF_UNIX')
    expect(one('CapabilityBoundingSet')).toBe('')
    expect(one('SystemCallFilter')).toBe('@system-service')
    expect(d.has('MemoryDenyWriteExecute')).toBe(false) // V8's JIT needs it off
  })

  test("the example config's outputs are in ReadWritePaths= (ProtectSystem=strict)", () => {
    const writable = one('ReadWritePaths').split(/\s+/)
    const config = JSON.parse(readFileSync(EXAMPLE_CONFIG, 'utf8')) as {
      jobs: { output: string }[]
    }
    for (const { output } of config.jobs) {
      expect(
        writable.some((dir) => output.startsWith(`${dir}/`)),
        `${output} under ${writable}`,
      ).toBe(true)
    }
    // logrotate's example rotates exactly that directory's logs.
    expect(readFileSync(LOGROTATE_EXAMPLE, 'utf8')).toMatch(/^\/var\/log\/logmerge\/\*\.log \{$/m)
  })
})

// ---------------------------------------------------------------------------------------------
// A notification socket, as systemd's
// ---------------------------------------------------------------------------------------------

/**
 * Listens on an AF_UNIX datagram socket like systemd's NOTIFY_SOCKET and prints every message
 * as a JSON line. systemd-notify sends BARRIER=1 with a pipe fd and waits until the manager
 * closes it: closed here too, as systemd does once it has processed what came before.
 */
const NOTIFY_LISTENER = `
import array, json, os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print(json.dumps({"listening": True}), flush=True)
while True:
    msg, anc, flags, addr = s.recvmsg(65536, socket.CMSG_SPACE(64 * 4))
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds = array.array("i")
            fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
            for fd in fds:
                os.close(fd)
    print(json.dumps({"fields": msg.decode().split("\\n")}), flush=True)
`

const others = new Set<ChildProcess>()
afterEach(async () => {
  const all = [...others]
  others.clear()
  await Promise.all(
    all.map(async (p) => {
      if (p.exitCode !== null || p.signalCode !== null) return
      const gone = new Promise((resolve) => p.once('close', resolve))
      p.kill('SIGKILL')
      await gone
    }),
  )
})

interface NotifySocket {
  readonly path: string
  /** Every message so far, each as its fields (`READY=1`, `STATUS=...`). */
  messages(): string[][]
}

async function notifySocket(dir: string): Promise<NotifySocket> {
  const path = join(dir, 'notify.sock')
  const proc = spawn('python3', ['-c', NOTIFY_LISTENER, path], {
    env: pinnedEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  others.add(proc)
  let out = ''
  let err = ''
  proc.stdout.on('data', (b: Buffer) => {
    out += b
  })
  proc.stderr.on('data', (b: Buffer) => {
    err += b
  })
  const parsed = () =>
    out
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { listening?: true; fields?: string[] })
  await waitFor(() => parsed().some((m) => m.listening) || err, { what: 'the notify socket' })
  expect(err, 'python3 notify listener').toBe('')
  return {
    path,
    messages: () => parsed().flatMap((m) => (m.fields ? [m.fields] : [])),
  }
}

// ---------------------------------------------------------------------------------------------
// ExecStart as systemd runs it
// ---------------------------------------------------------------------------------------------

/** The environment systemd gives a DynamicUser= service (systemd.exec(5), "Environment"). */
function serviceEnv(extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return {
    // systemd's default PATH, with the directory of the node running the tests first.
    PATH: `${dirname(process.execPath)}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
    LANG: 'C.UTF-8',
    INVOCATION_ID: '0123456789abcdef0123456789abcdef',
    HOME: '/',
    USER: 'logmerge',
    LOGNAME: 'logmerge',
    SHELL: '/usr/sbin/nologin',
    ...extra,
  }
}

test("the unit's ExecStart under systemd's environment: READY=1, watchdog, journal priorities, ExecReload, stop", async ({
  tmp,
}) => {
  // The service's directories and its config, with relative paths: systemd starts it in /.
  const etc = join(tmp, 'etc')
  const logs = join(tmp, 'log')
  const state = join(tmp, 'state')
  for (const d of [etc, logs, state]) mkdirSync(d)
  for (const f of ['syslog', 'auth.log', 'access.log']) writeFileSync(join(tmp, f), '')
  const configPath = join(etc, 'config.json')
  writeFileSync(
    configPath,
    JSON.stringify({
      logLevel: 'info',
      pollInterval: 100,
      checkpointInterval: 50,
      jobs: [
        { name: 'system', inputs: ['../syslog', '../auth.log'], output: '../log/system.log' },
        {
          name: 'web',
          engine: 'threads',
          threads: 1,
          inputs: ['../access.log', '../not-yet.log'],
          output: '../log/web.log',
        },
      ],
    }),
  )
  const words = execStartWords()
  const argv = words.map((w, i) =>
    i === 0 ? BIN : w === '/etc/logmerge/config.json' ? configPath : w,
  )
  expect(argv).toEqual([BIN, '--config', configPath])

  const notify = await notifySocket(tmp)
  const journalPath = join(tmp, 'journal')
  const journalFd = openSync(journalPath, 'a')
  const st = fstatSync(journalFd, { bigint: true })
  // systemd sets WATCHDOG_PID to the main process's PID before exec: the shell's PID is the
  // PID logmerge will have (exec keeps it, and so does #!/usr/bin/env node).
  const proc = spawn(
    '/bin/sh',
    ['-c', 'WATCHDOG_PID=$$; export WATCHDOG_PID; exec "$@"', 'sh', ...argv],
    {
      cwd: '/',
      env: serviceEnv({
        NOTIFY_SOCKET: notify.path,
        JOURNAL_STREAM: `${st.dev}:${st.ino}`,
        STATE_DIRECTORY: state,
        LOGS_DIRECTORY: logs,
        WATCHDOG_USEC: '400000',
      }),
      // StandardInput=null, StandardOutput=journal, StandardError=inherit (the journal).
      stdio: ['ignore', journalFd, journalFd],
    },
  )
  others.add(proc)
  closeSync(journalFd)
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)))
  const journal = () => readFileSync(journalPath, 'utf8')
  const has = (field: string) => notify.messages().some((m) => m.includes(field))
  const waitOpts = (what: string) => ({
    what: `${what}; journal so far:\n${journal()}`,
    timeout: 30000,
  })

  await waitFor(() => has('READY=1'), waitOpts('READY=1'))
  const ready = notify.messages().find((m) => m.includes('READY=1'))
  expect(ready).toContain('STATUS=following: 2 jobs (system, web)')
  // Ready means following: both outputs are open (created) already.
  expect(existsSync(join(logs, 'system.log')) && existsSync(join(logs, 'web.log'))).toBe(true)

  const system = new Journal()
  const web = new Journal()
  system.append(join(tmp, 'syslog'), uniqueLines('syslog-before', 30))
  system.append(join(tmp, 'auth.log'), uniqueLines('auth-before', 30))
  web.append(join(tmp, 'access.log'), uniqueLines('access-before', 30))
  await waitForAll(join(logs, 'system.log'), system.all, waitOpts('system.log'))
  await waitForAll(join(logs, 'web.log'), web.all, waitOpts('web.log'))

  // The watchdog: WATCHDOG=1 every WATCHDOG_USEC/2 (200 ms).
  await waitFor(
    () => notify.messages().filter((m) => m.includes('WATCHDOG=1')).length >= 3,
    waitOpts('three WATCHDOG=1'),
  )

  // Rotate both outputs away, then ExecReload= exactly as the unit says it.
  for (const name of ['system.log', 'web.log']) {
    renameSync(join(logs, name), join(logs, `${name}.1`))
  }
  const reload = one('ExecReload').replace('$MAINPID', String(proc.pid)).split(/\s+/)
  await execFileAsync(reload[0] as string, reload.slice(1))
  await waitFor(
    () => existsSync(join(logs, 'system.log')) && existsSync(join(logs, 'web.log')),
    waitOpts('outputs reopened'),
  )
  system.append(join(tmp, 'syslog'), uniqueLines('syslog-after', 30))
  web.append(join(tmp, 'access.log'), uniqueLines('access-after', 30))
  await waitForAll(
    join(logs, 'system.log'),
    uniqueLinesOf(system, 'syslog-after'),
    waitOpts('after'),
  )
  await waitForAll(join(logs, 'web.log'), uniqueLinesOf(web, 'access-after'), waitOpts('after'))

  // Stop: systemd sends SIGTERM (KillSignal=); every job drains, exit 0.
  proc.kill('SIGTERM')
  expect(await exited, journal()).toBe(0)
  await waitFor(() => has('STOPPING=1'), waitOpts('STOPPING=1'))

  for (const [name, written] of [
    ['system.log', system],
    ['web.log', web],
  ] as const) {
    const lines = [...completeLines(join(logs, `${name}.1`)), ...completeLines(join(logs, name))]
    expectMerged(lines, written)
    expect(completeLines(join(logs, `${name}.1`)).length).toBeGreaterThan(0)
  }

  // journald's priorities on every line, without the `logmerge:` journald adds itself.
  const lines = journal().split('\n').filter(Boolean)
  for (const line of lines) expect(line).toMatch(/^<[3467]>/)
  expect(lines.filter((l) => l.includes('logmerge:'))).toEqual([])
  expect(lines).toContain('<6>info: ready: following: 2 jobs (system, web)')
  expect(lines).toContain('<6>info: SIGHUP: reopening every output')
  expect(lines).toContain('<6>info: SIGTERM: draining and stopping')
  expect(
    lines.some((l) => /^<4>web: warn: .*not-yet\.log/.test(l)),
    journal(),
  ).toBe(true)

  // The state files are in $STATE_DIRECTORY, and `logmerge status` reads them.
  expect(readdirSync(state).sort()).toEqual([
    'system.log.logmerge-state.json',
    'web.log.logmerge-state.json',
  ])
  const status = await runLogmerge([
    'status',
    '--state',
    join(state, 'web.log.logmerge-state.json'),
  ])
  expect(status.code, status.stderr).toBe(0)
  expect(status.stdout.toString('utf8')).toContain(join(tmp, 'access.log'))
})

/** The lines of `journal` whose names start with `prefix`. */
const uniqueLinesOf = (journal: Journal, prefix: string): string[] =>
  journal.all.filter((l) => l.startsWith(`${prefix}-`))

describe('diagnostics: journald priorities only on the journal, colour only on a terminal', () => {
  test('JOURNAL_STREAM naming stderr: priorities; naming another file: plain lines', async ({
    tmp,
  }) => {
    const errPath = join(tmp, 'stderr')
    const fd = openSync(errPath, 'a')
    const st = fstatSync(fd, { bigint: true })
    const missing = join(tmp, 'missing.log')
    const run = (env: NodeJS.ProcessEnv) =>
      new Promise<number | null>((resolve) => {
        const p = spawn(BIN, ['--once', missing], {
          env: pinnedEnv(env),
          stdio: ['ignore', 'ignore', fd],
        })
        p.once('exit', resolve)
      })
    expect(await run({ JOURNAL_STREAM: `${st.dev}:${st.ino}` })).toBe(3)
    const journald = readFileSync(errPath, 'utf8')
    expect(journald.split('\n').filter(Boolean).length).toBeGreaterThan(0)
    for (const line of journald.split('\n').filter(Boolean))
      expect(line).toMatch(/^<[34]>(warn|error): /)
    expect(journald).toContain(`<3>error: could not read 1 input(s): ${missing}`)

    // Inherited by a process whose stderr went elsewhere: it is not the journal's stream.
    writeFileSync(errPath, '')
    expect(await run({ JOURNAL_STREAM: `${st.dev}:${st.ino + 1n}` })).toBe(3)
    expect(readFileSync(errPath, 'utf8')).toContain(
      `logmerge: error: could not read 1 input(s): ${missing}`,
    )
    closeSync(fd)
  })

  test('usage errors under the journal get the error priority', async ({ tmp }) => {
    const errPath = join(tmp, 'stderr')
    const fd = openSync(errPath, 'a')
    const st = fstatSync(fd, { bigint: true })
    const code = await new Promise<number | null>((resolve) => {
      const p = spawn(BIN, ['--no-such-flag'], {
        env: pinnedEnv({ JOURNAL_STREAM: `${st.dev}:${st.ino}` }),
        stdio: ['ignore', 'ignore', fd],
      })
      p.once('exit', resolve)
    })
    closeSync(fd)
    expect(code).toBe(2)
    const lines = readFileSync(errPath, 'utf8').split('\n').filter(Boolean)
    expect(lines[0]).toBe("<3>error: unknown option '--no-such-flag'")
    for (const line of lines) expect(line).toMatch(/^<3>/)
  })

  /** Runs logmerge on a pseudo-terminal with util-linux's script(1); returns what it printed. */
  const onTerminal = async (tmp: string, env: NodeJS.ProcessEnv): Promise<string> => {
    const missing = join(tmp, 'missing.log')
    const { stdout } = await execFileAsync(
      'script',
      ['--quiet', '--return', '--command', `${BIN} --once ${missing}`, '/dev/null'],
      { env: pinnedEnv({ TERM: 'xterm', ...env }) },
    ).catch((err: { stdout: string }) => err) // exit 3: the missing input
    return stdout
  }

  test('a terminal gets coloured level words; NO_COLOR or TERM=dumb turn colour off', async ({
    tmp,
  }) => {
    const coloured = await onTerminal(tmp, {})
    expect(coloured).toContain('logmerge: \x1b[31merror:\x1b[0m could not read 1 input(s)')
    expect(coloured).toContain('\x1b[33mwarn:\x1b[0m')
    for (const env of [{ NO_COLOR: '1' }, { TERM: 'dumb' }]) {
      const plain = await onTerminal(tmp, env)
      expect(plain).toContain('logmerge: error: could not read 1 input(s)')
      expect(plain).not.toContain('\x1b[')
    }
  })
})

// ---------------------------------------------------------------------------------------------
// logrotate
// ---------------------------------------------------------------------------------------------

/** A file and its rotated generations, oldest first, decompressed: every line it held. */
function generations(path: string): string[] {
  const dir = dirname(path)
  const base = path.slice(dir.length + 1)
  const numbered = readdirSync(dir)
    .map((name) => ({
      name,
      m: new RegExp(`^${base.replaceAll('.', '\\.')}\\.(\\d+)(\\.gz)?$`).exec(name),
    }))
    .filter((x) => x.m !== null)
    .sort((a, b) => Number(b.m?.[1]) - Number(a.m?.[1]))
  const lines: string[] = []
  for (const { name } of numbered) {
    const bytes = readFileSync(join(dir, name))
    const text = (name.endsWith('.gz') ? gunzipSync(bytes) : bytes).toString('latin1')
    lines.push(...text.split('\n').slice(0, -1))
  }
  return [...lines, ...completeLines(path)]
}

test('logrotate, as shipped for the output and the three ways for inputs, under running writers: nothing lost', async ({
  tmp,
}) => {
  const inputs = join(tmp, 'in')
  const outputs = join(tmp, 'out')
  mkdirSync(inputs)
  mkdirSync(outputs)
  const created = join(inputs, 'created.log')
  const copied = join(inputs, 'copied.log')
  const compressed = join(inputs, 'compressed.log')
  for (const f of [created, copied, compressed]) writeFileSync(f, '')
  const merged = join(outputs, 'merged.log')
  const config = join(tmp, 'config.json')
  writeFileSync(
    config,
    JSON.stringify({
      inputs: ['in/created.log', 'in/copied.log', 'in/compressed.log'],
      output: 'out/merged.log',
      pollInterval: 100,
      checkpointInterval: 50,
      logLevel: 'info',
    }),
  )
  const lm = spawnLogmerge(['--config', config], { cwd: tmp })
  await waitFor(() => /ready/.test(lm.stderr()), { proc: lm, what: 'ready' })

  // The shipped example, for this directory, with the test's process in the postrotate.
  const shipped = readFileSync(LOGROTATE_EXAMPLE, 'utf8')
  const reload = 'systemctl reload logmerge.service >/dev/null 2>&1 || true'
  expect(shipped).toContain(reload)
  const outputConf = shipped
    .replace('/var/log/logmerge/*.log', `${outputs}/*.log`)
    .replace(reload, `kill -HUP ${lm.pid}`)
  // The inputs: rotated as their programs' own logrotate files would.
  const inputConf = [
    `${created} {\n  create\n  rotate 20\n  missingok\n}`,
    `${copied} {\n  copytruncate\n  rotate 20\n  missingok\n}`,
    `${compressed} {\n  create\n  compress\n  delaycompress\n  rotate 20\n  missingok\n}`,
  ].join('\n')
  // logrotate ignores a config that group or others may write.
  writeFileSync(join(tmp, 'output.conf'), outputConf, { mode: 0o644 })
  writeFileSync(join(tmp, 'inputs.conf'), `${inputConf}\n`, { mode: 0o644 })
  const logrotate = (conf: string) =>
    execFileAsync(LOGROTATE, ['-f', '-s', join(tmp, `${conf}.state`), join(tmp, conf)], {
      env: pinnedEnv(),
    })

  const writers = [
    spawnWriter(created, 'created', 1500, 2),
    spawnWriter(copied, 'copied', 1500, 2),
    spawnWriter(compressed, 'compressed', 1500, 2),
  ]
  let rounds = 0
  while (writers.some((w) => !w.hasExited) || rounds < 4) {
    await logrotate('inputs.conf')
    await logrotate('output.conf')
    rounds++
    await new Promise((r) => setTimeout(r, 300))
  }
  await Promise.all(writers.map(finished))
  expect(rounds).toBeGreaterThanOrEqual(4)

  // What the files hold, every generation (compressed ones too): an oracle apart from logmerge.
  const sources = [
    { file: created, writer: writers[0] },
    { file: copied, writer: writers[1] },
    { file: compressed, writer: writers[2] },
  ]
  const onDisk = new Map(sources.map(({ file }) => [file, new Set(generations(file))]))
  for (const { file, writer } of sources) {
    if (file === copied) continue
    // rename + create loses nothing: every line the writer wrote is on disk.
    const held = onDisk.get(file) as Set<string>
    expect(writer?.lines.filter((l) => !held.has(l))).toEqual([])
  }
  expect(existsSync(`${copied}.1`) && existsSync(`${created}.1`)).toBe(true) // rotations ran
  expect(readdirSync(inputs).some((n) => n.endsWith('.gz'))).toBe(true) // compress did run
  expect(existsSync(`${merged}.2.gz`)).toBe(true) // and the output's delaycompress too

  const allOnDisk = sources.flatMap(({ file, writer }) =>
    (writer?.lines ?? []).filter((l) => onDisk.get(file)?.has(l)),
  )
  await waitFor(
    () => {
      const have = new Set(generations(merged))
      return allOnDisk.every((l) => have.has(l))
    },
    { proc: lm, what: 'every line on disk in out/merged.log*', timeout: 60000 },
  )
  await stop(lm)
  const output = generations(merged)
  const inOutput = new Set(output)
  const journal = new Journal()
  for (const { file, writer } of sources) {
    // copytruncate: a line written between logrotate's copy and its truncate is in neither
    // file (logrotate's loss, docs/checkpoints.md); logmerge may have read it just before the
    // truncate. So: every line on disk exactly once, any such line at most once, in order.
    const held = onDisk.get(file) as Set<string>
    journal.record(
      file,
      (writer?.lines ?? []).filter((l) => held.has(l) || inOutput.has(l)),
    )
  }
  expectMerged(output, journal)
  expect(lm.stderr()).toMatch(/SIGHUP: reopening the output/)
})
