import { spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { chownSync, closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { constants } from 'node:os'
import { dirname, join } from 'node:path'
import { failedError, log, withLock, writeFileAtomic } from '@prov/core'
import { startIsolated } from '../providers/local/isolate'
import { hostId, shiftOwnership } from './idmap'
import { writeLayerFile } from './layer'
import { createManifest, type Manifest, verifyTree } from './manifest'
import { buildDirName, type ImageRecipe, recipeChain } from './recipe'

/**
 * The image cache: one directory per build, shared by every workspace of the machine.
 *
 *   <cache>/<name>-<hash12>/rootfs/         the root filesystem (a derived image: its own layer)
 *   <cache>/<name>-<hash12>/image.json      what was built, when, from what (build id, parent build)
 *   <cache>/<name>-<hash12>/manifest.json   every entry with its hash
 *   <cache>/<name>-<hash12>/verified.json   stat data of the last full check
 *   <cache>/.build-*                        builds in progress (renamed into place when complete)
 *   <cache>/.trash/<build id>/              replaced builds that running sandboxes still use
 *   <cache>/.logs/<name>-<hash12>.log       the last build log
 *   /run/prov/image-users/<build id>/<netns>  running sandboxes per build (gone at reboot)
 *
 * Sandboxes only ever read an image (it is an overlay lower layer); a build is made in a temporary
 * directory and renamed into place, so a failed or interrupted build leaves nothing half-built.
 */
export const IMAGE_SCHEMA = 'prov.server.image/v1'

export function imageCacheDir(): string {
  return process.env.PROV_IMAGE_CACHE || '/var/cache/prov/images'
}

const usersDir = '/run/prov/image-users'
const BUILD_TIMEOUT_MS = 60 * 60_000

export interface BuildInfo {
  schema: typeof IMAGE_SCHEMA
  name: string
  hash: string
  build_id: string
  source: 'builtin' | 'workspace'
  from: { name: string; hash: string; build_id: string } | null
  suite: string | null
  packages: string[]
  cache: string[]
  built_at: string
  build_seconds: number
  entries: number
  bytes: number
  manifest_sha256: string
}

/** A verified build, ready to be an overlay lower layer. */
export interface ReadyImage {
  recipe: ImageRecipe
  dir: string
  info: BuildInfo
  /** Root filesystems of the chain, topmost first (overlay lowerdir order). */
  lowers: string[]
  /** Build ids of the chain (claims keep them from being removed while used). */
  buildIds: string[]
  /** True when this call built it (or rebuilt it). */
  built: boolean
}

const readJson = <T>(file: string): T | undefined => {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T
  } catch {
    return undefined
  }
}

export function readBuildInfo(dir: string): BuildInfo | undefined {
  const info = readJson<BuildInfo>(join(dir, 'image.json'))
  return info && info.schema === IMAGE_SCHEMA && typeof info.build_id === 'string' ? info : undefined
}

/** Builds that were checked in this process: the check runs once per command, not once per server. */
const checkedThisProcess = new Map<string, ReadyImage>()

export type CheckResult = { state: 'ready'; info: BuildInfo } | { state: 'missing' } | { state: 'corrupted' | 'outdated'; problems: string[]; info?: BuildInfo }

/** Checks one build directory against its manifest (quick unless `full`) and its parent build. */
export function checkBuild(dir: string, parent: BuildInfo | null, full = false): CheckResult {
  if (!existsSync(dir)) return { state: 'missing' }
  const info = readBuildInfo(dir)
  if (!info) return { state: 'corrupted', problems: ['image.json is missing or unreadable'] }
  if (parent && info.from?.build_id !== parent.build_id) {
    return { state: 'outdated', problems: [`built on ${info.from?.name ?? '?'} build ${info.from?.build_id ?? '?'}, which was replaced`], info }
  }
  let manifestText: string
  try {
    manifestText = readFileSync(join(dir, 'manifest.json'), 'utf8')
  } catch {
    return { state: 'corrupted', problems: ['manifest.json is missing'], info }
  }
  if (createHash('sha256').update(manifestText).digest('hex') !== info.manifest_sha256) {
    return { state: 'corrupted', problems: ['manifest.json does not match image.json'], info }
  }
  const manifest = JSON.parse(manifestText) as Manifest
  const verified = full ? undefined : readJson<{ build_id: string; stats: Record<string, string> }>(join(dir, 'verified.json'))
  const result = verifyTree(join(dir, 'rootfs'), manifest, verified?.build_id === info.build_id ? verified.stats : undefined)
  if (!result.ok) return { state: 'corrupted', problems: result.problems, info }
  if (result.hashed && result.stats) writeFileAtomic(join(dir, 'verified.json'), JSON.stringify({ build_id: info.build_id, stats: result.stats }))
  return { state: 'ready', info }
}

/** Running sandboxes that use a build (claims whose network namespace still exists). */
export function buildUsers(buildId: string): string[] {
  const dir = join(usersDir, buildId)
  if (!existsSync(dir)) return []
  return readdirSync(dir).filter((netns) => existsSync(`/run/netns/${netns}`))
}

export function claimBuilds(buildIds: string[], netns: string, owner: string): void {
  for (const id of buildIds) {
    mkdirSync(join(usersDir, id), { recursive: true })
    writeFileSync(join(usersDir, id, netns), owner)
  }
}

export function releaseBuilds(netns: string): void {
  if (!existsSync(usersDir)) return
  for (const id of readdirSync(usersDir)) {
    rmSync(join(usersDir, id, netns), { force: true })
    try {
      if (!readdirSync(join(usersDir, id)).length) rmSync(join(usersDir, id), { recursive: true, force: true })
    } catch {
      // raced with another release
    }
  }
}

/** Removes replaced builds no running sandbox uses any more. */
export function collectTrash(cache = imageCacheDir()): void {
  const trash = join(cache, '.trash')
  if (!existsSync(trash)) return
  for (const entry of readdirSync(trash)) {
    if (!buildUsers(entry).length) rmSync(join(trash, entry), { recursive: true, force: true })
  }
}

/** Moves a build out of the way (a corrupted or outdated one): sandboxes using it keep running. */
function retire(dir: string, cache: string): void {
  const id = readBuildInfo(dir)?.build_id ?? `unknown-${randomBytes(6).toString('hex')}`
  mkdirSync(join(cache, '.trash'), { recursive: true })
  const target = join(cache, '.trash', id)
  rmSync(target, { recursive: true, force: true })
  renameSync(dir, target)
  collectTrash(cache)
}

export interface EnsureOptions {
  /** Rebuild even a healthy build. */
  force?: boolean
  /** Check every file's hash instead of the stat data. */
  full?: boolean
  /** Called when a build starts (for progress lines). */
  onBuild?: (recipe: ImageRecipe, reason: string) => void
}

/**
 * Makes sure `recipe` (and the images it is layered on) is built and intact, building or
 * rebuilding what is missing, corrupted or outdated. Concurrent callers (other servers, other
 * commands) wait for one build.
 */
export async function ensureImage(recipe: ImageRecipe, options: EnsureOptions = {}): Promise<ReadyImage> {
  const cache = imageCacheDir()
  let parent: ReadyImage | null = null
  for (const layer of recipeChain(recipe)) {
    const target = layer === recipe
    parent = await ensureLayer(layer, parent, cache, { ...options, force: target ? options.force : false })
  }
  return parent as ReadyImage
}

/** Checks under way in this process: servers created together wait for one check of their image. */
const checking = new Map<string, Promise<ReadyImage>>()

async function ensureLayer(recipe: ImageRecipe, parent: ReadyImage | null, cache: string, options: EnsureOptions): Promise<ReadyImage> {
  const dir = join(cache, buildDirName(recipe))
  const memo = checkedThisProcess.get(dir)
  if (memo && !options.force && (!parent || memo.info.from?.build_id === parent.info.build_id)) return memo
  if (options.force || options.full) return checkLayer(recipe, parent, cache, dir, options)
  const key = `${dir}\0${parent?.info.build_id ?? ''}`
  let pending = checking.get(key)
  if (!pending) {
    pending = checkLayer(recipe, parent, cache, dir, options).finally(() => checking.delete(key))
    checking.set(key, pending)
  }
  return pending
}

async function checkLayer(recipe: ImageRecipe, parent: ReadyImage | null, cache: string, dir: string, options: EnsureOptions): Promise<ReadyImage> {
  mkdirSync(cache, { recursive: true, mode: 0o755 })
  const ready = await withLock(
    join(cache, '.locks', buildDirName(recipe)),
    async () => {
      let reason = 'not built yet'
      const check = checkBuild(dir, parent?.info ?? null, options.full)
      if (check.state === 'ready' && !options.force) return { info: check.info, built: false }
      if (check.state === 'ready') reason = 'rebuild requested'
      if (check.state === 'corrupted' || check.state === 'outdated') {
        reason = `${check.state}: ${check.problems.join(', ')}`
        log().warn(`image ${recipe.name}: ${reason}; rebuilding`)
      }
      if (check.state !== 'missing') retire(dir, cache)
      options.onBuild?.(recipe, reason)
      const info = await build(recipe, parent, cache, dir)
      return { info, built: true }
    },
    { timeoutMs: BUILD_TIMEOUT_MS },
  )
  const result: ReadyImage = {
    recipe,
    dir,
    info: ready.info,
    lowers: [join(dir, 'rootfs'), ...(parent?.lowers ?? [])],
    buildIds: [ready.info.build_id, ...(parent?.buildIds ?? [])],
    built: ready.built || Boolean(parent?.built),
  }
  checkedThisProcess.set(dir, result)
  return result
}

function run(file: string, args: string[], logFile: string, env: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const fd = openSync(logFile, 'a', 0o600)
    const child = spawn(file, args, { stdio: ['ignore', fd, fd], env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8', ...env } })
    closeSync(fd)
    const timer = setTimeout(() => child.kill('SIGKILL'), BUILD_TIMEOUT_MS)
    child.once('error', (error) => {
      clearTimeout(timer)
      reject(failedError(`cannot run ${file}: ${error.message}`, { hint: file === 'mmdebstrap' ? 'apt-get install mmdebstrap' : undefined }))
    })
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      resolve(code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0))
    })
  })
}

