/**
 * Issue 16, item 1, reproduced from outside: three writer processes, 3,000 lines/s each, each
 * renaming its file to NAME.log.K every 5,000 lines and opening a new one, while logmerge
 * (`--from start --state S`) is SIGKILLed 10 times at 0.3-1 s intervals and started again
 * (LOGMERGE_SOAK=10; `npm test` runs 6 kills per engine). At the end every line is in the
 * output exactly once.
 *
 * The loss this found came from a torn checkpoint: a state entry with one file's identity and
 * the next generation's fingerprint (the start-up search stat'ed the name, the writer rotated,
 * then it read the first bytes of the new file). Such an entry is never taken for the old file
 * again, so its rest is lost only if no later run finds it by other means. So besides the final
 * count, every state file a kill leaves behind is checked: each recorded source's fingerprint
 * must be the first bytes of the file with that identity, and its offset within that file.
 */
import {
  closeSync,
  fstatSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  writeFileSync,
} from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect } from 'vitest'
import {
  type Child,
  completeLines,
  ENGINES,
  expectMerged,
  finished,
  Journal,
  spawnLogmerge,
  spawnRotatingWriter,
  stop,
  test,
  waitFor,
  waitForAll,
} from './helpers.js'

const WRITERS = 3
const RATE = 3000
const ROTATE_EVERY = 5000
/**
 * LOGMERGE_SOAK=N: N kills per engine (10 in issue 16's reproduction); `npm test` runs 6, two
 * rotations of each file among them.
 */
const KILLS = Number(process.env.LOGMERGE_SOAK ?? 6)
/** Lines per writer: long enough to write through every kill (0.3-1 s apart; 0.8 s each at RATE). */
const LINES = Math.max(KILLS, 5) * 2400

/**
 * Each file of `dir` by inode: its name, first bytes and size, read through one descriptor (a
 * name read twice may lead to two files: the writers rotate meanwhile).
 */
function filesByInode(dir: string): Map<number, { name: string; head: Buffer; size: number }> {
  const files = new Map<number, { name: string; head: Buffer; size: number }>()
  for (const name of readdirSync(dir)) {
    let fd: number
    try {
      fd = openSync(join(dir, name), 'r')
    } catch {
      continue // renamed away since the listing
    }
    try {
      const st = fstatSync(fd)
      if (!st.isFile()) continue
      const head = Buffer.alloc(64)
      const n = readSync(fd, head, 0, 64, 0)
      files.set(st.ino, { name, head: head.subarray(0, n), size: st.size })
    } finally {
      closeSync(fd)
    }
  }
  return files
}

/** What is wrong with the state file at `statePath` (empty: every entry is one file's). */
function tornEntries(statePath: string, dir: string): string[] {
  let state: { sources: { path: string; ino: number; head: string; offset: number }[] }
  try {
    state = JSON.parse(readFileSync(statePath, 'utf8'))
  } catch {
    return [] // not written yet
  }
  const files = filesByInode(dir)
  const problems: string[] = []
  for (const s of state.sources) {
    const file = files.get(s.ino)
    if (file === undefined) continue // not in the test's directory (cannot happen here)
    const head = Buffer.from(s.head, 'base64')
    if (!file.head.subarray(0, head.length).equals(head))
      problems.push(
        `${s.path} (inode ${s.ino}, now ${file.name}) recorded with fingerprint ${JSON.stringify(head.toString('latin1').slice(0, 40))}, which is not how it begins`,
      )
    if (s.offset > file.size)
      problems.push(`${file.name}: offset ${s.offset} past its end (${file.size})`)
  }
  return problems
}

describe.each(ENGINES)('engine %s', (engine) => {
  test(`rename rotation by ${WRITERS} writers at ${RATE} lines/s, ${KILLS} SIGKILLs: every line once, no torn state`, {
    timeout: 60_000 + KILLS * 6_000,
  }, async ({ tmp }) => {
    const names = Array.from({ length: WRITERS }, (_, i) => `k${i}`)
    const files = names.map((n) => join(tmp, `${n}.log`))
    const state = join(tmp, 'S')
    const out = join(tmp, 'out.log')
    const args = [
      ...files,
      '-o',
      out,
      '--engine',
      engine,
      '--from',
      'start',
      '--state',
      state,
      '--log-level',
      'info',
    ]
    // logmerge follows the files before the first rotation: a generation renamed away before
    // it was ever looked at is not an input (as with tail -F), and a loaded machine can take
    // longer than a rotation interval to start logmerge.
    for (const f of files) writeFileSync(f, '')
    let lm: Child = spawnLogmerge(args)
    await waitFor(() => lm.stderr().includes('ready'), { proc: lm, what: 'logmerge ready' })
    const writers = names.map((n, i) =>
      spawnRotatingWriter(files[i] as string, n, LINES, RATE, ROTATE_EVERY),
    )
    // One stream per file on disk (each generation), as in crash.test.ts: exactly once and in
    // order within each. Order across a name's generations after a crash is a documented limit
    // (docs/checkpoints.md, Limits), counted and printed below, not failed on.
    const journal = new Journal()
    const generationOf = (line: string) => Math.floor(Number(line.split('-')[1]) / ROTATE_EVERY)
    for (const w of writers)
      for (let at = 0; at < w.lines.length; at += ROTATE_EVERY)
        journal.record(`${w.name}#${at / ROTATE_EVERY}`, w.lines.slice(at, at + ROTATE_EVERY))
    const runs: string[] = []
    const torn: string[] = []
    for (let kill = 0; kill < KILLS; kill++) {
      await sleep(300 + Math.random() * 700)
      lm.kill('SIGKILL')
      await lm.exited
      runs.push(lm.stderr())
      torn.push(...tornEntries(state, tmp).map((p) => `after kill ${kill + 1}: ${p}`))
      lm = spawnLogmerge(args)
    }
    for (const w of writers) await finished(w)
    try {
      await waitForAll(out, journal.all, { timeout: 60_000, proc: lm })
    } catch (err) {
      const have = new Set(completeLines(out))
      const missing = writers.map((w) => {
        const lost = w.lines.filter((l) => !have.has(l))
        return `${w.name}: ${lost.length} missing, first ${lost[0] ?? '-'}, last ${lost.at(-1) ?? '-'}`
      })
      throw new Error(
        `${(err as Error).message}\n${missing.join('\n')}\ntorn states:\n${torn.join('\n')}\nruns' stderr:\n${runs.map((r) => r.slice(-1500)).join('\n---\n')}`,
      )
    }
    // Every line can be out before the last run has even installed its handlers (the runs
    // before it wrote them): a SIGTERM then meets Node's default action, not logmerge's stop
    // (CI on 6abef98, async: exit by SIGTERM, empty stderr). Stop a running logmerge.
    await waitFor(() => lm.stderr().includes('ready'), { proc: lm, what: 'the last run ready' })
    await stop(lm)
    expect(torn, 'state files whose entries mix two files').toEqual([])
    expect(lm.stderr()).not.toMatch(/error|may appear twice/)
    const output = completeLines(out)
    expectMerged(output, journal)
    const newest = new Map<string, number>()
    let late = 0
    for (const line of output) {
      const [name] = line.split('-') as [string]
      const generation = generationOf(line)
      if (generation < (newest.get(name) ?? 0)) late++
      newest.set(name, Math.max(generation, newest.get(name) ?? 0))
    }
    console.info(
      `${engine}: ${KILLS} SIGKILLs, ${output.length} lines, ${Math.floor((LINES - 1) / ROTATE_EVERY) * WRITERS} rotations: exactly once; ${late} lines late across generations`,
    )
  })
})
