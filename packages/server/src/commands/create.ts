import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { configError, defineProvCommand, readServerState, serverNamePattern, serverSpecSchemas, usageError } from '@prov/core'
import type { DesiredState } from '../desired'
import { createJob, preflight, providerConfig, runToCode, serverEnv } from '../engine'
import { adHocPlan, loadDesired, type PlanAction } from '../plan'
import { knownProviders } from '../providers/registry'
import type { ServerSpec } from '../providers/types'
import { emitPlan } from '../render'

export default defineProvCommand({
  meta: {
    name: 'create',
    description: 'Create servers by name (from --infra / -f servers.yaml, any infra declaring them, or --provider flags)',
    examples: ['prov-server create web-01 --infra demo', 'prov-server create web-01 --infra demo --check'],
    mutating: true,
    uses: ['infra', 'parallel'],
  },
  args: {
    names: {
      type: 'positional',
      required: false,
      description: 'Server names, or all (every server declared in --infra / -f, else in any infra)',
      valueHint: 'NAME...',
    },
    file: { type: 'string', alias: 'f', description: 'servers.yaml to take the servers from', valueHint: 'FILE' },
    provider: { type: 'string', description: 'Provider for servers not declared in any servers.yaml' },
    address: { type: 'string', description: 'Address (ssh provider; optional fixed IP for local)' },
    user: { type: 'string', description: 'SSH user (default ssh.user)' },
    port: { type: 'string', description: 'SSH port (default ssh.port)' },
    label: { type: 'string', description: 'Labels k=v,k2=v2' },
    image: { type: 'string', description: 'Image of an ad hoc local server (default debian-12; prov-server image list)' },
  },
  async run(ctx) {
    const names = ctx.positionals
    if (!names.length) throw usageError('create needs server names', { hint: 'prov-server create web-01 --infra demo' })
    const all = names.includes('all')
    if (all && names.length > 1) throw usageError('give server names or all, not both', { hint: 'all already means every declared server' })
    if (all && ctx.args.provider) throw usageError('create all takes the servers from servers.yaml, not --provider', { location: '--provider' })
    for (const name of names) {
      if (!all && !serverNamePattern.test(name)) throw usageError(`invalid server name '${name}'`, { hint: 'lower-case letters, digits and -, at most 63' })
    }
    const env = await serverEnv(ctx.common)
    const specs = await resolveSpecs(env, all ? undefined : names, ctx.args as Record<string, unknown>)
    const existing = readServerState(env.workspace).servers
    const actions: PlanAction[] = specs.map((spec) => ({
      action: existing[spec.name]?.status === 'running' ? 'keep' : 'create',
      server: spec.name,
      provider: spec.provider,
      reason:
        existing[spec.name]?.status === 'running'
          ? 'already exists and runs'
          : existing[spec.name]
            ? `exists as '${existing[spec.name].status}'; created again`
            : 'requested',
      spec,
    }))
    if (ctx.common.check) {
      emitPlan(ctx, adHocPlan(env, actions, 'create'))
      return
    }
    await preflight(
      env,
      actions.filter((a) => a.action === 'create').map((a) => a.provider),
    )
    return runToCode(
      ctx,
      actions.map((a) => ({
        title: `create ${a.server}`,
        run: async () => (a.action === 'keep' ? { ok: true, record: { ...existing[a.server], action: 'keep' } } : createJob(env, a.spec as ServerSpec)),
      })),
    )
  },
})

/** Specs of the named servers (every declared one when `names` is undefined). */
async function resolveSpecs(env: Awaited<ReturnType<typeof serverEnv>>, wanted: string[] | undefined, args: Record<string, unknown>): Promise<ServerSpec[]> {
  const declared = new Map<string, ServerSpec>()
  const sources: DesiredState[] = []
  if (args.file || env.common.infra) sources.push(await loadDesired(env, args.file as string | undefined))
  else if (!args.provider) {
    const infraDir = join(env.workspace.path, 'infra')
    const infras = existsSync(infraDir) ? readdirSync(infraDir).filter((n) => existsSync(join(infraDir, n, 'servers.yaml'))) : []
    for (const infra of infras) sources.push(await loadDesired({ ...env, common: { ...env.common, infra } }))
  }
  for (const source of sources) for (const spec of source.servers) if (!declared.has(spec.name)) declared.set(spec.name, spec)
  const names = wanted ?? [...declared.keys()]
  if (!names.length) throw configError('no servers are declared', { hint: 'declare them in infra/<name>/servers.yaml' })
  const { ssh, providers } = env.config
  const specs: ServerSpec[] = []
  for (const name of names) {
    const found = declared.get(name)
    if (found && !args.provider) {
      specs.push(found)
      continue
    }
    if (!args.provider && !found) {
      throw configError(`server '${name}' is not declared in ${env.common.infra ? `infra '${env.common.infra}'` : 'any infra/*/servers.yaml'}`, {
        hint: 'declare it in servers.yaml, or pass --provider (and --address for ssh)',
      })
    }
    const provider = String(args.provider ?? providers.default)
    const known = knownProviders({ workspacePath: env.workspace.path, infra: env.common.infra })
    if (!known.has(provider)) {
      const { didYouMean } = await import('@prov/core')
      throw usageError(`unknown provider '${provider}'`, {
        location: '--provider',
        hint: didYouMean(provider, known.all()) ?? `providers: ${known.all().join(', ')}`,
      })
    }
    const port = args.port === undefined ? ssh.port : Number(args.port)
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw usageError(`invalid --port '${String(args.port)}'`, { location: '--port' })
    const labels: Record<string, string> = {}
    for (const pair of String(args.label ?? '')
      .split(',')
      .filter(Boolean)) {
      const [k, ...v] = pair.split('=')
      if (!k || !v.length) throw usageError(`invalid label '${pair}'`, { location: '--label', hint: 'use k=v,k2=v2' })
      labels[k] = v.join('=')
    }
    const spec: ServerSpec = {
      name,
      provider,
      infra: env.common.infra ?? null,
      plan: null,
      cores: null,
      memory_mb: null,
      disk_gb: null,
      zone: null,
      image: (args.image as string | undefined) ?? null,
      labels,
      ssh: { user: String(args.user ?? ssh.user), port },
      address: (args.address as string | undefined) ?? null,
      options: {},
    }
    const checked = serverSpecSchemas().spec.safeParse(spec)
    if (!checked.success) {
      const issue = checked.error.issues[0]
      const flag = { address: '--address', ssh: issue.path[1] === 'port' ? '--port' : '--user', labels: '--label' }[String(issue.path[0])]
      throw usageError(`server '${name}': ${issue.path.join('.')}: ${issue.message}`, { location: flag ?? String(issue.path[0]) })
    }
    const impl = await env.provider(provider)
    const problems = impl.validateSpec?.(spec, providerConfig(env.config, provider), { workspacePath: env.workspace.path }) ?? []
    if (problems.length) throw usageError(`server '${name}': ${problems[0]}`)
    specs.push(spec)
  }
  return specs
}