/** The lines of a build log that say why apt (or mmdebstrap) failed. */
export function buildFailure(logFile: string): string {
  let text = ''
  try {
    text = readFileSync(logFile, 'utf8')
  } catch {
    return 'no build log'
  }
  const lines = text.split('\n').map((l) => l.trim())
  const apt = lines.filter((l) => /^E: /.test(l))
  if (apt.length) return apt.slice(0, 3).join(' | ')
  return lines.filter(Boolean).slice(-3).join(' | ') || 'no output'
}

/**
 * Runs on the bootstrap image before mmdebstrap's cleanup: no shared host keys; man-db never
 * re-indexes after package installs (mandb costs seconds of CPU per install, and the pages are not
 * there anyway); the offline apt archive.
 */
const bootstrapHook = `#!/bin/sh
set -eu
rm -f "$1"/etc/ssh/ssh_host_*
echo 'man-db man-db/auto-update boolean false' | chroot "$1" debconf-set-selections
rm -f "$1"/var/lib/man-db/auto-update
chroot "$1" apt-get clean
if [ -n "\${PROV_IMAGE_CACHE_PACKAGES:-}" ]; then
  chroot "$1" apt-get install --download-only -y -q --no-install-recommends $PROV_IMAGE_CACHE_PACKAGES
fi
`

