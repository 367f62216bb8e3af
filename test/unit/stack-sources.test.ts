/**
 * sourceStack maps the frames of a bundled file back to the TypeScript sources through the
 * .map beside it. The first test bundles two small modules with rolldown exactly as
 * scripts/bundle.mjs bundles the program (source maps beside, without the sources' text), runs
 * them and maps the real stack of the error they throw; the last looks at the real bundle/
 * (npm test builds it first).
 */
import { spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { build } from 'rolldown'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { sourceStack } from '../../src/stack-sources.js'

let dir = ''
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'logmerge-stack-'))
})
afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('sourceStack', () => {
  it('maps the frames of a bundled chunk to the lines of the .ts sources', async () => {
    await mkdir(join(dir, 'src'))
    writeFileSync(
      join(dir, 'src', 'deep.ts'),
      [
        'export function fail(what: string): never {',
        "  const message: string = 'deep failure: ' + what",
        '  throw new Error(message)',
        '}',
        '',
      ].join('\n'),
    )
    writeFileSync(
      join(dir, 'src', 'entry.ts'),
      [
        "import { fail } from './deep.js'",
        '',
        'export function run(): void {',
        "  fail('x')",
        '}',
        '',
      ].join('\n'),
    )
    await build({
      input: { entry: join(dir, 'src', 'entry.ts') },
      platform: 'node',
      logLevel: 'silent',
      output: {
        dir: join(dir, 'bundle'),
        format: 'esm',
        sourcemap: true,
        sourcemapExcludeSources: true,
      },
    })
    // In a process of its own: vitest would load the file through its own module runner.
    const url = pathToFileURL(join(dir, 'bundle', 'entry.js')).href
    const ran = spawnSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `try { (await import('${url}')).run() } catch (e) { console.log(e.stack) }`,
      ],
      { encoding: 'utf8' },
    )
    const stack = ran.stdout.trim()
    expect(stack).toContain(`${join(dir, 'bundle', 'entry.js')}:`)

    const mapped = sourceStack(stack)
    expect(mapped).toMatch(/^Error: deep failure: x\n/)
    expect(mapped).toContain(`${join(dir, 'src', 'deep.ts')}:3:9`)
    expect(mapped).toContain(`${join(dir, 'src', 'entry.ts')}:4:3`)
    expect(mapped).not.toContain(join(dir, 'bundle', 'entry.js'))
  })

  it('leaves frames whose file has no readable map as they are', () => {
    writeFileSync(join(dir, 'plain.js'), 'throw 1\n')
    writeFileSync(join(dir, 'broken.js'), 'throw 1\n')
    writeFileSync(join(dir, 'broken.js.map'), '{ not json')
    const stack = [
      'Error: x',
      `    at a (${join(dir, 'plain.js')}:1:1)`,
      `    at ${pathToFileURL(join(dir, 'broken.js')).href}:1:1`,
      `    at b (${join(dir, 'missing.js')}:1:1)`,
      '    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)',
    ].join('\n')
    expect(sourceStack(stack)).toBe(stack)
    expect(sourceStack('not a stack')).toBe('not a stack')
  })

  it('the built bundle/ maps to src/: each chunk has its map, naming the .ts sources', () => {
    const root = join(import.meta.dirname, '..', '..')
    const cli = join(root, 'bundle', 'cli.js')
    const lines = readFileSync(cli, 'utf8').split('\n')
    // A string only src/cli.ts holds: the program's description.
    const text = 'Follow many log files and merge their complete lines into one output.'
    const at = lines.findIndex((l) => l.includes(text))
    expect(at).toBeGreaterThanOrEqual(0)
    const column = (lines[at] ?? '').indexOf(text) + 1
    const stack = `Error: x\n    at buildProgram (${cli}:${at + 1}:${column})`
    const source = readFileSync(join(root, 'src', 'cli.ts'), 'utf8').split('\n')
    const line = source.findIndex((l) => l.includes(text))
    expect(sourceStack(stack)).toMatch(
      new RegExp(`at buildProgram \\(${join(root, 'src', 'cli.ts')}:${line + 1}:\\d+\\)$`),
    )
    const map = JSON.parse(readFileSync(`${cli}.map`, 'utf8')) as { sourcesContent?: unknown }
    expect(map.sourcesContent, 'the sources are not copied into the maps').toBeUndefined()
  })
})
