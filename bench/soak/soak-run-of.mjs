// @ts-nocheck: a diagnostic over the soak's JSON files, untyped like them; not product code.
/**
 * soak-run-of: which run of a kept soak directory wrote the output lines at the given indexes
 * (from soak-lines.mjs): the states after each kill give the output's size, so the run that
 * ended with kill K wrote the lines between the sizes after kills K-1 and K. In the kept e2e
 * directory's children/, run K is child K+5 (K >= 2; run 1 is child 2: two busy loops and four
 * writers come first). Run: `node bench/soak/soak-run-of.mjs DIR INDEX...`.
 */
import { readdirSync, readFileSync } from 'node:fs'

const dir = process.argv[2]
const idxs = process.argv.slice(3).map(Number)
const out = readFileSync(dir + '/out.log')
// byte offset of each line start
const starts = [0]
for (let i = 0; i < out.length; i++) if (out[i] === 10) starts.push(i + 1)
const kills = readdirSync(dir + '/states')
  .map((f) => [Number(f.match(/(\d+)/)[1]), JSON.parse(readFileSync(dir + '/states/' + f, 'utf8'))])
  .sort((a, b) => a[0] - b[0])
const lineAt = (size) => {
  let lo = 0,
    hi = starts.length - 1
  while (lo < hi) {
    const m = (lo + hi + 1) >> 1
    if (starts[m] <= size) lo = m
    else hi = m - 1
  }
  return lo
}
const ends = kills.map(([k, s]) => [k, s.output ? lineAt(s.output.size) : 0])
for (const idx of idxs) {
  const k = ends.find(([, e]) => e > idx)
  console.log(
    'line',
    idx,
    '-> run',
    k ? k[0] : 'final',
    '(kill K means the run ended by kill K; state after it has',
    k?.[1],
    'lines)',
  )
}