/** dpkg filters of the bootstrap image: copyright files and locale.alias are kept (licences, glibc). */
const dpkgExcludes = [
  'path-exclude=/usr/share/man/*',
  'path-exclude=/usr/share/info/*',
  'path-exclude=/usr/share/doc/*',
  'path-include=/usr/share/doc/*/copyright',
  'path-exclude=/usr/share/locale/*',
  'path-include=/usr/share/locale/locale.alias',
]

/** mmdebstrap's own hook folders (Debian package mmdebstrap). */
const mmdebstrapHooks = '/usr/share/mmdebstrap/hooks'

/**
 * What makes a bootstrap take seconds instead of minutes, without changing what is installed:
 * - dpkg does not fsync every unpacked file (force-unsafe-io, and eatmydata for the maintainer
 *   scripts): a half-written build is thrown away anyway, never used;
 * - /usr is merged up front (mmdebstrap's merged-usr hook) instead of by the usrmerge package,
 *   whose conversion script walks the whole tree in Perl;
 * - apt fetches no translations (the images carry no locales).
 * The dpkg and apt options stay in the image (dpkg.cfg.d, apt.conf.d), so package installs inside
 * sandboxes skip the fsyncs too: a sandbox's disk is disposable by design.
 */
export function fastBootstrapOptions(hooks = mmdebstrapHooks): string[] {
  const options = ['--dpkgopt=force-unsafe-io', '--aptopt=Acquire::Languages "none"']
  for (const hook of ['eatmydata', 'merged-usr']) if (existsSync(join(hooks, hook))) options.push(`--hook-dir=${join(hooks, hook)}`)
  return options
}

