/**
 * Faults of the output, for every engine, on a spawned bin/logmerge (issue 7, cases 6 to 9):
 * the file size limit (EFBIG: the real RLIMIT_FSIZE of the running process, set with prlimit as
 * `ulimit -f` would), a full disk (ENOSPC: a small tmpfs, filled and freed; skipped, and said so,
 * where mounting is not allowed), the output deleted, moved, replaced or truncated while
 * running, an output or state file that cannot be written where it is, and the output reached
 * through a symlink. Every line written must come out exactly once, each file's order kept.
 */
import { execFile, execFileSync } from 'node:child_process'
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmdirSync,
  rmSync,
  statfsSync,
  statSync,
  symlinkSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, dirname, join } from 'node:path'
import { promisify } from 'node:util'
import { describe, expect } from 'vitest'
import {
  BIN,
  completeLines,
  ENGINES,
  expectMerged,
  follow,
  Journal,
  pinnedEnv,
  runLogmerge,
  spawnLogmerge,
  stop,
  test,
  uniqueLines,
  waitFor,
  waitForAll,
} from './helpers.js'

/** Short intervals keep the file fast; --threads 2 matches the 2-core CI machines. */
const FAST = ['--checkpoint-interval', '50', '--poll-interval', '100', '--threads', '2']
const KiB = 1024

const STALLED = (code: string) =>
  new RegExp(`cannot write output .*out\\.log: .*\\(${code}\\)`, 'g')
const RESUMED = /output .*out\.log is writable again; resumed/g

const count = (text: string, re: RegExp): number => text.match(re)?.length ?? 0

/** Lines of about 100 bytes, so a few hundred fill a few pages. */
const longLines = (name: string, n: number): string[] => uniqueLines(`${name}-${'x'.repeat(80)}`, n)

/** The default state path for an output (`.<name>.logmerge-state.json` beside it). */
const stateOf = (out: string): string => join(dirname(out), `.${basename(out)}.logmerge-state.json`)

/** `tmp`/real holding a.log ("a-1"), and `tmp`/link a relative symlink to it; returns real. */
function realWithLink(tmp: string): string {
  const real = join(tmp, 'real')
  mkdirSync(real)
  writeFileSync(join(real, 'a.log'), 'a-1\n')
  symlinkSync('real', join(tmp, 'link'))
  return real
}

function readState(path: string): { output: { ino: number; size: number } | null } | null {
  try {
    return JSON.parse(readFileSync(path, 'utf8'))
  } catch {
    return null // not there yet, or being replaced
  }
}

/** The output named in the state is the file at `out` now, at its size now. */
const stateNames = (out: string): boolean => {
  const recorded = readState(stateOf(out))?.output
  const st = statSync(out, { throwIfNoEntry: false })
  return !!recorded && !!st && recorded.ino === st.ino && recorded.size === st.size
}

/** Sets the soft RLIMIT_FSIZE of a running process (what `ulimit -f` sets for a shell's children). */
function setFileSizeLimit(pid: number, bytes: number | 'unlimited'): void {
  execFileSync('prlimit', ['--pid', String(pid), `--fsize=${bytes}:`])
}

/** Fills the file system of `dir` with a file `name`, leaving about `leave` bytes free. */
function fill(dir: string, name: string, leave: number): string {
  const { bavail, bsize } = statfsSync(dir)
  const path = join(dir, name)
  execFileSync('fallocate', ['-l', String(Math.max(bsize, bavail * bsize - leave)), path])
  return path
}

/**
 * Takes what is free on the file system of `dir` with files `name-N` until nothing has been
 * free for 500 ms: a checkpoint whose temporary file took a page just before the disk filled
 * frees the old state's page when it is renamed over it, a moment later; no later checkpoint
 * can free one (its temporary file cannot be written while nothing is free).
 */
