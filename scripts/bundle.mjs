// @ts-check
/**
 * Bundles what bin/logmerge runs into bundle/ (`npm run build` runs it after tsc).
 *
 * Why: Node's ESM loader resolves, reads and links every module one by one, and the program is
 * ~90 modules of dist/ plus its dependencies' (commander alone is 7 CommonJS files). Loaded
 * from a few chunks, a start costs ~35-40 ms less CPU on the main thread, and each reader
 * thread 12-28 ms less (docs/performance.md, "Start-up: the bundle").
 *
 * The layout the program relies on:
 * - Five entries, named as the files they replace, because the code finds its threads by a URL
 *   relative to itself (`new URL('./worker.js', import.meta.url)` in reader-threads.ts, and
 *   reader-thread.js, part-thread.js): cli.js, prestart.js (bin/logmerge starts the reader
 *   thread with it before the CLI loads: one copy of its state, shared with cli.js through a
 *   chunk), worker.js, reader-thread.js and part-thread.js.
 * - Every chunk in the one directory bundle/, one below the package root like dist/ and src/,
 *   so `../package.json` from src/package-files.ts holds in all three.
 * - Chunks per dynamic import: what a run does not use (the fleet, metrics, the selftest, an
 *   engine not chosen) is not loaded. One file with everything in it took longer to load
 *   than dist/ (1.4 MB to parse).
 * After writing, every `new URL('<literal>', import.meta.url)` in the output must name a file
 * that exists, or the build fails: a moved file or a new thread entry cannot go unnoticed.
 *
 * Dependencies are bundled too (~10 ms less CPU than loading them from node_modules, mostly
 * commander); their licences are collected into bundle/THIRD-PARTY-LICENSES.md. picomatch
 * stays in node_modules: src/tail/inputs.ts loads it through createRequire, out of the
 * bundler's sight. Source maps go beside the chunks (without the sources' text); Node does not
 * read them unless asked (--enable-source-maps), and an internal error's stack is mapped when
 * printed (src/stack-sources.ts).
 *
 *   node scripts/bundle.mjs
 */

import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join, relative, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'rolldown'

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)))
const OUT = join(ROOT, 'bundle')

/** Entry name (the file's name in bundle/, without .js) -> source. */
const ENTRIES = {
  cli: 'src/cli.ts',
  prestart: 'src/batch/prestart.ts',
  worker: 'src/engines/worker.ts',
  'reader-thread': 'src/batch/reader-thread.ts',
  'part-thread': 'src/batch/part-thread.ts',
}

const started = performance.now()
const result = await build({
  input: Object.fromEntries(Object.entries(ENTRIES).map(([name, src]) => [name, join(ROOT, src)])),
  platform: 'node',
  logLevel: 'warn',
  output: {
    dir: OUT,
    cleanDir: true,
    format: 'esm',
    entryFileNames: '[name].js',
    chunkFileNames: '[name]-[hash].js',
    sourcemap: true,
    sourcemapExcludeSources: true,
  },
})

const chunks = result.output.filter((o) => o.type === 'chunk')
checkUrls(chunks)
writeLicenses(chunks.flatMap((c) => c.moduleIds))
const bytes = chunks.reduce((sum, c) => sum + Buffer.byteLength(c.code), 0)
process.stdout.write(
  `bundle: ${chunks.length} chunks, ${Math.round(bytes / 1024)} KiB in ${relative(ROOT, OUT)}/ (${Math.round(performance.now() - started)} ms)\n`,
)

/**
 * Fails the build if a `new URL('<literal>', import.meta.url)` of a chunk names a file that is
 * not there (relative to bundle/, where every chunk is).
 * @param {{ fileName: string, code: string }[]} chunks
 */
function checkUrls(chunks) {
  const missing = []
  for (const chunk of chunks) {
    for (const m of chunk.code.matchAll(
      /new URL\(\s*(["'`])([^"'`$]+)\1\s*,\s*import\.meta\.url/g,
    )) {
      const target = join(OUT, /** @type {string} */ (m[2]))
      if (!existsSync(target))
        missing.push(`${chunk.fileName}: ${m[2]} (${relative(ROOT, target)})`)
    }
  }
  if (missing.length > 0) {
    throw new Error(
      `bundle: these files, named relative to a chunk, are not there (an entry missing from ENTRIES in scripts/bundle.mjs, or a path that assumes dist/'s layout):\n  ${missing.join('\n  ')}`,
    )
  }
}

/**
 * Writes bundle/THIRD-PARTY-LICENSES.md: name, version, licence and licence text of each
 * package under node_modules that has code in the bundle.
 * @param {string[]} moduleIds
 */
function writeLicenses(moduleIds) {
  /** @type {Set<string>} */
  const dirs = new Set()
  for (const id of moduleIds) {
    const parts = id.split(sep)
    const at = parts.lastIndexOf('node_modules')
    if (at < 0) continue
    const name = parts[at + 1]?.startsWith('@') ? 2 : 1
    dirs.add(parts.slice(0, at + 1 + name).join(sep))
  }
  const sections = [...dirs].sort().map((dir) => {
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))
    const file = readdirSync(dir).find((f) => /^(licen[cs]e|copying)(\.|$)/i.test(f))
    const text =
      file === undefined
        ? '(no licence file in the package)'
        : readFileSync(join(dir, file), 'utf8').trim()
    return `## ${pkg.name} ${pkg.version} (${pkg.license ?? 'licence not stated'})\n\n\`\`\`\n${text}\n\`\`\`\n`
  })
  writeFileSync(
    join(OUT, 'THIRD-PARTY-LICENSES.md'),
    `# Third-party code in bundle/\n\nThe bundle (scripts/bundle.mjs) holds code of these packages.\n\n${sections.join('\n')}`,
  )
}
