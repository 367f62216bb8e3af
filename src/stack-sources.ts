/**
 * Stack traces that point into src/. bin/logmerge runs the bundle (bundle/, made by
 * scripts/bundle.mjs), where a frame reads `bundle/file-table-B_bK-3oI.js:1234:5`. Node maps
 * frames to the sources by itself only when source maps are on from the start
 * (--enable-source-maps), and then every start reads and parses the map of every chunk it
 * loads (~13 ms of CPU for the CLI's chunks alone, docs/performance.md, "Start-up: the
 * bundle"). An internal error is rare, so its stack is mapped here when it is printed, from
 * the `.map` file beside each chunk. A frame with no map beside its file (node:, or a map that
 * cannot be read) is left as it is: the mapping only ever adds information.
 */
import { readFileSync } from 'node:fs'
import { SourceMap } from 'node:module'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/** A frame's location: a file URL or an absolute path to a .js file, its line and column. */
const LOCATION = /(file:\/\/\/[^\s()]+?\.m?js|\/[^\s():]+?\.m?js):(\d+):(\d+)/g

/** `stack` with each location in a file that has a source map replaced by its source's. */
export function sourceStack(stack: string): string {
  const maps = new Map<string, SourceMap | null>()
  return stack.replace(LOCATION, (location, file: string, line: string, column: string) => {
    const path = file.startsWith('file:') ? fileURLToPath(file) : file
    let map = maps.get(path)
    if (map === undefined) {
      map = readMap(path)
      maps.set(path, map)
    }
    const origin = map?.findOrigin(Number(line), Number(column))
    if (origin === undefined || !('fileName' in origin)) return location
    // The map's sources are relative to the map (`../src/tail/file-table.ts`).
    return `${resolve(dirname(path), origin.fileName)}:${origin.lineNumber}:${origin.columnNumber}`
  })
}

function readMap(path: string): SourceMap | null {
  try {
    return new SourceMap(JSON.parse(readFileSync(`${path}.map`, 'utf8')))
  } catch {
    return null
  }
}
