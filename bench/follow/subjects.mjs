// @ts-check
/**
 * Who is measured: each logmerge build (this checkout, A, and every `--logmerge DIR`, B, C...)
 * with each engine, and the peers: GNU `tail -F`, rsyslogd's imfile (inotify), npm `tail` and
 * npm `@logdna/tail-file`. A subject turns one FollowSpec (inputs as a glob or as paths, an
 * output, --from, an open-file limit) into a running process whose output goes to one file.
 * Peers that are not installed stay in the list with the reason, so every table says so.
 *
 * How each follows a glob: logmerge and rsyslog watch it (files created later are followed);
 * `tail` gets the shell's expansion and the npm peer scripts expand it once at start.
 */

import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { distStamp, gitInfo, listEngines, ROOT } from '../lib.mjs'
import { launch } from './launch.mjs'
import { rsyslogUnavailable, rsyslogVersion, writeRsyslogConfig } from './rsyslog.mjs'

export const PEERS = /** @type {const} */ (['tail', 'rsyslog', 'npm-tail', 'logdna'])
/** @typedef {typeof PEERS[number]} PeerName */

const NPM_PEERS = {
  'npm-tail': { pkg: 'tail', version: '2.2.6', script: 'npm-tail.mjs' },
  logdna: { pkg: '@logdna/tail-file', version: '4.0.2', script: 'logdna-tail-file.mjs' },
}

/**
 * @typedef {object} Build
 * @property {string} label     A for this checkout, then B, C... for each --logmerge DIR
 * @property {string} root
 * @property {string} bin
 * @property {string} commit
 * @property {string[]} dirty   uncommitted files under its src/
 * @property {string} dist      hash of its dist/*.js
 * @property {string[]} engines what its --help offers
 */

/**
 * @typedef {object} FollowSpec
 * @property {string} dir          absolute case directory: the follower's cwd
 * @property {string} [glob]       inputs as one glob, relative to dir (e.g. in/*.log)
 * @property {string[]} [paths]    or as paths, relative to dir
 * @property {string} output       relative to dir
 * @property {'start' | 'end'} from where files there at start are read from
 * @property {number} nofile       open-file limit (soft = hard)
 */

/**
 * @typedef {object} Subject
 * @property {string} id           the row's name in every table
 * @property {'logmerge' | 'peer'} kind
 * @property {string} describe     what it is, with version or commit
 * @property {string | null} unavailable  why it cannot run here, or null
 * @property {string | undefined} engine
 * @property {(spec: FollowSpec) => import('./launch.mjs').Running} start
 */

/** @param {string} root @param {string} label @returns {Build} */
export function describeBuild(root, label) {
  const bin = join(root, 'bin', 'logmerge')
  if (!existsSync(bin)) throw new Error(`--logmerge ${root}: no bin/logmerge there`)
  if (!existsSync(join(root, 'dist', 'cli.js'))) {
    throw new Error(`--logmerge ${root}: no dist/cli.js; run \`npm ci\` or \`npm run build\` there`)
  }
  const git = gitInfo(root)
  return {
    label,
    root,
    bin,
    commit: git.commit,
    dirty: git.dirty,
    dist: distStamp(root),
    engines: listEngines(bin),
  }
}

/** @param {string[]} paths @returns {string} short form of a long path list for the report */
export function showPaths(paths) {
  if (paths.length <= 4) return paths.join(' ')
  return `${paths[0]} ${paths[1]} ... ${paths[paths.length - 1]} (${paths.length.toLocaleString('en')} paths)`
}

/** @param {FollowSpec} spec @returns {string} the inputs as typed in a shell */
function shownInputs(spec) {
  return spec.glob !== undefined ? `'${spec.glob}'` : showPaths(spec.paths ?? [])
}

/** @param {FollowSpec} spec @returns {string[]} */
function inputArgs(spec) {
  return spec.glob !== undefined ? [spec.glob] : (spec.paths ?? [])
}

/** The glob expanded the way a shell would (only the last component holds `*`). */
function expandForShell(/** @type {FollowSpec} */ spec) {
  if (spec.glob === undefined) return spec.paths ?? []
  const r = spawnSync('bash', ['-c', `printf '%s\\0' ${spec.glob}`], {
    cwd: spec.dir,
    encoding: 'latin1',
    maxBuffer: 1 << 26,
  })
  return `${r.stdout}`.split('\0').filter((p) => p !== '')
}

/** @param {string[]} argv */
function checkArgvSize(argv) {
  // ARG_MAX (getconf ARG_MAX, 2 MiB here) bounds argv + environment; 10,000 relative paths
  // such as in/f00000.log take 150 KB, so the benchmarks pass paths on the command line.
  const bytes = argv.reduce((s, a) => s + Buffer.byteLength(a) + 1 + 8, 0)
  if (bytes > 1 << 20) {
    throw new Error(`a command line of ${bytes} bytes is too long for execve (ARG_MAX)`)
  }
}