/** Runs inside a build sandbox over the parent image (packages from the parent's apt lists). */
const layerScript = `set -eu
echo "layer: installing \${PROV_PACKAGES:-nothing}, caching \${PROV_CACHE:-nothing}"
printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d
chmod 755 /usr/sbin/policy-rc.d
if [ -n "$PROV_CACHE" ]; then apt-get install --download-only -y -q --no-install-recommends $PROV_CACHE; fi
ls /var/cache/apt/archives > /var/cache/apt/archives/.prov-keep
if [ -n "$PROV_PACKAGES" ]; then apt-get install -y -q --no-install-recommends $PROV_PACKAGES; fi
rm -f /usr/sbin/policy-rc.d
`

async function build(recipe: ImageRecipe, parent: ReadyImage | null, cache: string, dir: string): Promise<BuildInfo> {
  const started = Date.now()
  const tmp = join(cache, `.build-${buildDirName(recipe)}-${process.pid}-${randomBytes(4).toString('hex')}`)
  const logs = join(cache, '.logs')
  mkdirSync(logs, { recursive: true })
  const logFile = join(logs, `${buildDirName(recipe)}.log`)
  writeFileSync(logFile, `prov image build ${recipe.name} ${recipe.hash} at ${new Date().toISOString()}\n`, { mode: 0o600 })
  mkdirSync(tmp, { recursive: true, mode: 0o755 })
  try {
    const rootfs = join(tmp, 'rootfs')
    if (!parent) {
      if (!recipe.suite) throw failedError(`image ${recipe.name} has neither a base image nor a Debian release`)
      const hook = join(tmp, 'hook.sh')
      writeFileSync(hook, bootstrapHook, { mode: 0o700 })
      const code = await run(
        'mmdebstrap',
        [
          '--variant=minbase',
          '--mode=root',
          '--format=directory',
          `--include=${recipe.packages.join(',')}`,
          // Keep the package lists and the downloaded archive: sandboxes install from them offline.
          '--skip=cleanup/apt',
          ...fastBootstrapOptions(),
          // No manuals, docs or translations, as Debian's slim images: smaller images, and faster
          // package installs inside sandboxes (the options stay in the image's dpkg.cfg.d).
          ...dpkgExcludes.map((rule) => `--dpkgopt=${rule}`),
          `--customize-hook=${hook}`,
          recipe.suite,
          rootfs,
          ...recipe.mirrors,
        ],
        logFile,
        { PROV_IMAGE_CACHE_PACKAGES: recipe.cache.join(' ') },
      )
      if (code !== 0) throw failedError(`image ${recipe.name}: build failed: ${buildFailure(logFile)}`, { location: logFile })
      shiftOwnership(rootfs)
    } else {
      const work = join(tmp, 'work')
      mkdirSync(rootfs, { mode: 0o755 })
      mkdirSync(work, { mode: 0o700 })
      chownSync(rootfs, hostId(0), hostId(0))
      const sandbox = await startIsolated({
        lowers: parent.lowers,
        upper: rootfs,
        work,
        hostname: recipe.name.slice(0, 63),
        network: 'host',
        cgroups: [],
        env: {
          PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
          LANG: 'C.UTF-8',
          DEBIAN_FRONTEND: 'noninteractive',
          PROV_PACKAGES: recipe.packages.join(' '),
          PROV_CACHE: recipe.cache.join(' '),
        },
        command: ['/bin/sh', '-c', layerScript],
        logFile,
      })
      const code = await sandbox.exited
      rmSync(work, { recursive: true, force: true })
      if (code !== 0) throw failedError(`image ${recipe.name}: build failed (exit ${code}): ${buildFailure(logFile)}`, { location: logFile })
      pruneArchive(rootfs)
      for (const file of recipe.files) writeLayerFile(rootfs, parent.lowers, file.path, file.content, file.mode)
      shiftOwnership(rootfs)
    }
    const { manifest, stats } = createManifest(rootfs)
    const manifestText = JSON.stringify(manifest)
    const info: BuildInfo = {
      schema: 'prov.server.image/v1',
      name: recipe.name,
      hash: recipe.hash,
      build_id: `${recipe.hash.slice(0, 12)}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`,
      source: recipe.source,
      from: parent ? { name: parent.recipe.name, hash: parent.recipe.hash, build_id: parent.info.build_id } : null,
      suite: recipe.suite,
      packages: recipe.packages,
      cache: recipe.cache,
      built_at: new Date().toISOString(),
      build_seconds: Math.round((Date.now() - started) / 100) / 10,
      entries: manifest.entries.length,
      bytes: manifest.bytes,
      manifest_sha256: createHash('sha256').update(manifestText).digest('hex'),
    }
    writeFileSync(join(tmp, 'manifest.json'), manifestText)
    writeFileSync(join(tmp, 'verified.json'), JSON.stringify({ build_id: info.build_id, stats }))
    writeFileSync(join(tmp, 'image.json'), `${JSON.stringify(info, null, 2)}\n`)
    renameSync(tmp, dir)
    log().info(`image ${recipe.name} built in ${info.build_seconds} s (${Math.round(info.bytes / 1e6)} MB, ${info.entries} entries)`)
    return info
  } catch (error) {
    rmSync(tmp, { recursive: true, force: true })
    throw error
  }
}

