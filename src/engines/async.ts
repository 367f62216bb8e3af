/**
 * The `async` engine (the notes' `run_tasks`, where both migration paths end): every reader runs
 * on the main event loop, chokidar wakes them, p-limit bounds the reads in flight, and the
 * event-loop writer owns the output. No threads, no lock.
 */
import { once } from 'node:events'
import pLimit from 'p-limit'
import { LoopWriter } from '../sink/loop-writer.js'
import { Discovery, scanInputs } from '../tail/discovery.js'
import { AsyncFollower } from '../tail/tail-async.js'
import type { EngineContext, EngineResult } from './engine.js'

export async function runAsync({
  config,
  log,
  stop,
  events,
}: EngineContext): Promise<EngineResult> {
  let fatal: Error | null = null
  const failed = new AbortController()
  const writer = await LoopWriter.open(config.output, {
    highWaterBytes: config.highWaterBytes,
    log,
    onFatal: (err) => {
      fatal = err
      failed.abort()
    },
  })
  const reopen = () => {
    writer.reopen().catch((err: Error) => log.error(`reopening ${config.output}: ${err.message}`))
  }
  events.on('reopen', reopen)
  const follower = new AsyncFollower({
    follow: !config.once,
    from: config.from,
    maxLineBytes: config.maxLineBytes,
    readChunkBytes: config.readChunkBytes,
    quietMs: 2 * config.pollIntervalMs,
    sink: writer,
    limit: pLimit(config.readConcurrency),
    log,
  })
  const exclude = config.output === '-' ? undefined : config.output
  try {
    if (config.once) {
      await follower.start(await scanInputs(config.inputs, exclude))
      await follower.catchUp()
      await follower.close(true)
    } else {
      const discovery = await Discovery.start(
        config.inputs,
        {
          changedName: (p) => void follower.resolve(p),
          changedData: (p) => void follower.changed(p),
        },
        { exclude, log },
      )
      try {
        await follower.start(await scanInputs(config.inputs, exclude))
        const sweep = setInterval(() => follower.sweep(), config.pollIntervalMs)
        try {
          const ended = AbortSignal.any([stop, failed.signal])
          if (!ended.aborted) await once(ended, 'abort')
        } finally {
          clearInterval(sweep)
        }
      } finally {
        await discovery.close()
      }
      if (!fatal) await follower.catchUp() // drain: what was appended before the signal
      await follower.close(false)
    }
  } finally {
    events.off('reopen', reopen)
    await writer.close()
  }
  if (fatal) throw fatal
  return { unreadable: follower.unreadable }
}
