/**
 * The fleet's options (issue 18), checked once: a `nats://` output makes a run a host (it
 * publishes its lines to the stream), a `nats://` input makes it the centre (it merges the
 * stream into its output). The flags that only mean something for one of the two are refused
 * elsewhere, so a typo'd run fails at once instead of doing something else quietly.
 */
import { mkdirSync } from 'node:fs'
import { hostname } from 'node:os'
import { join, resolve } from 'node:path'
import { errors } from '../errors.js'
import { type FleetUrl, hostToken, isFleetUrl, parseFleetUrl } from './url.js'

/** Defaults of the stream logmerge creates when it does not exist yet. */
export const STREAM_DEFAULTS = {
  replicas: 1,
  /** The stream's limit; hosts wait (back-pressure) while it is full. */
  maxBytes: 1024 ** 3,
} as const

/** What the user may give, as commander or the config file hands it over. */
export interface FleetOptions {
  hostId?: string
  natsCreds?: string
  natsReplicas?: string | number
  natsMaxBytes?: string | number
  natsTlsCa?: string
  natsTlsCert?: string
  natsTlsKey?: string
  natsSkipLost?: boolean
}

export const FLEET_OPTION_KEYS = [
  'hostId',
  'natsCreds',
  'natsReplicas',
  'natsMaxBytes',
  'natsTlsCa',
  'natsTlsCert',
  'natsTlsKey',
  'natsSkipLost',
] as const satisfies readonly (keyof FleetOptions)[]

export interface TlsFiles {
  readonly ca?: string
  readonly cert?: string
  readonly key?: string
}

export interface FleetConfig {
  /** host: files -> stream (a nats:// output); centre: stream -> file (a nats:// input). */
  readonly role: 'host' | 'centre'
  readonly url: FleetUrl
  /** host: who it publishes as (--host-id, default the host name). */
  readonly hostId: string
  /** --nats-creds: a NATS credentials file (JWT and seed). */
  readonly creds?: string
  /** TLS files; present (maybe empty) when TLS is required (tls:// or any file given). */
  readonly tls?: TlsFiles
  /** Replicas of a stream logmerge creates. */
  readonly replicas: number
  /** The byte limit of a stream logmerge creates (see stream.ts for how it is enforced). */
  readonly maxBytes: number
  /** centre: go on past messages the stream no longer holds (after saying which). */
  readonly skipLost: boolean
}

/**
 * The fleet side of a run, or null for an ordinary one. `inputs` and `output` as given;
 * `parseInt` parses a count or size flag the way the others are (config.ts).
 */
export function fleetConfig(
  inputs: readonly string[],
  output: string | undefined,
  options: FleetOptions,
  cwd: string,
  number: (
    flag: string,
    value: string | number | undefined,
    fallback: number,
    min: number,
  ) => number,
): FleetConfig | null {
  const side = fleetSide(inputs, output, options)
  if (side === null) return null
  const { role, url } = side
  const hostId = options.hostId ?? hostname()
  if (role === 'host') validateHostId(hostId)
  const path = (p: string | undefined) => (p === undefined ? undefined : resolve(cwd, p))
  const ca = path(options.natsTlsCa)
  const cert = path(options.natsTlsCert)
  const key = path(options.natsTlsKey)
  if ((cert === undefined) !== (key === undefined)) {
    throw errors.usage(
      '--nats-tls-cert and --nats-tls-key go together (a client certificate and its key)',
    )
  }
  const wantsTls = url.scheme === 'tls' || ca !== undefined || cert !== undefined
  const creds = path(options.natsCreds)
  if (creds !== undefined && (url.user !== undefined || url.token !== undefined)) {
    throw errors.usage(
      `--nats-creds and credentials in the URL (${url.display}) both given`,
      'use one of them',
    )
  }
  return {
    role,
    url,
    hostId,
    ...(creds !== undefined && { creds }),
    ...(wantsTls && {
      tls: {
        ...(ca !== undefined && { ca }),
        ...(cert !== undefined && { cert }),
        ...(key !== undefined && { key }),
      },
    }),
    replicas: number('--nats-replicas', options.natsReplicas, STREAM_DEFAULTS.replicas, 1),
    maxBytes: number('--nats-max-bytes', options.natsMaxBytes, STREAM_DEFAULTS.maxBytes, 1024 ** 2),
    skipLost: options.natsSkipLost ?? false,
  }
}

/**
 * Whether this run is a fleet host (a nats:// output), the centre (a nats:// input) or neither
 * (null), with its stream's URL; a run that mixes them, or gives one side's flags to the
 * other, is a usage error (a malformed URL is said before a flag of the wrong side).
 */
