/**
 * The package's own files that the program reads at run time: package.json (the version, for
 * --version and the build-info metric) and bin/logmerge (the selftest runs the launcher that
 * runs it). Both are found from this module's URL, so this file stays directly under src/: it
 * is then one directory below the package root in every layout that runs it, src/ (vitest),
 * dist/ (tsc) and bundle/ (scripts/bundle.mjs, which puts every chunk in that one directory and
 * fails the build if such a URL names a file that is not there).
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

/** bin/logmerge of this package. */
export const LAUNCHER = fileURLToPath(new URL('../bin/logmerge', import.meta.url))

/** The version in package.json. */
export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string
  }
  return pkg.version
}
