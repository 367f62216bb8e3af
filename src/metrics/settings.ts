/**
 * The metrics options (daemon-wide: one endpoint, one file, whatever the number of jobs),
 * checked once at the edge: `--metrics-listen ADDRESS:PORT`, `--metrics-file PATH`,
 * `--metrics-max-inputs N` and their config keys.
 */
import { resolve } from 'node:path'
import { integerOption } from '../config.js'
import { errors } from '../errors.js'
import { type ListenAddress, parseListen } from './listen.js'

/** Inputs per job with series of their own; the rest are summed under input="other". */
export const DEFAULT_MAX_INPUTS = 100

export interface MetricsOptions {
  metricsListen?: string
  metricsFile?: string
  metricsMaxInputs?: string | number
}

export interface MetricsSettings {
  readonly listen: ListenAddress | null
  /** Absolute path of the text file for node_exporter's textfile collector, or null. */
  readonly file: string | null
  readonly maxInputs: number
}

/** The metrics settings, or null when neither --metrics-listen nor --metrics-file is given. */
export function metricsSettings(options: MetricsOptions, cwd: string): MetricsSettings | null {
  const maxInputs = integerOption(
    '--metrics-max-inputs',
    options.metricsMaxInputs,
    DEFAULT_MAX_INPUTS,
    0,
  )
  const listen = options.metricsListen === undefined ? null : listenOption(options.metricsListen)
  const file = options.metricsFile === undefined ? null : resolve(cwd, options.metricsFile)
  if (listen === null && file === null) return null
  return { listen, file, maxInputs }
}

export function listenOption(text: string, flag = '--metrics-listen'): ListenAddress {
  const parsed = parseListen(text)
  if ('problem' in parsed) {
    throw errors.usage(
      `\`${flag}\`: ${parsed.problem}, got \`${text}\``,
      'the docs recommend 127.0.0.1 (docs/service.md, "Monitoring")',
    )
  }
  return parsed
}
