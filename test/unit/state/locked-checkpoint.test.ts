/**
 * The reader-thread engines' checkpoints, composed as engines/threaded.ts composes them: a
 * LockedWriter whose slots real worker threads fill (attached to the same shared memory, loading
 * the compiled dist/ as the engines do), the 'source' and 'forget' messages those threads send,
 * the checkpoint's lines (LockedWriter.stateLines with toldLines), and the Checkpointer saving a
 * real state file. The rule: every saved entry's
 * identity, fingerprint and offset come from one file at one moment, and checkpoints never stop.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setImmediate as tick } from 'node:timers/promises'
import { pathToFileURL } from 'node:url'
import { Worker } from 'node:worker_threads'
import { afterEach, beforeEach, expect, test } from 'vitest'
import { silentLogger } from '../../../src/log.js'
import { LockedWriter } from '../../../src/sink/locked-writer.js'
import type { Snapshot } from '../../../src/sink/sink.js'
import { decodeState } from '../../../src/state/checkpoint.js'
import { Checkpointer, sourcesAt, toldLines } from '../../../src/state/checkpointer.js'
import type { SourceState } from '../../../src/tail/source-state.js'

const dist = (p: string) => pathToFileURL(join(import.meta.dirname, '../../../dist', p)).href

let dir: string
const workers = new Set<Worker>()
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'logmerge-locked-checkpoint-'))
})
afterEach(async () => {
  await Promise.all([...workers].map((w) => w.terminate()))
  workers.clear()
  rmSync(dir, { recursive: true, force: true })
})

type Message =
  | { code: 'source'; key: string; source: SourceState }
  | { code: 'forget'; key: string }
  | { code: 'done' }

/**
 * Runs `body` in a reader thread attached to `writer` as thread `id` (`w` in scope, and `post`
 * for messages to the main thread); `onMessage` gets them in order. Resolves when it is done.
 */
function readerThread(
  writer: LockedWriter,
  id: number,
  body: string,
  data: unknown,
  onMessage: (m: Message) => void,
): Promise<void> {
  const code = `
    const { workerData, parentPort } = require('node:worker_threads');
    const post = (m) => parentPort.postMessage(m);
    (async () => {
      const { LockedWriter } = await import(workerData.url);
      const w = LockedWriter.attach(workerData.share, workerData.id, () => {});
      const data = workerData.data;
      ${body}
    })().then(() => post({ code: 'done' }), (e) => { throw e });
  `
  const w = new Worker(code, {
    eval: true,
    workerData: { url: dist('sink/locked-writer.js'), share: writer.share, id, data },
  })
  workers.add(w)
  return new Promise((resolve, reject) => {
    w.on('message', (m: Message) => (m.code === 'done' ? resolve() : onMessage(m)))
    w.once('error', reject)
    w.once('exit', (c) => (c === 0 ? resolve() : reject(new Error(`thread exited ${c}`))))
  })
}

/** The main thread's side, as threaded.ts has it: what the threads told, and the checkpointer. */
function mainThread(writer: LockedWriter, statePath: string) {
  const told = new Map<string, SourceState>()
  const lines = toldLines(told)
  let seen = 0
  const checkpoints = new Checkpointer(
    statePath,
    join(dir, 'out.log'),
    {
      snapshot: () => writer.snapshot(),
      sources: (offsets) => sourcesAt(told, offsets),
      fsync: () => writer.sync(),
      changes: () => writer.changes + seen,
      stateLines: () => writer.stateLines(lines),
    },
    silentLogger,
  )
  const onMessage = (m: Message) => {
    seen++
    if (m.code === 'source') told.set(m.key, m.source)
    if (m.code === 'forget') told.delete(m.key)
  }
  return { told, checkpoints, onMessage }
}

const entry = (ino: number, head: string, offset: number): SourceState => ({
  path: `/logs/${ino}.log`,
  dev: 1,
  ino,
  head: Buffer.from(head).toString('base64'),
  offset,
})

