/**
 * A file the state records but that is gone from disk is forgotten after some scans of its
 * directory (the state does not grow by one entry per rotation forever). Forgetting it must
 * take it out of the checkpoints and nothing else: the checkpoints go on. On the engines with
 * the locked writer, the start-up note of such a file stayed in the main thread's slots after
 * its reader thread forgot it; the checkpoint then found an offset for a source nobody knew any
 * more, gave up (a 'source' message on its way?) and never saved again, so a crash from then on
 * resumed from the last state before the prune.
 */
import { appendFileSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect } from 'vitest'
import { ENGINES, spawnLogmerge, stop, test, uniqueLines, waitFor, waitForAll } from './helpers.js'

interface SavedState {
  readonly output: { readonly size: number }
  readonly sources: readonly { readonly path: string }[]
}

const readState = (path: string): SavedState | null => {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as SavedState
  } catch {
    return null
  }
}

describe.each(ENGINES)('engine %s', (engine) => {
  test('a recorded file deleted while down is forgotten, and the checkpoints go on', {
    timeout: 60_000,
  }, async ({ tmp }) => {
    // The inputs in a directory of their own: the state file, replaced at every checkpoint,
    // may take the deleted file's inode, and a file with that identity beside the old name
    // counts as seen (FileTable.settleScan compares identities only), so it is never forgotten.
    const logs = join(tmp, 'logs')
    mkdirSync(logs)
    const a = join(logs, 'a.log')
    const gone = join(logs, 'gone.log')
    const out = join(tmp, 'out.log')
    const state = join(tmp, 'S')
    writeFileSync(a, '')
    writeFileSync(gone, '')
    // --poll-interval 10 ms: a scan of the missing files' directories every 300 ms, so the
    // file is forgotten after 10 of them (about 3 s; see PRUNE_UNFINISHED_AFTER).
    const args = ['-o', out, '--engine', engine, '--from', 'start', '--state', state]
    const fast = ['--poll-interval', '10', '--checkpoint-interval', '50', '--log-level', 'debug']
    const first = spawnLogmerge([a, gone, ...args])
    const before = [...uniqueLines('a', 3)]
    const inGone = uniqueLines('gone', 2)
    appendFileSync(a, before.map((l) => `${l}\n`).join(''))
    appendFileSync(gone, inGone.map((l) => `${l}\n`).join(''))
    await waitForAll(out, [...before, ...inGone], { proc: first })
    await stop(first)
    expect(readState(state)?.sources.map((s) => s.path)).toContain(gone)
    rmSync(gone)

    // Started again without it (it was deleted with its input): the state still records it.
    const lm = spawnLogmerge([a, ...args, ...fast])
    await waitFor(() => lm.stderr().includes(`${gone}: gone from`), {
      proc: lm,
      what: 'the deleted file to be forgotten',
    })
    // After the prune: lines written now must be checkpointed (the state's output size moves
    // up to the output's), and the forgotten file is no longer in the state.
    const after = uniqueLines('a-after', 3)
    appendFileSync(a, after.map((l) => `${l}\n`).join(''))
    await waitForAll(out, after, { proc: lm })
    const size = statSync(out).size
    await waitFor(() => readState(state)?.output.size === size, {
      proc: lm,
      what: `a checkpoint at the output's size ${size} (state says ${readState(state)?.output.size})`,
      timeout: 5_000,
    })
    expect(readState(state)?.sources.map((s) => s.path)).not.toContain(gone)
    await stop(lm)
  })
})