/**
 * @param {Build} build @param {string} engine @param {boolean} several  more than one build
 * @param {string[]} extraArgs
 * @returns {Subject}
 */
export function logmergeSubject(build, engine, several, extraArgs) {
  const shownBin = build.root === ROOT ? 'bin/logmerge' : join(build.root, 'bin/logmerge')
  return {
    id: several ? `${engine} ${build.label}` : engine,
    kind: 'logmerge',
    engine,
    describe: `logmerge ${build.label} (${build.commit}${build.dirty.length > 0 ? '+changes' : ''}, dist ${build.dist}) --engine ${engine}`,
    unavailable: build.engines.includes(engine)
      ? null
      : `build ${build.label} has no engine ${engine}`,
    start(spec) {
      const args = [...inputArgs(spec), '-o', spec.output, '--engine', engine]
      if (spec.from === 'start') args.push('--from', 'start')
      args.push(...extraArgs)
      checkArgvSize(args)
      const shown = [shownInputs(spec), ...args.slice(inputArgs(spec).length)].join(' ')
      return launch({
        argv: [process.execPath, build.bin, ...args],
        display: `${shownBin} ${shown}`,
        cwd: spec.dir,
        nofile: spec.nofile,
      })
    },
  }
}

/** @param {PeerName} name @returns {Subject} */
export function peerSubject(name) {
  if (name === 'tail') {
    const v = spawnSync('tail', ['--version'], { encoding: 'utf8' })
    const version = `${v.stdout}`.split('\n')[0] ?? ''
    return {
      id: 'tail -F',
      kind: 'peer',
      engine: undefined,
      describe: version || 'tail',
      unavailable: /GNU coreutils/.test(version) ? null : 'GNU tail (coreutils) not found',
      start(spec) {
        const n = spec.from === 'start' ? '+1' : '0'
        const files = expandForShell(spec)
        const args = ['-q', '-n', n, '-F', ...files]
        checkArgvSize(args)
        const shown = spec.glob !== undefined ? spec.glob : showPaths(files)
        return launch({
          argv: ['tail', ...args],
          display: `tail -q -n ${n} -F ${shown} >> ${spec.output}`,
          cwd: spec.dir,
          nofile: spec.nofile,
          stdoutPath: join(spec.dir, spec.output),
        })
      },
    }
  }
  if (name === 'rsyslog') {
    const why = rsyslogUnavailable()
    return {
      id: 'rsyslog',
      kind: 'peer',
      engine: undefined,
      describe: why === null ? `${rsyslogVersion()}, imfile mode=inotify` : 'rsyslogd',
      unavailable: why,
      start(spec) {
        const abs = (/** @type {string} */ p) => join(spec.dir, p)
        const { conf, pidFile, summary } = writeRsyslogConfig(spec.dir, {
          ...(spec.glob !== undefined
            ? { glob: abs(spec.glob) }
            : { paths: (spec.paths ?? []).map(abs) }),
          output: abs(spec.output),
          from: spec.from,
        })
        return launch({
          argv: ['rsyslogd', '-n', '-f', conf, '-i', pidFile],
          display: `rsyslogd -n -f rsyslog.conf -i rsyslog.pid   # rsyslog.conf (paths absolute): ${summary.replaceAll(`${spec.dir}/`, '')}`,
          cwd: spec.dir,
          nofile: spec.nofile,
        })
      },
    }
  }
  const npm = NPM_PEERS[name]
  const script = join(ROOT, 'bench', 'peers', npm.script)
  let installed = null
  try {
    installed = JSON.parse(
      readFileSync(join(ROOT, 'bench', 'node_modules', npm.pkg, 'package.json'), 'utf8'),
    ).version
  } catch {}
  return {
    id: name === 'npm-tail' ? 'npm tail' : '@logdna/tail-file',
    kind: 'peer',
    engine: undefined,
    describe: `npm ${npm.pkg} ${installed ?? '(not installed)'} via bench/peers/${npm.script}`,
    unavailable:
      installed === npm.version
        ? null
        : `npm ${npm.pkg}@${npm.version} not installed (found ${installed ?? 'none'}): run \`npm ci --prefix bench\``,
    start(spec) {
      const args = ['-o', spec.output, '--from', spec.from, ...inputArgs(spec)]
      checkArgvSize(args)
      return launch({
        argv: [process.execPath, script, ...args],
        display: `node ${relative(ROOT, script)} -o ${spec.output} --from ${spec.from} ${shownInputs(spec)}`,
        cwd: spec.dir,
        nofile: spec.nofile,
      })
    },
  }
}

/**
 * @param {{ engines: string[], builds: Build[], peers: PeerName[], extraArgs: string[] }} o
 * @returns {Subject[]} logmerge rows (engine-major, builds side by side), then the peers
 */
export function makeSubjects(o) {
  const several = o.builds.length > 1
  const rows = o.engines.flatMap((e) =>
    o.builds.map((b) => logmergeSubject(b, e, several, o.extraArgs)),
  )
  return [...rows, ...o.peers.map(peerSubject)]
}
