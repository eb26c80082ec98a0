import { execFileSync } from 'node:child_process'
import { createReadStream, existsSync, mkdtempSync, realpathSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, dirname, join } from 'node:path'
import { Readable } from 'node:stream'
import { failedError, getServer, isWorkspaceName, repoRoot, SshPool, type SshTarget, shellQuote, targetOf, usageError, type Workspace } from '@prov/core'
import type { BundleManifest } from './bundle'
import type { OciContext } from './context'
import { parseJson } from './json'
import { LayoutTarget } from './layout'
import { kindOf, parseManifest } from './manifest'
import { planPull, pullArtifact } from './pull'
import { formatReference } from './ref'
import { readJsonBlob, type Target } from './target'
import { scanLayers, UnpackBudget, unpackLayers } from './unpack'

export interface SeedResult {
  schema: 'prov.oci.seed/v1'
  server: string
  host: string
  bundle: string
  digest: string
  workspace: string
  destination: string
  files: number
  /** Where the prov the bootstrap uses came from: the host's own, or shipped (with Node.js when the host had none). */
  runtime: SeedRuntime
  bootstrap: { ok: boolean; exit_code: number }
  prov_config_show: boolean
  duration_ms: number
}

export type SeedRuntime = 'host' | 'shipped' | 'shipped-with-node'

/** What `seed --check` says it would do; what only the registry could tell is null. */
export interface SeedPlan {
  schema: 'prov.oci.seed/v1'
  server: string
  host: string
  bundle: string
  digest: string | null
  workspace: string | null
  destination: string | null
  files: number | null
  planned: true
}

interface LoadedBundle {
  target: Target
  digest: string
  layer: Buffer
  bundle: BundleManifest
  files: number
  cleanup: () => void
}

/**
 * The folder on the server: an absolute path of plain names (it is written into the bootstrap's
 * wrapper and env.sh), at least two levels deep (a seed replaces it whole, never a top-level
 * folder such as /etc or /opt).
 */
function checkDestination(dest: string): string {
  const parts = dest.split('/').slice(1)
  if (!dest.startsWith('/') || parts.length < 2 || !parts.every((part) => /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(part)))
    throw usageError(`--dest must be an absolute folder below a top-level one, made of letters, digits, _ . -: got '${dest}'`, {
      location: '--dest',
      hint: 'such as /opt/prov/web',
    })
  return dest
}

/**
 * The bundle's manifest and layer from REF, layout:PATH[:tag] or FILE.tar (oci-archive). The
 * layer is checked member by member (paths, links, types, the unpacked size limit) before it is
 * returned: nothing unchecked leaves for a server. `offline` reads a registry bundle from the
 * cache only (undefined when it is not there): no connection.
 */
