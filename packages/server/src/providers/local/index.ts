import { existsSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import {
  ensureWorkspaceKey,
  expandHome,
  failedError,
  forgetHostKey,
  readJsonFile,
  recordHostKeys,
  removeContained,
  type ServerRecord,
  writeFileAtomic,
} from '@prov/core'
import { FIRST_BOOT_DOCUMENT } from '../../dayzero/first-boot'
import { writeLayerFile } from '../../images/layer'
import { DEFAULT_IMAGE, findRecipe, type ImageRecipe, loadStoredRecipe, type StoredRecipe, storeRecipe } from '../../images/recipe'
import { claimBuilds, ensureImage, type ReadyImage } from '../../images/store'
import type { LocalProviderConfig, Provider, ProviderContext, ProviderPlan, ServerSpec } from '../types'
import { parseBinds } from './binds'
import { type AppliedLimits, applyLimits } from './cgroups'
import { type HostBind, launcherAvailable } from './isolate'
import { allocateAddress, inSubnet, parseSubnet } from './net'
import { prepareUpper, sshUserPattern } from './root'
import {
  assertNotForeign,
  claimAddress,
  foreignAddresses,
  type LocalSettings,
  launch,
  removeBridgeIfUnused,
  requireRoot,
  type SandboxRuntime,
  sandboxNames,
  sandboxRunning,
  teardownRuntime,
  waitForSsh,
} from './sandbox'

/** `providers.local` as the configuration validated it (defaults applied there). */
export function localSettings(config: LocalProviderConfig): LocalSettings {
  return { subnet: parseSubnet(config.subnet), bridge: config.bridge, nat: config.nat }
}

type LocalContext = ProviderContext<LocalProviderConfig>

/** Settings a server was made with (kept in its runtime data), else the configured ones. */
function settingsFor(ctx: LocalContext, record: ServerRecord): LocalSettings {
  const data = ctx.getData(record.name) as Partial<SandboxRuntime> | undefined
  if (data?.bridge && typeof data.subnet === 'string') return { subnet: parseSubnet(data.subnet), bridge: data.bridge, nat: data.nat !== false }
  return localSettings(ctx.config)
}

function runtimeOf(ctx: LocalContext, record: ServerRecord, settings: LocalSettings) {
  const data = ctx.getData(record.name) as Partial<SandboxRuntime> | undefined
  const names = sandboxNames(settings, ctx.workspace.paths.state, record.name, record.ip_address)
  return { data, names: { ...names, netns: data?.netns ?? names.netns, veth: data?.veth ?? names.veth } }
}

/** The recipe a server's disk was made from, kept next to the disk: a server keeps its image. */
const recipeFile = (dir: string) => join(dir, 'image-recipe.json')

function requireLauncher(): void {
  if (!launcherAvailable()) {
    throw failedError('the local provider needs bubblewrap and setpriv on this host', {
      hint: 'apt-get install bubblewrap util-linux (or bash scripts/setup.sh)',
    })
  }
}

/**
 * The image of a server: the one its disk was made from (start, or create over a disk kept with
 * --keep-storage), else the current recipe of its `image:`.
 */
async function imageFor(ctx: ProviderContext, record: ServerRecord, dir: string): Promise<ReadyImage> {
  let recipe: ImageRecipe
  const stored = existsSync(join(dir, 'upper')) ? readJsonFile<StoredRecipe | undefined>(recipeFile(dir), undefined) : undefined
  if (stored) recipe = loadStoredRecipe(stored)
  else recipe = findRecipe(record.image ?? DEFAULT_IMAGE, ctx.workspace.path)
  const ready = await ensureImage(recipe, {
    onBuild: (r, reason) => ctx.log.info(`building image ${r.name} (${reason}); the first build of a Debian image takes a few minutes`),
  })
  if (!stored) writeFileAtomic(recipeFile(dir), JSON.stringify(storeRecipe(recipe)))
  return ready
}

/**
 * Boots a sandbox. `firstBootDocument` (create only) is the server's Ignition document with its
 * secrets: put in the upper layer owner-only, applied and deleted by the boot before sshd starts.
 */
async function boot(ctx: LocalContext, record: ServerRecord, settings: LocalSettings, binds: HostBind[], firstBootDocument?: string): Promise<ServerRecord> {
  requireLauncher()
  const key = await ensureWorkspaceKey(ctx.workspace)
  // ssh.key_path (a key of the user's) is authorised too, so connections made with it work.
  const keyPath = ctx.rootConfig.ssh.key_path
  const extraKey = keyPath && existsSync(`${expandHome(keyPath)}.pub`) ? readFileSync(`${expandHome(keyPath)}.pub`, 'utf8').trim() : ''
  const { names, data } = runtimeOf(ctx, record, settings)
  // Never tear down a namespace another workspace sharing the bridge uses.
  assertNotForeign(settings, names, record.ip_address)
  // A half-made or crashed sandbox of the same name goes first (interrupted apply, reboot); the
  // image is checked meanwhile (servers created together share one check).
  const [, image] = await Promise.all([teardownRuntime(names, data, settings.bridge), imageFor(ctx, record, names.dir)])
  const hostKey = await prepareUpper(names, image.lowers, {
    name: record.name,
    ip: record.ip_address,
    port: record.ssh.port,
    user: record.ssh.user,
    authorizedKey: [key.publicKey, extraKey].filter(Boolean).join('\n'),
  })
  if (firstBootDocument !== undefined) writeLayerFile(join(names.dir, 'upper'), image.lowers, FIRST_BOOT_DOCUMENT, firstBootDocument, 0o600)
  // Pinned before anyone can connect (awaited before the wait for sshd), written while the sandbox starts.
  const pinned = recordHostKeys(ctx.workspace, record.ip_address, record.ssh.port, [hostKey])
  pinned.catch(() => undefined)
  const plan = record.plan ? localPlans.find((p) => p.name === record.plan) : undefined
  const limits: AppliedLimits = applyLimits(names.netns, {
    cores: record.cores ?? plan?.cores ?? null,
    memory_mb: record.memory_mb ?? plan?.memory_mb ?? null,
    disk_gb: record.disk_gb ?? plan?.disk_gb ?? null,
  })
  for (const warning of limits.warnings) ctx.log.warn(`${record.name}: ${warning}`)
  await claimAddress(settings, names, record.ip_address)
  claimBuilds(image.buildIds, names.netns, names.dir)
  const pids = await launch(settings, names, {
    name: record.name,
    ip: record.ip_address,
    user: record.ssh.user,
    lowers: image.lowers,
    cgroups: limits.cgroups,
    binds,
  })
  const runtime: SandboxRuntime = {
    netns: names.netns,
    veth: names.veth,
    bridge: settings.bridge,
    subnet: settings.subnet.cidr,
    nat: settings.nat,
    dir: names.dir,
    ...pids,
    image: { name: image.recipe.name, hash: image.recipe.hash, build_ids: image.buildIds, lowers: image.lowers },
    cgroups: limits.cgroups,
    limits: { ...limits, cgroups: undefined, warnings: undefined },
    binds,
  }
  // Save the pids before waiting: an interrupted command still leaves state that finds them.
  await ctx.save({ ...record, status: 'creating' }, runtime)
  await pinned
  const connectTimeout = ctx.rootConfig.ssh.connect_timeout
  await waitForSsh(record.ip_address, record.ssh.port, Math.max(30, connectTimeout) * 1000, () => sandboxRunning(runtime))
  const running: ServerRecord = { ...record, status: 'running' }
  await ctx.save(running, runtime)
  return running
}

/** Sizes a `plan:` stands for when a server declares no cores/memory_mb/disk_gb of its own. */
const localPlans: ProviderPlan[] = [
  { name: 'small', cores: 1, memory_mb: 512, disk_gb: 5, description: 'cgroup limits: 1 CPU, 512 MB (disk not enforced)' },
  { name: 'medium', cores: 2, memory_mb: 2048, disk_gb: 10, description: 'cgroup limits: 2 CPUs, 2 GB (disk not enforced)' },
  { name: 'large', cores: 4, memory_mb: 8192, disk_gb: 20, description: 'cgroup limits: 4 CPUs, 8 GB (disk not enforced)' },
]

/** `local`: Linux sandboxes booted from a Debian image (user, net, mount, pid, uts, ipc namespaces, cgroup limits, real sshd) on a bridge. */
export const localProvider: Provider<LocalProviderConfig> = {
  name: 'local',
  capabilities: { start_stop: true, keep_storage: true, plans: true, zones: true, price: true, root: true },

  // The schema checked the shapes (subnet is a CIDR, bridge 1-12 safe characters); the prefix range is the provider's own rule.
  validateConfig(config) {
    try {
      parseSubnet(config.subnet)
      return []
    } catch (error) {
      return [`providers.local.subnet: ${(error as Error).message}`]
    }
  },

  validateSpec(spec, config, where) {
    const problems: string[] = []
    if (spec.address) {
      const subnet = parseSubnet(config.subnet)
      if (!inSubnet(subnet, spec.address)) problems.push(`address ${spec.address} is not a sandbox address in ${subnet.cidr} (.1 is the host's)`)
    }
    try {
      parseBinds(spec.options)
    } catch (error) {
      problems.push((error as Error).message)
    }
    if (!sshUserPattern.test(spec.ssh.user)) problems.push(`ssh user '${spec.ssh.user}' is not a valid login name (lower-case letters, digits, _ and -)`)
    // An unknown image exits 5 with the images there are.
    findRecipe(spec.image ?? DEFAULT_IMAGE, where?.workspacePath)
    return problems
  },

  async list(ctx, records) {
    return records.map((record) => {
      const data = ctx.getData(record.name) as Partial<SandboxRuntime> | undefined
      if (record.status === 'running' && !sandboxRunning(data)) return { ...record, status: 'stopped' }
      if (record.status === 'stopped' && sandboxRunning(data)) return { ...record, status: 'running' }
      return record
    })
  },

  async create(ctx, spec, record, options = {}) {
    requireRoot()
    const settings = localSettings(ctx.config)
    const image = spec.image ?? DEFAULT_IMAGE
    findRecipe(image, ctx.workspace.path)
    const withAddress = await ctx.allocate((all) => {
      const used = new Set(all.filter((s) => s.name !== record.name && s.provider === 'local').map((s) => s.ip_address))
      for (const ip of foreignAddresses(settings, join(ctx.workspace.paths.state, 'local', record.name))) used.add(ip)
      const previous = all.find((s) => s.name === record.name)?.ip_address
      const ip = spec.address ?? (previous && inSubnet(settings.subnet, previous) && !used.has(previous) ? previous : allocateAddress(settings.subnet, used))
      if (!ip) throw failedError(`no free address left in ${settings.subnet.cidr}`, { hint: 'use a larger providers.local.subnet' })
      if (used.has(ip)) throw failedError(`address ${ip} is already used by another server`)
      return { ...record, ip_address: ip, hostname: spec.name, status: 'creating', image, zone: spec.zone ?? 'local' }
    })
    try {
      // Day zero: sandboxes run Ignition (a cloud-init document is refused before any create).
      const document = options.userData !== undefined && options.userDataFormat !== 'cloud-init' ? options.userData : undefined
      return await boot(ctx, withAddress, settings, parseBinds(spec.options), document)
    } catch (error) {
      const { names, data } = runtimeOf(ctx, withAddress, settings)
      await teardownRuntime(names, data, settings.bridge).catch(() => undefined)
      // A boot that never got to it leaves no secrets behind.
      rmSync(join(names.dir, 'upper', FIRST_BOOT_DOCUMENT.slice(1)), { force: true })
      await ctx.save({ ...withAddress, status: 'error' })
      throw error
    }
  },

  async delete(ctx, record, options) {
    requireRoot()
    const settings = settingsFor(ctx, record)
    const { names, data } = runtimeOf(ctx, record, settings)
    await teardownRuntime(names, data, settings.bridge)
    const sandboxes = join(ctx.workspace.paths.state, 'local')
    if (options.keepStorage) {
      for (const sub of ['work', 'merged', 'init.sh']) removeContained(sandboxes, [record.name, sub], { what: 'the sandboxes folder (.prov/local)' })
    } else {
      removeContained(sandboxes, record.name, { what: 'the sandboxes folder (.prov/local)' })
    }
    if (record.ip_address) await forgetHostKey(ctx.workspace, record.ip_address, record.ssh.port)
    // The bridge and NAT rules go with the last attached sandbox (checked under the bridge lock).
    await removeBridgeIfUnused(settings)
  },

  async start(ctx, record) {
    requireRoot()
    const settings = settingsFor(ctx, record)
    if (sandboxRunning(ctx.getData(record.name) as Partial<SandboxRuntime> | undefined)) return { ...record, status: 'running' }
    try {
      const data = ctx.getData(record.name) as Partial<SandboxRuntime> | undefined
      return await boot(ctx, record, settings, parseBinds({ binds: data?.binds ?? [] }))
    } catch (error) {
      const { names, data } = runtimeOf(ctx, record, settings)
      await teardownRuntime(names, data, settings.bridge).catch(() => undefined)
      await ctx.save({ ...record, status: 'error' })
      throw error
    }
  },

  async stop(ctx, record) {
    requireRoot()
    const settings = settingsFor(ctx, record)
    const { names, data } = runtimeOf(ctx, record, settings)
    await teardownRuntime(names, data, settings.bridge, { graceMs: 5000 })
    const stopped: ServerRecord = { ...record, status: 'stopped' }
    await ctx.save(stopped, { ...(data ?? {}), pid: null, pid_start: null, holder: null, cgroups: [] })
    return stopped
  },

  async info(ctx, record) {
    const settings = settingsFor(ctx, record)
    const { names, data } = runtimeOf(ctx, record, settings)
    return {
      sandbox: {
        running: sandboxRunning(data),
        pid: data?.pid ?? null,
        netns: names.netns,
        veth: names.veth,
        bridge: settings.bridge,
        subnet: settings.subnet.cidr,
        upper_dir: join(names.dir, 'upper'),
        log: join(names.dir, 'sandbox.log'),
        image: data?.image ? { name: data.image.name, hash: data.image.hash.slice(0, 12), build_id: data.image.build_ids[0], layers: data.image.lowers } : null,
        limits: data?.limits ?? { cores: record.cores, memory_mb: record.memory_mb, disk_gb: record.disk_gb, enforced: null },
        cgroups: data?.cgroups ?? [],
        binds: data?.binds ?? [],
      },
    }
  },

  async plans() {
    return localPlans
  },

  async zones() {
    return [{ name: 'local', description: 'this machine' }]
  },

  async price(_ctx, plan, zone) {
    return { plan, zone: zone ?? 'local', currency: 'EUR', hourly: 0, monthly: 0 }
  },
}

export type { ServerSpec }
export default localProvider