function fleetSide(
  inputs: readonly string[],
  output: string | undefined,
  options: FleetOptions,
): { role: 'host' | 'centre'; url: FleetUrl } | null {
  const urlInputs = inputs.filter((i) => isFleetUrl(i))
  const out = isFleetUrl(output) ? output : undefined
  if (urlInputs.length === 0 && out === undefined) {
    const given = FLEET_OPTION_KEYS.filter((k) => options[k] !== undefined)
    if (given.length > 0) {
      throw errors.usage(
        `${given.map(flagOf).join(', ')} ${given.length === 1 ? 'is' : 'are'} for a nats:// output or input, and this run has neither`,
        'publish with -o nats://HOST:4222/STREAM, or merge a stream with nats://HOST:4222/STREAM as the input',
      )
    }
    return null
  }
  if (out !== undefined && urlInputs.length > 0) {
    throw errors.usage(
      'a nats:// input and a nats:// output in one run: logmerge either publishes files to a stream or merges a stream into a file',
      'run the hosts with -o nats://... and the centre with nats://... as its input',
    )
  }
  if (urlInputs.length > 0 && inputs.length !== 1) {
    throw errors.usage(
      `the centre takes one input, the stream: got ${inputs.length} inputs (${inputs.map((i) => (isFleetUrl(i) ? 'a stream' : i)).join(', ')})`,
      'merge files on the host that has them (logmerge FILES -o nats://...), or run a second job for local files',
    )
  }
  const role = out !== undefined ? 'host' : 'centre'
  const url = parseFleetUrl(out ?? (urlInputs[0] as string), role === 'host' ? '--output' : 'input')
  if (role === 'centre') {
    for (const k of ['hostId'] as const) {
      if (options[k] !== undefined) {
        throw errors.usage(
          `${flagOf(k)} is for a host (a nats:// output); the centre merges every host`,
        )
      }
    }
  } else if (options.natsSkipLost !== undefined) {
    throw errors.usage('--nats-skip-lost is for the centre (a nats:// input), not a host')
  }
  return { role, url }
}

function validateHostId(id: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(id)) {
    throw errors.usage(
      `Expected \`--host-id\` to be 1 to 128 letters, digits, ".", "_" or "-" (not starting with one of the last three), got \`${id}\``,
      'give --host-id NAME (the default is the host name)',
    )
  }
  // Two ids that differ only in "." and "_" would share a subject.
  if (hostToken(id) !== id && hostToken(id).length === 0) throw errors.usage(`bad --host-id ${id}`)
}

/**
 * Where a host keeps its state by default (it has no output file to keep it beside):
 * `stateDirectory` (config), else `$STATE_DIRECTORY` (systemd), else `$XDG_STATE_HOME/logmerge`,
 * else `~/.local/state/logmerge`; named after the stream and the host id.
 */
export function hostStatePath(
  url: FleetUrl,
  hostId: string,
  stateDirectory: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): { path: string; dir: string; xdg: boolean } {
  const name = `nats-${url.stream}-${hostToken(hostId)}.logmerge-state.json`
  const systemd = env.STATE_DIRECTORY?.split(':')[0]
  const dir =
    stateDirectory ??
    systemd ??
    (env.XDG_STATE_HOME
      ? join(env.XDG_STATE_HOME, 'logmerge')
      : join(env.HOME ?? '/', '.local', 'state', 'logmerge'))
  return { path: join(dir, name), dir, xdg: stateDirectory === undefined && systemd === undefined }
}

/** The flag of a fleet option, for messages. */
export function flagOf(key: keyof FleetOptions): string {
  return `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`
}

/** A host publishes lines as they are: order and format belong to the centre. */
export function refuseHostSettings(
  fleet: FleetConfig,
  settings: { readonly order: string; readonly format?: string },
): void {
  if (fleet.role !== 'host') return
  if (settings.order === 'time') {
    throw errors.usage(
      '`--order time` with a nats:// output: a host publishes lines in arrival order',
      'give --order time to the centre (the logmerge reading the stream): it merges every host in time order',
    )
  }
  if (settings.format !== undefined && settings.format !== 'raw') {
    throw errors.usage(
      `\`--format ${settings.format}\` with a nats:// output: a host publishes lines as they are`,
      'give --format to the centre: it labels each line with its host and file',
    )
  }
}

/**
 * Before the start-up checks: a host's default state directory under $XDG_STATE_HOME or
 * ~/.local/state is made (systemd makes $STATE_DIRECTORY; a directory given is the user's).
 */
export function prepareFleet(config: {
  readonly fleet?: FleetConfig
  readonly statePath: string | null
}): void {
  const fleet = config.fleet
  if (fleet?.role !== 'host' || config.statePath === null) return
  const d = hostStatePath(fleet.url, fleet.hostId, undefined)
  if (d.xdg && d.path === config.statePath) mkdirSync(d.dir, { recursive: true, mode: 0o700 })
}
