// @ts-nocheck: a diagnostic over the soak's JSON files, untyped like them; not product code.
/**
 * soak-lines: what a kept soak directory's output holds, per writer (test/e2e/soak.test.ts
 * keeps the directory of a failed run with LOGMERGE_TEST_KEEP_FAILED=1: out.log, written.json,
 * states/after-kill-K.json). Per writer prefix: lines written, missing, written twice, and each
 * run of lines that came after a later line (its generation, the later line's, and their
 * indexes in out.log). Run: `node bench/soak/soak-lines.mjs DIR`. Not type-checked (a tool).
 */
import { readFileSync } from 'node:fs'

const dir = process.argv[2]
const written = JSON.parse(readFileSync(dir + '/written.json', 'utf8'))
const out = readFileSync(dir + '/out.log', 'utf8')
  .split('\n')
  .filter(Boolean)
for (const w of written) {
  const genOf = (seq) => {
    let g = 0
    while (g + 1 < w.generations.length && w.generations[g + 1].from <= seq) g++
    return g
  }
  const lines = out.map((l, i) => [l, i]).filter(([l]) => l.startsWith(w.prefix + '-'))
  const seqs = lines.map(([l, i]) => [Number(l.split('-')[1]), i])
  const seen = new Map()
  let dup = 0
  for (const [s] of seqs) {
    seen.set(s, (seen.get(s) ?? 0) + 1)
  }
  for (const [, c] of seen) if (c > 1) dup++
  let missing = 0
  for (let s = 0; s < w.lines; s++) if (!seen.has(s)) missing++
  // disorder: report runs
  const runs = []
  let maxSeq = -1,
    maxAt = -1
  for (const [s, i] of seqs) {
    if (s < maxSeq) {
      const last = runs.at(-1)
      if (last && last.endSeq === s - 1 && last.endIdx < i) {
        last.endSeq = s
        last.endIdx = i
        last.n++
      } else
        runs.push({
          startSeq: s,
          endSeq: s,
          n: 1,
          gen: genOf(s),
          afterSeq: maxSeq,
          afterGen: genOf(maxSeq),
          startIdx: i,
          endIdx: i,
          afterIdx: maxAt,
        })
    } else {
      maxSeq = s
      maxAt = i
    }
  }
  console.log(
    w.prefix,
    w.mode,
    'lines',
    w.lines,
    'missing',
    missing,
    'dup',
    dup,
    'disorder runs',
    runs.length,
  )
  for (const r of runs.slice(0, 10)) console.log('  ', JSON.stringify(r))
}