export async function loadBundle(oci: OciContext, input: string, options: { offline?: boolean } = {}): Promise<LoadedBundle | undefined> {
  let target: Target
  let reference: string
  let cleanup = () => {}
  const budget = new UnpackBudget(oci.settings.maxUnpackedSize, `bundle ${input}`)
  // A bundle is pulled like any artifact: the same policy, wherever it comes from.
  if (oci.settings.pullRefusal) throw oci.settings.pullRefusal
  try {
    if (input.endsWith('.tar') && !input.startsWith('layout:')) {
      try {
        if (!statSync(input).isFile()) throw new Error('not a file')
      } catch {
        throw usageError(`cannot read bundle file ${input}`)
      }
      const dir = mkdtempSync(join(tmpdir(), 'prov-seed-'))
      cleanup = () => rmSync(dir, { recursive: true, force: true })
      await unpackLayers([{ where: input, open: async () => createReadStream(input) }], { root: dir, segments: ['layout'] }, budget)
      // Any tar unpacks; only one holding an OCI layout can be a bundle (said about the archive, not the temp folder).
      if (!existsSync(join(dir, 'layout', 'index.json')) || !existsSync(join(dir, 'layout', 'oci-layout')))
        throw usageError(`${input} is not a prov workspace bundle (no OCI layout in the archive)`, { hint: 'make one with prov-oci bundle --to FILE.tar' })
      target = new LayoutTarget(join(dir, 'layout'))
      reference = 'bundle'
      if (!(await target.tags()).includes('bundle')) reference = (await target.tags())[0] ?? 'bundle'
      // Signatures required: the archive's layout is verified as a pull from it would be.
      if (oci.settings.requireSignatures && !options.offline) {
        const pulled = await pullArtifact(oci, oci.parse(`layout:${join(dir, 'layout')}:${reference}`), { install: false })
        target = pulled.source
        reference = pulled.digest
      }
    } else {
      const ref = oci.parse(input)
      if (ref.type === 'registry' && options.offline) {
        const { digest, cached } = await planPull(oci, ref)
        if (!digest || !cached) return undefined
        target = oci.cache(ref)
        reference = digest
      } else if (ref.type === 'registry' || (oci.settings.requireSignatures && !options.offline)) {
        // From a registry, or from a layout when signatures are required: verified like a pull.
        const pulled = await pullArtifact(oci, ref, { install: false })
        target = pulled.source
        reference = pulled.digest
      } else {
        target = oci.target(ref)
        reference = ref.digest ?? ref.tag ?? 'bundle'
      }
    }
    const { descriptor, bytes } = await target.fetchManifest(reference)
    const parsed = parseManifest(bytes, descriptor, input)
    if (parsed.type !== 'manifest' || kindOf(parsed.value) !== 'bundle' || parsed.value.layers.length !== 1)
      throw usageError(`${input} is not a prov workspace bundle`, { hint: 'make one with prov-oci bundle' })
    const layerDescriptor = parsed.value.layers[0]
    const bundleBudget = new UnpackBudget(oci.settings.maxUnpackedSize, `bundle ${input}`)
    // The layer is sent whole to the server: a compressed layer past the limit cannot unpack within it.
    bundleBudget.announce(layerDescriptor.size, input)
    const layer = await target.fetchBlob(layerDescriptor)
    const { files } = await scanLayers([{ where: `layer of ${input}`, open: async () => Readable.from([layer]) }], bundleBudget)
    const bundle = await readJsonBlob<BundleManifest>(target, parsed.value.config, `bundle config of ${input}`)
    // The name becomes the default destination and is written into shell files on the server.
    if (!isWorkspaceName(bundle?.workspace))
      throw usageError(`${input} names its workspace ${JSON.stringify(bundle?.workspace)?.slice(0, 80)}, which is not a workspace name`, {
        hint: 'bundles name a workspace with letters, digits, _ . - (prov-oci bundle makes them so)',
      })
    return { target, digest: descriptor.digest, layer, bundle, files, cleanup }
  } catch (error) {
    cleanup()
    throw error
  }
}

