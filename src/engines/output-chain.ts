/**
 * What stands between the readers and the event-loop writer, by --order and --format: the
 * writer itself (arrival, raw), the arrival formatter (prefix, json), or the time-order merge
 * with its reorder window (--order time while following). The async and top-down engines
 * build it the same way; --once --order time does not use it (see batch/merge.ts).
 */
import type { Config } from '../config.js'
import { ArrivalFormatter, FormatSink } from '../format/arrival.js'
import { Labels } from '../format/labels.js'
import { DEFAULT_WINDOW_MS } from '../order/time-order.js'
import { TimeOrderSink } from '../order/time-order-sink.js'
import type { BlockSink } from '../sink/sink.js'
import type { TimestampOptions } from '../time/timestamps.js'

export interface OutputChain {
  readonly sink: BlockSink
  readonly labels: Labels
  /** A file was opened at `path` (the follower's onSource). */
  opened(key: string, path: string): void
  /** The follower let the file go. */
  released(key: string): void
  /** Shutdown: write what the time order still holds (before the final checkpoint). */
  finish(): void
  /** --order time: records written after a later one, in all. */
  readonly late: number
}

/** The zone of times without one (--timestamp-zone), for the parsers. */
export function timestampOptions(config: Config): TimestampOptions {
  return config.timestampZone === undefined ? {} : { zone: config.timestampZone }
}

/** A writer that labels what it writes with the files (the fleet publisher: docs/fleet.md). */
interface KnowsFiles {
  opened(key: string, path: string, label: string): void
  released(key: string): void
}

const knowsFiles = (w: BlockSink): w is BlockSink & KnowsFiles =>
  typeof (w as Partial<KnowsFiles>).opened === 'function' &&
  typeof (w as Partial<KnowsFiles>).released === 'function'

export function outputChain(config: Config, writer: BlockSink): OutputChain {
  const labels = new Labels(config.labels ?? {})
  const format = config.format ?? 'raw'
  if (config.order === 'time') {
    const sink = new TimeOrderSink(writer, {
      windowMs: config.reorderWindowMs ?? DEFAULT_WINDOW_MS,
      format,
      labels,
      timestampFormat: config.timestampFormat,
      timestamps: timestampOptions(config),
    })
    return {
      sink,
      labels,
      opened: (key, path) => sink.open(key, path),
      released: (key) => sink.end(key),
      finish: () => sink.finish(),
      get late() {
        return sink.late
      },
    }
  }
  const formatter =
    format === 'raw'
      ? null
      : new ArrivalFormatter({
          format,
          labels,
          timestampFormat: config.timestampFormat,
          timestamps: timestampOptions(config),
        })
  const sink = formatter ? new FormatSink(writer, formatter) : writer
  const files = knowsFiles(writer) ? writer : null
  return {
    sink,
    labels,
    opened: (key, path) => {
      formatter?.open(key, path)
      files?.opened(key, path, labels.labelOf(path))
    },
    released: (key) => files?.released(key),
    finish: () => {},
    late: 0,
  }
}