async function takeFreeSpace(dir: string, name: string): Promise<void> {
  let quiet = 0
  for (let n = 0; quiet < 5; n++) {
    const { bavail, bsize } = statfsSync(dir)
    if (bavail > 0) {
      try {
        execFileSync('fallocate', ['-l', String(bavail * bsize), join(dir, `${name}-${n}`)])
      } catch {
        // logmerge's retry took some of it first: look again.
      }
      quiet = 0
    } else quiet++
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

/** Mounts a tmpfs of `bytes` at `dir`; the returned function detaches it (lazily: a killed
 * process may still hold files there for a moment). */
function mountTmpfs(dir: string, bytes: number): () => void {
  mkdirSync(dir)
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes},mode=0755`, 'tmpfs', dir])
  return () => execFileSync('umount', ['-l', dir])
}

/** Whether this sandbox lets us mount a tmpfs (root, or a user namespace that allows it). */
const CAN_MOUNT = (() => {
  const dir = mkdtempSync(join(tmpdir(), 'logmerge-mount-probe-'))
  try {
    mountTmpfs(join(dir, 'm'), 64 * KiB)()
    return true
  } catch {
    return false
  } finally {
    try {
      rmdirSync(join(dir, 'm'))
    } catch {}
    rmdirSync(dir)
  }
})()
if (!CAN_MOUNT) {
  process.stderr.write('output-faults: cannot mount a tmpfs here: the ENOSPC tests are skipped\n')
}

/** Files the process still holds that were deleted (`/proc/<pid>/fd` links ending "(deleted)"). */
function deletedHeld(pid: number, name: string): string[] {
  const dir = `/proc/${pid}/fd`
  return readdirSync(dir)
    .map((fd) => {
      try {
        return readlinkSync(join(dir, fd))
      } catch {
        return ''
      }
    })
    .filter((target) => target.includes(name) && target.endsWith('(deleted)'))
}

/** Follows `a.log` in `tmp` into `out` (default `<tmp>/out.log`) with short intervals. */
async function followA(engine: string, tmp: string, out?: string) {
  const a = join(tmp, 'a.log')
  writeFileSync(a, '')
  const run = await follow({
    cwd: tmp,
    engine,
    inputs: ['a.log'],
    probe: [a],
    args: FAST,
    ...(out ? { out } : {}),
  })
  return { a, ...run }
}

const present = (files: readonly string[], lines: readonly string[]): boolean => {
  const have = new Set(files.flatMap((f) => completeLines(f)))
  return lines.every((l) => have.has(l))
}

describe.each(ENGINES)('engine %s', (engine) => {
  test(`${engine}: over the file size limit (EFBIG): warns and pauses, resumes when the limit is raised, and again when the full output is rotated away; each line once`, async ({
    tmp,
  }) => {
    const { a, lm, out, journal } = await followA(engine, tmp)
    const moved = `${out}.1`

    // The limit 4 KiB above what is written: 150 lines of 100 bytes cannot all fit.
    setFileSizeLimit(lm.pid, statSync(out).size + 4 * KiB)
    journal.append(a, longLines('one', 150))
    await waitFor(() => count(lm.stderr(), STALLED('EFBIG')) === 1, {
      proc: lm,
      what: 'the EFBIG warning',
    })
    expect(lm.stderr()).toMatch(/rotate the output or raise the limit/)
    expect(present([out], journal.all)).toBe(false)
    setFileSizeLimit(lm.pid, 'unlimited')
    await waitForAll(out, journal.all, { proc: lm })
    await waitFor(() => count(lm.stderr(), RESUMED) === 1, { proc: lm, what: 'resumed' })

    // Full again; this time the fix is to rotate the output away (no SIGHUP: the watch sees it).
    setFileSizeLimit(lm.pid, statSync(out).size + 2 * KiB)
    journal.append(a, longLines('two', 100))
    await waitFor(() => count(lm.stderr(), STALLED('EFBIG')) === 2, {
      proc: lm,
      what: 'the second EFBIG warning',
    })
    renameSync(out, moved)
    await waitFor(() => present([moved, out], journal.all), { proc: lm, what: 'every line' })
    await waitFor(() => count(lm.stderr(), RESUMED) === 2, { proc: lm, what: 'resumed again' })
    expect(lm.stderr()).toMatch(/output .*out\.log was moved away while open/)
    // The state names the new file before it holds a line (checked here once it is quiet).
    await waitFor(() => stateNames(out), { proc: lm, what: 'a checkpoint of the new out.log' })
    await stop(lm)

    // The block half-written when the limit hit was cut from the old file, written whole anew.
    expect(readFileSync(moved, 'latin1').endsWith('\n')).toBe(true)
    expectMerged([...completeLines(moved), ...completeLines(out)], journal)
  })

  test(`${engine}: SIGHUP then SIGTERM while the output is stuck (EFBIG): the main thread is free, exit 6 after --shutdown-timeout; a restart without the limit writes each line once`, async ({
    tmp,
  }) => {
    const a = join(tmp, 'a.log')
    writeFileSync(a, '')
    const args = [...FAST, '--shutdown-timeout', '500', '--log-level', 'info']
    const { lm, out, journal } = await follow({
      cwd: tmp,
      engine,
      inputs: ['a.log'],
      probe: [a],
      args,
    })
    setFileSizeLimit(lm.pid, statSync(out).size + 2 * KiB)
    journal.append(a, longLines('stuck', 100))
    await waitFor(() => count(lm.stderr(), STALLED('EFBIG')) === 1, {
      proc: lm,
      what: 'the EFBIG warning',
    })
    // logrotate's postrotate during the outage: the reopen must not wait for the stuck writer
    // on the main thread (which would then never handle the SIGTERM below).
    lm.kill('SIGHUP')
    await waitFor(() => /SIGHUP: reopening the output/.test(lm.stderr()), { proc: lm })
    lm.kill('SIGTERM')
    await waitFor(() => lm.hasExited, { timeout: 20000, what: 'logmerge to exit after SIGTERM' })
    expect(await lm.exited, lm.stderr()).toEqual({ code: 6, signal: null })
    expect(lm.stderr()).toMatch(/could not drain within 500 ms/)
    const again = spawnLogmerge(['--engine', engine, ...FAST, '-o', out, 'a.log'], { cwd: tmp })
    await waitForAll(out, journal.all, { proc: again })
    await stop(again)
    expectMerged(completeLines(out), journal)
  })

  test.skipIf(!CAN_MOUNT)(
    `${engine}: a full disk (ENOSPC, small tmpfs): pauses, resumes when space is freed; full again, the output moved to another disk to free it: reopened; full again, SIGKILL, restart once freed; each line once`,
    async ({ tmp }) => {
      const mnt = join(tmp, 'mnt')
      const unmount = mountTmpfs(mnt, 512 * KiB)
      try {
        const out = join(mnt, 'out.log')
        const moved = join(tmp, 'moved.log')
        const { a, lm, journal } = await followA(engine, tmp, out)
        const stalls = () => count(lm.stderr(), STALLED('ENOSPC'))
        const resumes = () => count(lm.stderr(), RESUMED)
        journal.append(a, longLines('room', 600)) // ~60 KiB while there is room
        await waitForAll(out, journal.all, { proc: lm })

        // 1. Full: freeing space is enough.
        const filler1 = fill(mnt, 'filler1', 8 * KiB)
        journal.append(a, longLines('one', 200))
        await waitFor(() => stalls() === 1, { proc: lm, what: 'the ENOSPC warning' })
        expect(present([out], journal.all)).toBe(false)
        unlinkSync(filler1)
        await waitForAll(out, journal.all, { proc: lm })
        await waitFor(() => resumes() === 1, { proc: lm, what: 'resumed' })

        // 2. Full: the operator moves the output to another disk (copy, then unlink: the space
        // comes back only once we let go of the deleted file). A byte written between mv's
        // copy and its unlink is in neither file, for logmerge as for any writer (see
        // docs/failure-modes.md, row 6), so nothing may free space during the mv. logmerge's
        // own checkpoint, in flight when the disk filled, frees the old state's page once as
        // it renames over it; a retry then appended 4 KiB that only the deleted file had (41
        // lines: 1 run in 40 on top-down here, twice in CI).
        fill(mnt, 'filler2', 8 * KiB)
        journal.append(a, longLines('two', 200))
        await waitFor(() => stalls() === 2, { proc: lm, what: 'the second ENOSPC warning' })
        await takeFreeSpace(mnt, 'filler2b')
        execFileSync('mv', [out, moved])
        await waitFor(() => present([moved, out], journal.all), { proc: lm, what: 'every line' })
        await waitFor(() => resumes() === 2, { proc: lm, what: 'resumed again' })
        expect(lm.stderr()).toMatch(/output .*out\.log was deleted while open; creating it again/)
        expect(deletedHeld(lm.pid, 'out.log')).toEqual([])
        await waitFor(() => stateNames(out), { proc: lm, what: 'a checkpoint of the new out.log' })

        // 3. Full, and logmerge is killed during the outage; restarted once space is back.
        const filler3 = fill(mnt, 'filler3', 8 * KiB)
        journal.append(a, longLines('three', 200))
        await waitFor(() => stalls() === 3, { proc: lm, what: 'the third ENOSPC warning' })
        lm.kill('SIGKILL')
        await lm.exited
        unlinkSync(filler3)
        const again = spawnLogmerge(['--engine', engine, ...FAST, '-o', out, 'a.log'], {
          cwd: tmp,
        })
        await waitFor(() => present([moved, out], journal.all), { proc: again, what: 'all' })
        journal.append(a, longLines('after', 20))
        await waitForAll(out, journal.all.slice(-20), { proc: again })
        await stop(again)

        expect(readFileSync(out, 'latin1').endsWith('\n')).toBe(true)
        expectMerged([...completeLines(moved), ...completeLines(out)], journal)
      } finally {
        unmount()
      }
    },
  )

  test(`${engine}: the output deleted, its directory removed, the output moved away under load, replaced and truncated while running: warned, opened again (held while it cannot be), checkpointed; each line once`, async ({
    tmp,
  }) => {
    const dir = join(tmp, 'o')
    mkdirSync(dir)
    const { a, lm, out } = await followA(engine, tmp, join(dir, 'out.log'))
    const moved = `${out}.1`
    const stderr = () => lm.stderr()

    // Deleted: the lines written after the warning are in the new file, none in the old one.
    unlinkSync(out)
    await waitFor(() => /out\.log was deleted while open; creating it again/.test(stderr()), {
      proc: lm,
      what: 'the deletion warning',
    })
    const deleted = new Journal()
    deleted.append(a, uniqueLines('after-delete', 20))
    await waitForAll(out, deleted.all, { proc: lm })
    expect(deletedHeld(lm.pid, 'out.log')).toEqual([])
    await waitFor(() => stateNames(out), { proc: lm, what: 'the state to name the new file' })
    expectMerged(completeLines(out), deleted)

    // Its directory removed: it cannot be created again, so writing is held until it can.
    // (logmerge's checkpoints write temporary files beside the output while the directory is
    // being emptied: rmdir can meet one and fail with ENOTEMPTY, so retry as `rm -rf` would.)
    rmSync(dir, { recursive: true, maxRetries: 10, retryDelay: 20 })
    await waitFor(() => /cannot create output .*out\.log again: .*writing is held/.test(stderr()), {
      proc: lm,
      what: 'the warning that writing is held',
    })
    const journal = new Journal()
    journal.append(a, uniqueLines('held', 20))
    mkdirSync(dir)
    await waitFor(() => /output .*out\.log could be created again; resumed/.test(stderr()), {
      proc: lm,
      what: 'resumed',
    })
    await waitForAll(out, journal.all, { proc: lm })
    await waitFor(() => stateNames(out), { proc: lm, what: 'the state in the new directory' })

    // Moved away (a rotation without SIGHUP) while lines keep coming.
    let writing = true
    const writer = (async () => {
      for (let i = 0; writing; i++) {
        journal.append(a, uniqueLines(`load${i}`, 3))
        await new Promise((resolve) => setTimeout(resolve, 3))
      }
    })()
    try {
      await waitFor(() => completeLines(out).length >= 60, { proc: lm, what: '60 lines' })
      renameSync(out, moved)
      await waitFor(() => /out\.log was moved away while open/.test(stderr()), {
        proc: lm,
        what: 'the move warning',
      })
      await waitFor(() => completeLines(out).length >= 30, { proc: lm, what: 'the new file' })
    } finally {
      writing = false
      await writer
    }
    await waitFor(() => present([moved, out], journal.all), { proc: lm, what: 'every line' })
    expect(readFileSync(moved, 'latin1').endsWith('\n')).toBe(true)
    expectMerged([...completeLines(moved), ...completeLines(out)], journal)

    // Replaced by another file: our lines follow its content.
    writeFileSync(join(dir, 'other.log'), 'foreign line\n')
    renameSync(join(dir, 'other.log'), out)
    await waitFor(() => /out\.log was replaced by another file/.test(stderr()), {
      proc: lm,
      what: 'the replacement warning',
    })
    const replaced = new Journal()
    replaced.append(a, uniqueLines('after-replace', 10))
    await waitFor(() => completeLines(out).length >= 11, { proc: lm, what: '11 lines' })
    expect(completeLines(out)).toEqual(['foreign line', ...replaced.all])

    // Truncated to nothing: the size the state records follows, so a restart cuts nothing.
    truncateSync(out, 0)
    await waitFor(() => /out\.log was truncated by someone else/.test(stderr()), {
      proc: lm,
      what: 'the truncation warning',
    })
    const last = new Journal()
    last.append(a, uniqueLines('after-truncate', 10))
    await waitForAll(out, last.all, { proc: lm })
    await waitFor(() => stateNames(out), { proc: lm, what: 'the state to follow the cut' })
    await stop(lm)
    const again = spawnLogmerge(['--engine', engine, ...FAST, '-o', out, 'a.log'], { cwd: tmp })
    last.append(a, uniqueLines('restarted', 10))
    await waitForAll(out, last.all, { proc: again })
    await stop(again)
    expect(again.stderr()).not.toMatch(/warn|error/)
    expectMerged(completeLines(out), last)
  })

  test(`${engine}: a glob through a symlinked directory that cannot match the output is not refused`, async ({
    tmp,
  }) => {
    const real = realWithLink(tmp)
    const ran = await runLogmerge(
      ['--engine', engine, '--once', '--from', 'start', 'link/*.log', '-o', 'real/merged.txt'],
      { cwd: tmp },
    )
    expect(ran.stderr).toBe('')
    expect(ran.code).toBe(0)
    expect(readFileSync(join(real, 'merged.txt'), 'latin1')).toBe('a-1\n')
  })
})

/*
 * The two start-up refusals below (checkOutputNotInput and checkOutputWritable, src/guard.ts)
 * run in src/daemon.ts before any engine is loaded, with nothing from the engine: each run
 * takes the next engine in turn instead of every case on every engine (they took 13 s of
 * runs for 4 x 14 spawns).
 */
test('an output or state file that cannot be written where it is: exit 2 at start, naming the path and the fix (each engine in turn)', async ({
  tmp,
}) => {
  writeFileSync(join(tmp, 'a.log'), 'a-1\n')
  mkdirSync(join(tmp, 'adir'))
  let turn = 0
  const refused = async (args: string[], names: string[], run: Runner = runLogmerge) => {
    const engine = ENGINES[turn++ % ENGINES.length] as string
    const ran = await run(['--engine', engine, 'a.log', ...args], { cwd: tmp })
    const lines = ran.stderr.split('\n').filter(Boolean)
    expect(ran.code, ran.stderr).toBe(2)
    expect(ran.stdout.length).toBe(0)
    expect(lines.length, ran.stderr).toBe(1) // the error with its fix, no stack trace
    expect(lines[0]).toMatch(/^logmerge: error: cannot write (output|state file) /)
    for (const name of names) expect(lines[0]).toContain(name)
  }
  const no = join(tmp, 'no/such')
  await refused(['--once', '-o', 'no/such/out.log'], [join(no, 'out.log'), `mkdir -p ${no}`])
  await refused(['--once', '-o', 'a.log/out.log'], [join(tmp, 'a.log'), 'is not a directory'])
  await refused(['--once', '-o', 'adir'], [join(tmp, 'adir'), 'is a directory'])
  await refused(
    ['--once', '-o', 'out.log', '--state', 'no/such/state.json'],
    ['state file', join(no, 'state.json'), `mkdir -p ${no}`],
  )
  expect(readdirSync(tmp).sort()).toEqual(['a.log', 'adir'])

  // Permissions, as an unprivileged user (root may write anywhere).
  chmodSync(tmp, 0o755)
  chmodSync(join(tmp, 'a.log'), 0o644)
  const locked = join(tmp, 'locked')
  mkdirSync(locked, 0o555)
  writeFileSync(join(locked, 'there.log'), '', { mode: 0o444 })
  await refused(
    ['--once', '-o', 'locked/out.log'],
    [locked, 'not writable', 'EACCES'],
    runUnprivileged,
  )
  await refused(
    ['--once', '-o', 'locked/there.log'],
    [join(locked, 'there.log'), 'not writable', 'EACCES'],
    runUnprivileged,
  )
  // The file is writable, but its state file (kept when following) cannot be created beside it.
  chmodSync(join(locked, 'there.log'), 0o666)
  await refused(
    ['-o', 'locked/there.log'],
    ['state file', locked, '--state', '--no-state'],
    runUnprivileged,
  )
  expect(readdirSync(locked)).toEqual(['there.log'])
})

test('the output reached through a symlinked directory, a nested link or a dangling symlink: refused at start, exit 2 (each engine in turn)', async ({
  tmp,
}) => {
  const real = realWithLink(tmp)
  symlinkSync(real, join(tmp, 'abslink'))
  mkdirSync(join(tmp, 'logs'))
  symlinkSync('../real', join(tmp, 'logs', 'app'))
  symlinkSync('real/merged.log', join(tmp, 'out-link.log')) // dangling until written
  symlinkSync('merged2.log', join(tmp, 'in.log')) // an input leading to the output-to-be
  const cases: { args: string[]; names: string[] }[] = [
    { args: ['link/*.log', '-o', 'real/merged.log'], names: ['link/*.log', 'link/merged.log'] },
    { args: ['abslink/*.log', '-o', 'real/merged.log'], names: ['abslink/*.log'] },
    { args: ['link', '-o', 'real/merged.log'], names: ['input link', 'link/merged.log'] },
    { args: ['logs/*/*.log', '-o', 'real/merged.log'], names: ['logs/app/merged.log'] },
    { args: ['logs/**/*.log', '-o', 'real/merged.log'], names: ['logs/**/*.log'] },
    { args: ['real/*.log', '-o', 'out-link.log'], names: ['out-link.log', 'real/merged.log'] },
    { args: ['real/a.log', 'in.log', '-o', 'merged2.log'], names: ['in.log', 'symlink'] },
  ]
  for (const [i, { args, names }] of cases.entries()) {
    // --once: were the output not refused, the run would end (and this test fail) at once.
    const engine = ENGINES[i % ENGINES.length] as string
    const ran = await runLogmerge(['--engine', engine, '--once', ...args], { cwd: tmp })
    expect(ran.code, `${args.join(' ')}: ${ran.stderr}`).toBe(2)
    const lines = ran.stderr.split('\n').filter(Boolean)
    expect(lines.length, ran.stderr).toBe(1)
    expect(lines[0]).toMatch(/^logmerge: error: output .* is also an input/)
    for (const name of names) expect(lines[0]).toContain(name)
  }
  expect(readdirSync(real)).toEqual(['a.log']) // nothing was written anywhere
  expect(statSync(join(tmp, 'in.log'), { throwIfNoEntry: false })).toBeUndefined()
})

const execFileAsync = promisify(execFile)

type Runner = (
  args: readonly string[],
  opts: { cwd: string },
) => Promise<{ code: number | null; stdout: Buffer; stderr: string }>

/** Runs bin/logmerge as an unprivileged user (nobody, when we are root; else as we are). */
const runUnprivileged: Runner = async (args, opts) => {
  const asNobody = process.getuid?.() === 0
  const [cmd, ...rest] = asNobody
    ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--', BIN, ...args]
    : [BIN, ...args]
  try {
    const { stdout, stderr } = await execFileAsync(cmd as string, rest, {
      cwd: opts.cwd,
      env: pinnedEnv(),
      encoding: 'buffer',
      timeout: 20000,
    })
    return { code: 0, stdout, stderr: stderr.toString('utf8') }
  } catch (err) {
    const e = err as { code?: number | string; stdout?: Buffer; stderr?: Buffer }
    if (typeof e.code !== 'number') throw err
    return { code: e.code, stdout: e.stdout ?? Buffer.alloc(0), stderr: String(e.stderr ?? '') }
  }
}
