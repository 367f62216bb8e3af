/**
 * Where the selftest runs and as whom logmerge runs. Root reads any file whatever its mode, so
 * under root a permission flip would prove nothing: logmerge is then run as `nobody` (uid and
 * gid 65534) when that user can start it; otherwise the flips are left out and the report says
 * so.
 */
import { spawnSync } from 'node:child_process'
import { chmodSync, chownSync, mkdirSync, readdirSync } from 'node:fs'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { LAUNCHER } from '../package-files.js'

/** This package's own launcher: the logmerge under test is the one running the selftest. */
export const BIN = LAUNCHER

export const NOBODY = { uid: 65534, gid: 65534 } as const

export interface Layout {
  readonly dir: string
  /** A temp directory made for this run (removed after a passing run unless --keep). */
  readonly temporary: boolean
  readonly inputs: string
  readonly outputDir: string
  readonly output: string
  readonly state: string
  readonly stderrLog: string
  readonly reportFile: string
}

export class SetupError extends Error {
  override readonly name = 'SetupError'
}

/** Creates the run's directories: `dir` (must not exist or be empty) or a new temp dir. */
export async function prepareLayout(dir: string | null): Promise<Layout> {
  let root: string
  if (dir === null) {
    root = await mkdtemp(join(tmpdir(), 'logmerge-selftest-'))
  } else {
    root = resolve(dir)
    try {
      mkdirSync(root, { recursive: true })
      if (readdirSync(root).length > 0) {
        throw new SetupError(`--dir ${root} is not empty; give a new or empty directory`)
      }
    } catch (err) {
      if (err instanceof SetupError) throw err
      throw new SetupError(`cannot use --dir ${root}: ${(err as Error).message}`)
    }
  }
  const inputs = join(root, 'in')
  const outputDir = join(root, 'out')
  for (const d of [root, inputs, outputDir]) {
    mkdirSync(d, { recursive: true })
    chmodSync(d, 0o755) // mkdtemp makes 0700: logmerge may run as another user
  }
  return {
    dir: root,
    temporary: dir === null,
    inputs,
    outputDir,
    output: join(outputDir, 'out.log'),
    state: join(outputDir, 'state.json'),
    stderrLog: join(root, 'logmerge.stderr.log'),
    reportFile: join(root, 'report.json'),
  }
}

export type RunAs =
  /** Not root: logmerge runs as the current user, and file modes bind it. */
  | { readonly kind: 'self' }
  /** Root, and `nobody` can run logmerge here. */
  | { readonly kind: 'nobody'; readonly uid: number; readonly gid: number }
  /** Root, and `nobody` cannot (the package or the directory is not reachable for it). */
  | { readonly kind: 'root'; readonly why: string }

/** Decides as whom logmerge runs; under root gives the output directory to `nobody`. */
export function chooseUser(layout: Layout): RunAs {
  if (process.getuid?.() !== 0) return { kind: 'self' }
  try {
    chownSync(layout.outputDir, NOBODY.uid, NOBODY.gid)
  } catch (err) {
    return {
      kind: 'root',
      why: `cannot give ${layout.outputDir} to nobody: ${(err as Error).message}`,
    }
  }
  const probe = [
    "const fs = require('node:fs')",
    'fs.accessSync(process.argv[1], fs.constants.R_OK | fs.constants.X_OK)',
    'fs.accessSync(process.argv[2], fs.constants.W_OK | fs.constants.X_OK)',
  ].join(';')
  const checks = [
    { args: [BIN, '--version'], what: `run ${BIN}` },
    { args: ['-e', probe, layout.inputs, layout.outputDir], what: `reach ${layout.dir}` },
  ]
  for (const { args, what } of checks) {
    const r = spawnSync(process.execPath, args, {
      ...NOBODY,
      cwd: layout.outputDir,
      stdio: 'ignore',
      timeout: 60_000,
    })
    if (r.status !== 0) {
      chownSync(layout.outputDir, 0, 0)
      return { kind: 'root', why: `user nobody (65534) cannot ${what}` }
    }
  }
  return { kind: 'nobody', ...NOBODY }
}
