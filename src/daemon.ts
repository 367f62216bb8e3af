/**
 * The lifecycle around an engine: the start-up checks, signals (SIGTERM/SIGINT drain and exit
 * 0, SIGHUP reopens the output), and the exit status.
 */
import { EventEmitter } from 'node:events'
import type { Config } from './config.js'
import { engines } from './engines/index.js'
import { ExitCode } from './errors.js'
import { checkOutputNotInput, checkOutputWritable } from './guard.js'
import type { Logger } from './log.js'

export async function runDaemon(config: Config, log: Logger): Promise<ExitCode> {
  checkOutputNotInput(config.output, config.inputs)
  checkOutputWritable(config.output, config.statePath)
  const stop = new AbortController()
  const events = new EventEmitter()
  const onStop = (signal: NodeJS.Signals) => {
    if (stop.signal.aborted) {
      log.warn(`${signal} again: exiting without draining`)
      process.exit(128 + (signal === 'SIGINT' ? 2 : 15))
    }
    log.info(`${signal}: draining and stopping`)
    stop.abort()
    // The drain must end: a stuck output (a full disk that never clears) must not hang the stop.
    // What was not written is not in the checkpoint, so a restart reads it again.
    setTimeout(() => {
      log.error(
        `could not drain within ${config.shutdownTimeoutMs} ms (is the output stuck?); exiting; unwritten lines are read again on restart`,
      )
      process.exit(ExitCode.shutdownTimeout)
    }, config.shutdownTimeoutMs).unref()
  }
  const onHup = () => {
    log.info('SIGHUP: reopening the output')
    events.emit('reopen')
  }
  process.on('SIGTERM', onStop)
  process.on('SIGINT', onStop)
  process.on('SIGHUP', onHup)
  try {
    const engine = await engines[config.engine]()
    const result = await engine({ config, log, stop: stop.signal, events })
    if (config.once && result.unreadable.length > 0) {
      log.error(
        `could not read ${result.unreadable.length} input(s): ${result.unreadable.join(', ')}`,
      )
      return ExitCode.inputs
    }
    return ExitCode.ok
  } finally {
    process.off('SIGTERM', onStop)
    process.off('SIGINT', onStop)
    process.off('SIGHUP', onHup)
  }
}
