/**
 * Whether logmerge's last checkpoint covers every byte of a file: read from the state file
 * logmerge writes (the same one `logmerge status` reads). A plain truncation destroys what was
 * not read yet, so the selftest truncates only once this is true: any line missing afterwards
 * is then logmerge's loss, not the truncation's.
 */
import { closeSync, fstatSync, openSync } from 'node:fs'
import { loadState } from '../state/checkpoint.js'
import { headsAgree } from '../tail/cursor.js'
import { readHeadSync } from '../tail/input-fs.js'

export function isCommitted(statePath: string, path: string): boolean {
  const fd = openSync(path, 'r')
  let file: { dev: number; ino: number; size: number; head: Buffer }
  try {
    const st = fstatSync(fd)
    const head = readHeadSync(fd)
    file = { dev: st.dev, ino: st.ino, size: st.size, head }
  } finally {
    closeSync(fd)
  }
  const loaded = loadState(statePath)
  if (loaded.kind !== 'ok') return false
  return loaded.state.sources.some(
    (s) =>
      s.dev === file.dev &&
      s.ino === file.ino &&
      s.offset >= file.size &&
      headsAgree(Buffer.from(s.head, 'base64'), file.head),
  )
}