test('a source noted at start-up and forgotten by its reader thread leaves the state, and the checkpoints go on', async () => {
  const out = join(dir, 'out.log')
  const statePath = join(dir, 'state.json')
  const writer = LockedWriter.open(out, 1, () => {})
  const { told, checkpoints, onMessage } = mainThread(writer, statePath)
  // Start-up, as threaded.ts: every remembered source noted (region 0) and told, then saved.
  for (const s of [entry(7, 'gone for good\n', 14), entry(8, 'live one\n', 0)]) {
    told.set(`1:${s.ino}`, s)
    writer.note({ key: `1:${s.ino}`, offset: s.offset, head: Buffer.from(s.head, 'base64') })
  }
  await checkpoints.save()
  expect(decodeState(readFileSync(statePath, 'utf8')).sources.map((s) => s.ino)).toEqual([7, 8])

  // The thread reads the live file on, and later finds the other gone from disk: forgotten.
  await readerThread(
    writer,
    0,
    `
      const head = Buffer.from('live one\\n');
      w.write(Buffer.from('live one\\n'), { key: '1:8', offset: 9, head });
      post({ code: 'source', key: '1:8', source: { ...data.live, offset: 9 } });
      w.forget('1:7');
      post({ code: 'forget', key: '1:7' });
    `,
    { live: entry(8, 'live one\n', 0) },
    onMessage,
  )
  await checkpoints.save()
  const saved = decodeState(readFileSync(statePath, 'utf8'))
  expect(saved.sources.map(({ stats, ...s }) => s)).toEqual([entry(8, 'live one\n', 9)])
  expect(saved.output?.size).toBe(9)
  writer.close()
})

test('a start-up note recorded again by its thread without a fingerprint: no snapshot pairs the new offset with the old fingerprint', async () => {
  const writer = LockedWriter.open(join(dir, 'out.log'), 1, () => {})
  writer.note({ key: '1:9', offset: 5, head: Buffer.from('first bytes of 9') })
  await readerThread(
    writer,
    0,
    `w.write(Buffer.from('more\\n'), { key: '1:9', offset: 10 });`,
    null,
    () => {},
  )
  const snap = writer.snapshot()
  expect(snap.offsets.get('1:9')).toBe(10)
  expect(snap.heads?.has('1:9')).toBe(false)
  writer.close()
})

test('snapshots taken while 2 threads write: every offset with its own fingerprint, and the offsets add up to the output size', async () => {
  const writer = LockedWriter.open(join(dir, 'out.log'), 2, () => {})
  // Each thread writes blocks of varying size for two sources of its own; each mark's
  // fingerprint names its offset, so a snapshot pairing an offset with another moment's
  // fingerprint shows.
  const body = `
    const offsets = [0, 0];
    for (let i = 0; i < data.blocks; i++) {
      const k = i % 2;
      const block = Buffer.alloc(1 + ((i * 7919) % 300), 97);
      block[block.length - 1] = 10;
      offsets[k] += block.length;
      const key = data.keys[k];
      w.write(block, { key, offset: offsets[k], head: Buffer.from(key + '@' + offsets[k]) });
    }`
  let running = true
  const problems: string[] = []
  let snapshots = 0
  const check = (snap: Snapshot) => {
    snapshots++
    let sum = 0
    for (const [key, offset] of snap.offsets) {
      sum += offset
      const head = Buffer.from(snap.heads?.get(key) ?? []).toString()
      if (head !== `${key}@${offset}`) problems.push(`${key} at ${offset} with fingerprint ${head}`)
    }
    if (sum !== snap.size) problems.push(`offsets add up to ${sum}, output size ${snap.size}`)
  }
  const watching = (async () => {
    while (running) {
      check(writer.snapshot())
      await tick()
    }
  })()
  await Promise.all(
    [0, 1].map((id) =>
      readerThread(
        writer,
        id,
        body,
        { blocks: 20_000, keys: [`1:${10 * id + 1}`, `1:${10 * id + 2}`] },
        () => {},
      ),
    ),
  )
  running = false
  await watching
  check(writer.snapshot())
  expect(problems.slice(0, 5)).toEqual([])
  expect(snapshots).toBeGreaterThan(10)
  writer.close()
})
