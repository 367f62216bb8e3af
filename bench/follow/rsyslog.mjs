// @ts-check
/**
 * A private rsyslogd for the benchmarks: its own config, work directory and pid file in the
 * case directory, run in the foreground as the current user (`rsyslogd -n -f CONF -i PID`).
 * imfile reads the inputs in inotify mode (one wildcard input for a glob, one input a path
 * otherwise) and one omfile action writes each line's message and a newline, nothing else,
 * to the output. The inputs are bound to their own ruleset so that rsyslogd's own messages
 * ("start", "exiting") do not reach the output. freshStartTail="on" is `--from end` (files
 * there at start are read from their end); "off" reads them from the start.
 * https://www.rsyslog.com/doc/configuration/modules/imfile.html
 */

import { spawnSync } from 'node:child_process'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

/** @param {string} s @returns {string} a quoted RainerScript string */
const q = (s) => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`

/**
 * Writes DIR/rsyslog.conf and empties DIR/rsyslog-work.
 * @param {string} dir  absolute case directory
 * @param {{ glob?: string, paths?: string[], output: string, from: 'start' | 'end' }} o
 *   glob, paths, output: absolute
 * @returns {{ conf: string, pidFile: string, summary: string }}
 */
export function writeRsyslogConfig(dir, o) {
  const work = join(dir, 'rsyslog-work')
  rmSync(work, { recursive: true, force: true })
  mkdirSync(work, { recursive: true })
  const conf = join(dir, 'rsyslog.conf')
  const pidFile = join(dir, 'rsyslog.pid')
  rmSync(pidFile, { force: true })
  const fresh = o.from === 'end' ? 'on' : 'off'
  const files = o.glob !== undefined ? [o.glob] : (o.paths ?? [])
  const head = [
    `global(workDirectory=${q(work)} maxMessageSize="64k")`,
    'module(load="imfile" mode="inotify")',
    'template(name="lineOnly" type="string" string="%msg%\\n")',
    'ruleset(name="follow") {',
    `  action(type="omfile" file=${q(o.output)} template="lineOnly")`,
    '}',
  ]
  const inputs = files.map(
    (f) =>
      `input(type="imfile" file=${q(f)} tag="follow" ruleset="follow" freshStartTail=${q(fresh)})`,
  )
  writeFileSync(conf, `${[...head, ...inputs].join('\n')}\n`)
  const summary =
    inputs.length <= 4
      ? [...head, ...inputs].join('; ')
      : `${[...head, inputs[0]].join('; ')}; ... (${inputs.length} input() lines)`
  return { conf, pidFile, summary }
}

/** @returns {string | null} why rsyslogd with imfile cannot be used here, or null */
export function rsyslogUnavailable() {
  const v = spawnSync('rsyslogd', ['-v'], { encoding: 'utf8' })
  if (v.error || v.status !== 0) return 'rsyslogd not installed (apt-get install rsyslog)'
  const dir = join('/tmp', `logmerge-bench-rsyslog-check-${process.pid}`)
  try {
    mkdirSync(dir, { recursive: true })
    const { conf } = writeRsyslogConfig(dir, {
      glob: join(dir, '*.log'),
      output: join(dir, 'out'),
      from: 'end',
    })
    const r = spawnSync('rsyslogd', ['-N1', '-f', conf], { encoding: 'utf8' })
    if (r.status !== 0) return `rsyslogd -N1 rejects the config: ${`${r.stderr}`.trim()}`
    return null
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** @returns {string} rsyslogd's version line */
export function rsyslogVersion() {
  const v = spawnSync('rsyslogd', ['-v'], { encoding: 'utf8' })
  const first = `${v.stdout}`.split('\n')[0] ?? ''
  return (
    first
      .replace(/\s+compiled with:.*$/, '')
      .replace(/\s+/g, ' ')
      .trim() || 'unknown'
  )
}
