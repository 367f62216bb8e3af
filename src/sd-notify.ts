/**
 * systemd's service notifications (sd_notify(3)) for `Type=notify`: READY=1 once every job
 * follows its inputs, STOPPING=1 when draining starts, STATUS= for `systemctl status`, and
 * WATCHDOG=1 keep-alives when the unit sets WatchdogSec=.
 *
 * The protocol is one datagram on the AF_UNIX socket named by NOTIFY_SOCKET. Node cannot send
 * AF_UNIX datagrams without a native addon, so each message is sent by systemd's own
 * `systemd-notify` tool, run as a child. The message then comes from the child's PID, which
 * needs `NotifyAccess=all` in the unit; and systemd can attribute it to the unit only while the
 * child is alive. Since systemd 246, `systemd-notify` (without --no-block) waits on a barrier
 * until systemd has processed the message (sd_notify_barrier), so it is still alive when
 * systemd looks: Debian 12's systemd 252 has this. See docs/service.md.
 */
import { spawn } from 'node:child_process'
import { describeErrno } from './errors.js'
import type { Logger } from './log.js'

export interface Notifier {
  /** READY=1: start-up is done. */
  ready(status: string): void
  /** STOPPING=1: draining. */
  stopping(status: string): void
  /** Stops the watchdog keep-alives. */
  close(): void
}

/** A notifier when systemd asked for notifications (NOTIFY_SOCKET is set), else null. */
export function systemdNotifier(
  log: Logger,
  env: NodeJS.ProcessEnv = process.env,
  command = 'systemd-notify',
): Notifier | null {
  if (!env.NOTIFY_SOCKET) return null
  const send = (fields: readonly string[], done?: () => void) => {
    const child = spawn(command, fields, { stdio: 'ignore' })
    child.once('error', (err: NodeJS.ErrnoException) => {
      log.warnOnce(
        'sd-notify',
        `NOTIFY_SOCKET is set but ${command} could not be run (${describeErrno(err)}): systemd does not hear READY=1 or the watchdog (install systemd's systemd-notify, or use Type=exec in the unit)`,
      )
      done?.()
    })
    child.once('exit', (code) => {
      if (code !== 0 && code !== null) {
        log.warnOnce('sd-notify', `${command} ${fields.join(' ')} failed (exit ${code})`)
      }
      done?.()
    })
    child.unref() // never keeps a stopping daemon alive
  }
  const watchdog = startWatchdog(env, send)
  return {
    ready: (status) => send(['READY=1', `STATUS=${status}`]),
    stopping: (status) => send(['STOPPING=1', `STATUS=${status}`]),
    close: () => watchdog?.close(),
  }
}

/**
 * WATCHDOG=1 every half of WatchdogSec= (systemd's advice), when the watchdog is meant for this
 * process (WATCHDOG_PID unset or ours). It proves the main event loop runs: a loop stuck for
 * longer makes systemd kill and restart the service (the state file makes that lossless).
 */
function startWatchdog(
  env: NodeJS.ProcessEnv,
  send: (fields: readonly string[], done?: () => void) => void,
): { close(): void } | null {
  const usec = Number(env.WATCHDOG_USEC)
  const forUs = env.WATCHDOG_PID === undefined || Number(env.WATCHDOG_PID) === process.pid
  if (!Number.isInteger(usec) || usec <= 0 || !forUs) return null
  let sending = false
  const ping = () => {
    if (sending) return // the last one has not been processed yet: do not pile them up
    sending = true
    send(['WATCHDOG=1'], () => {
      sending = false
    })
  }
  ping()
  const timer = setInterval(ping, Math.max(1, Math.floor(usec / 2000)))
  timer.unref()
  return { close: () => clearInterval(timer) }
}