/** Unpacks a bundle on a server over SSH and runs its bootstrap; the result holds no secret. */
export async function seedServer(
  oci: OciContext,
  workspace: Workspace,
  options: { bundle: string; server: string; dest?: string; provBin?: string; check?: boolean },
): Promise<SeedResult | SeedPlan> {
  const started = Date.now()
  const server = getServer(workspace, options.server)
  const sshTarget = targetOf(server)
  const bundleName = options.bundle.endsWith('.tar') ? options.bundle : formatReference(oci.parse(options.bundle))
  if (options.check) {
    // Read and check the bundle where it is on this machine; no SSH, no registry.
    const planned = await loadBundle(oci, options.bundle, { offline: true })
    planned?.cleanup()
    const dest = options.dest ?? (planned ? `/opt/prov/${planned.bundle.workspace}` : undefined)
    return {
      schema: 'prov.oci.seed/v1',
      server: server.name,
      host: sshTarget.host,
      bundle: bundleName,
      digest: planned?.digest ?? null,
      workspace: planned?.bundle.workspace ?? null,
      destination: dest === undefined ? null : checkDestination(dest),
      files: planned?.files ?? null,
      planned: true,
    }
  }
  const loaded = (await loadBundle(oci, options.bundle)) as LoadedBundle
  try {
    const dest = checkDestination(options.dest ?? `/opt/prov/${loaded.bundle.workspace}`)
    const provBin = options.provBin ?? join(repoRoot(), 'bin', 'prov')
    const base: Omit<SeedResult, 'runtime' | 'bootstrap' | 'prov_config_show' | 'duration_ms'> = {
      schema: 'prov.oci.seed/v1',
      server: server.name,
      host: sshTarget.host,
      bundle: bundleName,
      digest: loaded.digest,
      workspace: loaded.bundle.workspace,
      destination: dest,
      files: loaded.files,
    }
    const pool = new SshPool(workspace)
    try {
      const q = shellQuote(dest)
      const unpack = [
        'set -e',
        // Only a folder a previous seed made (it holds bundle.json) is ever replaced.
        `if [ -e ${q} ] && [ ! -f ${q}/bundle.json ]; then echo "refusing to replace "${q}": it exists and holds no prov bundle (bundle.json)" >&2; exit 3; fi`,
        `rm -rf ${q}.new`,
        `mkdir -p ${q}.new`,
        `base64 -d | tar xzf - -C ${q}.new --no-same-owner --no-same-permissions`,
        `if [ -d ${q} ]; then rm -rf ${q}.old; mv ${q} ${q}.old; fi`,
        `mv ${q}.new ${q}`,
        `rm -rf ${q}.old`,
      ].join('\n')
      const unpacked = await pool.exec(sshTarget, `sh -c ${shellQuote(unpack)}`, { stdin: `${loaded.layer.toString('base64')}\n`, timeoutMs: 120_000 })
      if (unpacked.code !== 0)
        throw failedError(`unpacking the bundle on ${server.name} failed: ${unpacked.stderr.trim().split('\n').pop() ?? `exit ${unpacked.code}`}`, {
          location: `${server.name}:${dest}`,
        })
      const { bin, runtime } = await provOnHost(pool, sshTarget, server.name, provBin, dest)
      const boot = await pool.exec(sshTarget, `sh ${shellQuote(`${dest}/bootstrap.sh`)}`, { env: { PROV_BIN: bin }, timeoutMs: 300_000 })
      const bootRecord = lastJsonLine(boot.stdout)
      if (boot.code !== 0) {
        throw failedError(`bootstrap on ${server.name} failed (exit ${boot.code})${bootRecord?.error ? `: ${String(bootRecord.error)}` : ''}`, {
          location: `${server.name}:${dest}/bootstrap.sh`,
          hint: `see ${dest}/bootstrap.err on the server`,
        })
      }
      const show = await pool.exec(sshTarget, `${shellQuote(`${dest}/bin/prov`)} config show -o json`, { timeoutMs: 120_000 })
      let configOk = false
      try {
        configOk =
          show.code === 0 && parseJson<{ workspace?: { name?: string } } | null>(show.stdout, 'prov config show')?.workspace?.name === loaded.bundle.workspace
      } catch {
        configOk = false
      }
      if (!configOk)
        throw failedError(`prov config show does not run from the unpacked workspace on ${server.name}: ${show.stderr.trim().split('\n').pop() ?? ''}`)
      return { ...base, runtime, bootstrap: { ok: true, exit_code: boot.code }, prov_config_show: true, duration_ms: Date.now() - started }
    } finally {
      await pool.closeAll()
    }
  } finally {
    loaded.cleanup()
  }
}

/** The oldest Node.js the prov runtime runs on (the `engines` of the package). */
const NODE_MINIMUM = [20, 19] as const

/** `uname -m` of the machines this Node.js binary can run on. */
const UNAME_MACHINE: Partial<Record<NodeJS.Architecture, string>> = { x64: 'x86_64', arm64: 'aarch64' }

/**
 * The prov the bootstrap runs on the host. The host may not see this prov (another machine, or a
 * sandbox that shares nothing with this one): then a minimal prov runtime (the built bundles and
 * their few runtime libraries) goes next to the workspace, with this Node.js when the host has
 * none recent enough and runs the same kind of machine, behind one launcher that finds both.
 */