/** Keeps only the .debs a layer was asked to cache (packages it installed were downloaded too). */
function pruneArchive(layer: string): void {
  const archives = join(layer, 'var/cache/apt/archives')
  const keepFile = join(archives, '.prov-keep')
  if (!existsSync(keepFile)) return
  const keep = new Set(readFileSync(keepFile, 'utf8').split('\n'))
  for (const entry of readdirSync(archives)) {
    if (entry.endsWith('.deb') && !keep.has(entry)) rmSync(join(archives, entry), { force: true })
  }
  rmSync(keepFile, { force: true })
}

/** One build directory of the cache, as `image list` shows it. */
export interface CachedBuild {
  dir: string
  name: string
  hash12: string
  info?: BuildInfo
}

export function cachedBuilds(cache = imageCacheDir()): CachedBuild[] {
  if (!existsSync(cache)) return []
  const out: CachedBuild[] = []
  for (const entry of readdirSync(cache)) {
    const match = /^(.+)-([0-9a-f]{12})$/.exec(entry)
    if (!match || entry.startsWith('.')) continue
    const dir = join(cache, entry)
    out.push({ dir, name: match[1], hash12: match[2], info: readBuildInfo(dir) })
  }
  return out.sort((a, b) => a.dir.localeCompare(b.dir))
}

/** Removes a build unless a running sandbox uses it; returns the servers in the way. */
export async function removeBuild(build: CachedBuild, cache = imageCacheDir()): Promise<string[]> {
  return withLock(
    join(cache, '.locks', `${build.name}-${build.hash12}`),
    async () => {
      const users = build.info ? buildUsers(build.info.build_id) : []
      if (users.length) return users
      const target = join(cache, '.trash', `rm-${randomBytes(6).toString('hex')}`)
      mkdirSync(dirname(target), { recursive: true })
      renameSync(build.dir, target)
      rmSync(target, { recursive: true, force: true })
      checkedThisProcess.delete(build.dir)
      return []
    },
    { timeoutMs: BUILD_TIMEOUT_MS },
  )
}
