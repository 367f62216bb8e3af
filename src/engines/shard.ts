import { rotationFamily } from '../tail/rotation.js'

/**
 * Which reader thread owns a name. Names of one rotation family (app.log, app.log.1,
 * app.log-20261124, app.log.2.gz) go to the same thread, so a rotated file that turns up under
 * a sibling name is recognised by identity there and not read twice. A stable shard in
 * [0, shards): FNV-1a of the rotation family.
 */
export function shardOf(path: string, shards: number): number {
  let h = 0x811c9dc5
  for (const ch of rotationFamily(path)) {
    h ^= ch.codePointAt(0) as number
    h = Math.imul(h, 0x01000193) >>> 0
  }
  return h % shards
}
