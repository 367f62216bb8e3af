// @ts-check
/**
 * Summarises a V8 .cpuprofile (from `node --cpu-prof`): the functions with the most self time,
 * and the most inclusive time, so a profile can be read without a browser.
 *
 *   node --cpu-prof --cpu-prof-dir=bench/out/prof bin/logmerge --once a.log b.log -o out
 *   node bench/cpuprofile-top.mjs bench/out/prof/CPU.*.cpuprofile [--top 20]
 *   node bench/cpuprofile-top.mjs --from 2500 --to 22500 PROFILE   # a window (ms after the start)
 *
 * --from/--to keep the samples taken in that window only: a following daemon's idle cost
 * without its start-up, say.
 */

import { readFileSync } from 'node:fs'
import { SourceMap } from 'node:module'
import { dirname, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { markdownTable, ROOT } from './lib.mjs'

/**
 * @typedef {object} ProfileNode
 * @property {number} id
 * @property {{ functionName: string, url: string, lineNumber: number, columnNumber: number }} callFrame
 * @property {number[]} [children]
 */
/**
 * @typedef {object} Profile
 * @property {ProfileNode[]} nodes
 * @property {number} startTime   µs
 * @property {number} endTime     µs
 * @property {number[]} samples   node ids
 * @property {number[]} timeDeltas µs
 */

/** Source maps by the generated file's path (null: none beside it). */
/** @type {Map<string, SourceMap | null>} */
const maps = new Map()

/** @param {string} path @returns {SourceMap | null} */
function mapOf(path) {
  let map = maps.get(path)
  if (map === undefined) {
    try {
      map = new SourceMap(JSON.parse(readFileSync(`${path}.map`, 'utf8')))
    } catch {
      map = null
    }
    maps.set(path, map)
  }
  return map
}

/**
 * A function's name and where it is; in the sources when a source map is beside its file (a
 * chunk of bundle/ names the .ts file and line it came from).
 * @param {ProfileNode['callFrame']} f @returns {string}
 */
function label(f) {
  const name = f.functionName || '(anonymous)'
  if (!f.url.startsWith('file://')) return f.url ? `${name} ${f.url}:${f.lineNumber + 1}` : name
  const path = fileURLToPath(f.url)
  const entry = mapOf(path)?.findEntry(f.lineNumber, f.columnNumber)
  if (entry !== undefined && 'originalSource' in entry && entry.originalSource !== undefined) {
    const source = resolve(dirname(path), entry.originalSource)
    return `${name} ${relative(ROOT, source)}:${entry.originalLine + 1}`
  }
  return `${name} ${relative(ROOT, path)}:${f.lineNumber + 1}`
}

/**
 * @param {Profile} profile
 * @returns {{ totalMs: number, self: Map<string, number>, inclusive: Map<string, number> }}
 */
export function summarize(profile, fromMs = 0, toMs = Number.POSITIVE_INFINITY) {
  /** @type {Map<number, ProfileNode>} */
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  /** @type {Map<number, number>} */
  const parent = new Map()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  /** @type {Map<string, number>} */
  const self = new Map()
  /** @type {Map<string, number>} */
  const inclusive = new Map()
  let at = 0
  profile.samples.forEach((id, i) => {
    at += (profile.timeDeltas[i] ?? 0) / 1000
    if (at < fromMs || at >= toMs) return
    const dt = (profile.timeDeltas[i + 1] ?? profile.timeDeltas[i] ?? 0) / 1000
    const node = byId.get(id)
    if (!node) return
    const own = label(node.callFrame)
    self.set(own, (self.get(own) ?? 0) + dt)
    /** @type {Set<string>} */
    const seen = new Set()
    for (let up = /** @type {number | undefined} */ (id); up !== undefined; up = parent.get(up)) {
      const n = byId.get(up)
      if (!n) break
      const l = label(n.callFrame)
      if (seen.has(l)) continue // recursion: count once per sample
      seen.add(l)
      inclusive.set(l, (inclusive.get(l) ?? 0) + dt)
    }
  })
  const totalMs = Math.min(toMs, (profile.endTime - profile.startTime) / 1000) - fromMs
  return { totalMs, self, inclusive }
}

/** @param {string[]} argv */
function main(argv) {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      top: { type: 'string', default: '20' },
      from: { type: 'string', default: '0' },
      to: { type: 'string' },
    },
  })
  const top = Number(values.top) || 20
  for (const path of positionals) {
    const { totalMs, self, inclusive } = summarize(
      JSON.parse(readFileSync(path, 'utf8')),
      Number(values.from),
      values.to === undefined ? undefined : Number(values.to),
    )
    /** @param {Map<string, number>} m */
    const rows = (m) =>
      [...m.entries()]
        .sort((a, b) => b[1] - a[1])
        .slice(0, top)
        .map(([name, ms]) => [name, ms.toFixed(1), `${((ms / totalMs) * 100).toFixed(1)}%`])
    process.stdout.write(`## ${path}: ${totalMs.toFixed(0)} ms profiled\n\n### self time\n\n`)
    process.stdout.write(`${markdownTable(['function', 'ms', 'share'], rows(self))}\n\n`)
    process.stdout.write(`### inclusive time\n\n`)
    process.stdout.write(`${markdownTable(['function', 'ms', 'share'], rows(inclusive))}\n\n`)
  }
}

main(process.argv.slice(2))
