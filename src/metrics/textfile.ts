/**
 * `--metrics-file PATH`: the exposition written to a file every checkpoint interval, for
 * node_exporter's textfile collector (Debian's prometheus-node-exporter reads
 * /var/lib/prometheus/node-exporter/*.prom), so a sandboxed service needs no socket. Replaced
 * atomically (replaceFile: a temp file in the same directory, renamed over it), so the
 * collector never reads half a file; not fsynced: a crash at worst leaves the previous one, and
 * a disk flush every second would cost more than the file is worth. Mode 0644: node_exporter
 * runs as another user.
 */
import { replaceFile } from '../atomic-file.js'
import type { Logger } from '../log.js'

export class MetricsFile {
  readonly path: string
  readonly #expose: () => Promise<string>
  readonly #log: Logger
  #writing: Promise<void> = Promise.resolve()

  constructor(path: string, expose: () => Promise<string>, log: Logger) {
    this.path = path
    this.#expose = expose
    this.#log = log
  }

  /** Writes the file now, after any write under way. A failure is a warning, said once. */
  write(): Promise<void> {
    this.#writing = this.#writing.then(() => this.#writeNow())
    return this.#writing
  }

  async #writeNow(): Promise<void> {
    try {
      await replaceFile(this.path, await this.#expose(), { fsync: false, mode: 0o644 })
      this.#log.forget('metrics-file')
    } catch (err) {
      this.#log.warnOnce(
        'metrics-file',
        `cannot write metrics file ${this.path}: ${(err as Error).message}; will retry`,
      )
    }
  }
}
