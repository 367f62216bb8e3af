// @ts-check
/**
 * The writer processes of the cpu and rotation sub-benchmarks: each appends numbered lines
 * `w<index>-<10-digit seq> <padding>\n` (100 bytes) to its own file with ONE write(2) PER
 * LINE, like a logger does, so the follower sees one change per line.
 *
 *   node bench/follow/writer.mjs fast INDEX PATH              as fast as it can
 *   node bench/follow/writer.mjs paced INDEX PATH RATE EVERY  RATE lines/s; every EVERY lines
 *                                                             `mv PATH PATH.1` and a new PATH
 *
 * It prints `ready`, waits for `go <ms>` on stdin, writes for that long, and prints its result
 * as one JSON line (times are epoch ms, comparable across processes).
 */

import { spawn } from 'node:child_process'
import { closeSync, openSync, renameSync, writeSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { sleep } from '../lib.mjs'

export const LINE_BYTES = 100
const SEQ_DIGITS = 10
const HERE = fileURLToPath(import.meta.url)

/** Wall-clock time in ms with sub-ms resolution, comparable across processes. */
const now = () => performance.timeOrigin + performance.now()

/**
 * @typedef {object} WriterResult
 * @property {number} index
 * @property {number} lines
 * @property {number} bytes
 * @property {number} rotations
 * @property {number} firstWrite  epoch ms
 * @property {number} lastWrite   epoch ms
 */

/** @param {number} index */
function lineTemplate(index) {
  const prefix = `w${index}-`
  const line = `${prefix}${'0'.repeat(SEQ_DIGITS)} `.padEnd(
    LINE_BYTES - 1,
    String.fromCharCode(97 + (index % 26)),
  )
  return { buf: Buffer.from(`${line}\n`, 'latin1'), at: prefix.length }
}

/** @param {Buffer} buf @param {number} at @param {number} seq */
function setSeq(buf, at, seq) {
  let s = seq
  for (let d = SEQ_DIGITS - 1; d >= 0; d--) {
    buf[at + d] = 48 + (s % 10)
    s = Math.floor(s / 10)
  }
}

/** @param {number} index @param {string} path @param {number} ms @returns {WriterResult} */
function fast(index, path, ms) {
  const { buf, at } = lineTemplate(index)
  const fd = openSync(path, 'a')
  let seq = 0
  const firstWrite = now()
  let lastWrite = firstWrite
  try {
    while (lastWrite < firstWrite + ms) {
      // A clock read every 256 lines: cheap next to the write(2) each line costs.
      for (let k = 0; k < 256; k++) {
        setSeq(buf, at, seq)
        writeSync(fd, buf)
        seq++
      }
      lastWrite = now()
    }
  } finally {
    closeSync(fd)
  }
  return { index, lines: seq, bytes: seq * LINE_BYTES, rotations: 0, firstWrite, lastWrite }
}

/**
 * @param {number} index @param {string} path @param {number} ms @param {number} rate
 * @param {number} every
 * @returns {Promise<WriterResult>}
 */
async function paced(index, path, ms, rate, every) {
  const { buf, at } = lineTemplate(index)
  let fd = openSync(path, 'a')
  let seq = 0
  let rotations = 0
  const firstWrite = now()
  let lastWrite = firstWrite
  const total = Math.round((ms / 1000) * rate)
  try {
    while (seq < total) {
      const due = Math.min(total, Math.floor(((now() - firstWrite) / 1000) * rate) + 1)
      while (seq < due) {
        if (seq > 0 && seq % every === 0) {
          renameSync(path, `${path}.1`)
          closeSync(fd)
          fd = openSync(path, 'a')
          rotations++
        }
        setSeq(buf, at, seq)
        writeSync(fd, buf)
        seq++
      }
      lastWrite = now()
      await sleep(1)
    }
  } finally {
    closeSync(fd)
  }
  return { index, lines: seq, bytes: seq * LINE_BYTES, rotations, firstWrite, lastWrite }
}

/** The child's side. @param {string[]} argv */
async function writerMain(argv) {
  const [mode, indexText, path, rateText, everyText] = argv
  const index = Number(indexText)
  if (!path || !Number.isInteger(index) || (mode !== 'fast' && mode !== 'paced')) {
    throw new Error('usage: writer.mjs fast|paced INDEX PATH [RATE EVERY]')
  }
  process.stdout.write('ready\n')
  let input = ''
  process.stdin.setEncoding('utf8')
  for await (const chunk of process.stdin) {
    input += chunk
    if (input.includes('\n')) break
  }
  const m = /^go (\d+)/.exec(input)
  if (!m) throw new Error(`expected "go <ms>", got ${JSON.stringify(input)}`)
  const ms = Number(m[1])
  const result =
    mode === 'fast'
      ? fast(index, path, ms)
      : await paced(index, path, ms, Number(rateText), Number(everyText))
  process.stdout.write(`${JSON.stringify(result)}\n`)
  process.stdin.destroy()
}

/**
 * Starts one writer per argument list and waits until each said `ready`.
 * @param {string[][]} argvs  each: [mode, index, path, ...]
 * @returns {Promise<{ go: (ms: number) => void, results: Promise<WriterResult[]> }>}
 */
export async function startWriters(argvs) {
  const children = argvs.map((a) =>
    spawn(process.execPath, [HERE, ...a], { stdio: ['pipe', 'pipe', 'inherit'] }),
  )
  const outputs = children.map((child) => {
    let text = ''
    child.stdout?.setEncoding('utf8').on('data', (d) => {
      text += d
    })
    const ready = new Promise((resolve, reject) => {
      child.stdout?.on('data', () => {
        if (text.startsWith('ready\n')) resolve(undefined)
      })
      child.on('exit', (code) => reject(new Error(`writer exited early (${code})`)))
    })
    /** @type {Promise<WriterResult>} */
    const result = new Promise((resolve, reject) => {
      child.on('close', (code) => {
        try {
          if (code !== 0) throw new Error(`exit ${code}`)
          resolve(JSON.parse(text.trim().split('\n').pop() ?? ''))
        } catch (err) {
          reject(
            new Error(
              `writer failed: ${err instanceof Error ? err.message : err}; ${JSON.stringify(text.slice(-200))}`,
            ),
          )
        }
      })
    })
    result.catch(() => {})
    return { ready, result }
  })
  await Promise.all(outputs.map((o) => o.ready))
  return {
    go: (ms) => {
      for (const c of children) c.stdin?.end(`go ${Math.round(ms)}\n`)
    },
    results: Promise.all(outputs.map((o) => o.result)),
  }
}

if (process.argv[1] === HERE) {
  writerMain(process.argv.slice(2)).catch((err) => {
    process.stderr.write(`writer: ${err instanceof Error ? err.message : String(err)}\n`)
    process.exitCode = 1
  })
}