async function provOnHost(
  pool: SshPool,
  sshTarget: SshTarget,
  serverName: string,
  provBin: string,
  dest: string,
): Promise<{ bin: string; runtime: SeedRuntime }> {
  const hasProv = await pool.exec(sshTarget, `test -x ${shellQuote(provBin)} || command -v prov`, { timeoutMs: 30_000 })
  if (hasProv.code === 0) return { bin: provBin, runtime: 'host' }
  const [major, minor] = NODE_MINIMUM
  const nodeCheck = `process.exit(+process.versions.node.split('.')[0] > ${major} || (+process.versions.node.split('.')[0] === ${major} && +process.versions.node.split('.')[1] >= ${minor}) ? 0 : 1)`
  const hostNode = await pool.exec(sshTarget, `node -e ${shellQuote(nodeCheck)}`, { timeoutMs: 30_000 })
  const shipNode = hostNode.code !== 0
  if (shipNode) {
    const uname = await pool.exec(sshTarget, 'uname -sm', { timeoutMs: 30_000 })
    const expected = `Linux ${UNAME_MACHINE[process.arch] ?? process.arch}`
    if (process.platform !== 'linux' || uname.stdout.trim() !== expected)
      throw failedError(`${serverName} has no Node.js ${major}.${minor} or later and runs '${uname.stdout.trim()}', not '${expected}' like this machine`, {
        hint: `install Node.js ${major}.${minor}+ on ${serverName}, or seed from a machine of the same kind`,
      })
  }
  const runtime = `${dest}/runtime`
  const q = shellQuote(runtime)
  const launcher = [
    '#!/bin/sh',
    '# Runs the prov shipped next to it, with the Node.js shipped beside it when there is one.',
    'HERE=$(cd "$(dirname "$0")" && pwd)',
    '[ -x "$HERE/node/bin/node" ] && PATH="$HERE/node/bin:$PATH" && export PATH',
    'exec "$HERE/bin/prov" "$@"',
    '',
  ].join('\n')
  const install = [
    'set -e',
    `rm -rf ${q}`,
    `mkdir -p ${q}`,
    `base64 -d | tar xzf - -C ${q} --no-same-owner`,
    `printf '%s' ${shellQuote(launcher)} > ${q}/prov`,
    `chmod 755 ${q}/prov`,
  ].join('\n')
  const shipped = await pool.exec(sshTarget, `sh -c ${shellQuote(install)}`, {
    stdin: `${provRuntimeTarball(shipNode).toString('base64')}\n`,
    timeoutMs: 300_000,
  })
  if (shipped.code !== 0)
    throw failedError(`shipping the prov runtime to ${serverName} failed: ${shipped.stderr.trim().split('\n').pop() ?? `exit ${shipped.code}`}`)
  return { bin: `${runtime}/prov`, runtime: shipNode ? 'shipped-with-node' : 'shipped' }
}

function lastJsonLine(text: string): Record<string, unknown> | undefined {
  const line = text.trim().split('\n').pop()
  try {
    return line ? (parseJson<Record<string, unknown> | null>(line, 'bootstrap record') ?? undefined) : undefined
  } catch {
    return undefined
  }
}

/** Paths (relative to the repository) of a prov runtime enough for `prov` itself on a host with Node. */
const RUNTIME_PATHS = [
  'bin/prov',
  'bin/_launch.mjs',
  'package.json',
  'packages/core/package.json',
  'packages/core/dist',
  'packages/prov/package.json',
  'packages/prov/dist',
  'extensions',
  'templates',
  'node_modules/@prov/core',
  'node_modules/citty',
  'node_modules/consola',
  'node_modules/semver',
  'node_modules/smol-toml',
  'node_modules/yaml',
]

/**
 * A gzip tar of the prov runtime, made with the system tar (symlinks kept, as npm workspaces need);
 * with `withNode`, this Node.js binary too, as `node/bin/node`.
 */
export function provRuntimeTarball(withNode = false): Buffer {
  const root = repoRoot()
  const paths = RUNTIME_PATHS.filter((p) => existsSync(join(root, p)))
  const nodeBinary = realpathSync(process.execPath)
  const node = withNode ? ['-C', dirname(nodeBinary), '--transform', `s|^${basename(nodeBinary)}$|node/bin/node|`, basename(nodeBinary)] : []
  return execFileSync('tar', ['czf', '-', '-C', root, '--exclude=*.map', ...paths, ...node], { maxBuffer: 512 * 1024 * 1024 })
}
