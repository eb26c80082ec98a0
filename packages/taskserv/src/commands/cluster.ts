import { join } from 'node:path'
import { type CommandDef, defineProvCommand, notFoundError, type ProvContext, type SshTarget, updateJsonFile } from '@prov/core'
import type { TaskItem, TaskResult } from '../engine'
import { clusterPlacements, loadCluster } from '../lib/cluster'
import { confirmAction, parseTimeout, prepare, resultWriter, targetsOf } from '../lib/common'
import { buildPlan } from '../lib/plan'
import { sshTarget } from '../lib/remote'
import { executeLevels, exitCodeOf } from '../lib/run'
import { workspaceServers } from '../lib/targets'

const clusterArgs = {
  name: { type: 'positional', description: 'Cluster name (extensions/clusters/<name>)', required: true },
  servers: { type: 'string', description: "Narrow the server pool by name: a,b ('all': no narrowing)" },
  where: { type: 'string', description: 'Narrow the server pool by label: env=prod' },
  timeout: { type: 'string', description: 'Seconds a script may run' },
} as const

async function setup(ctx: ProvContext<any>, action: 'install' | 'remove' | 'status' | 'health') {
  const prepared = await prepare(ctx)
  const cluster = loadCluster(String(ctx.args.name), prepared.workspace, ctx.common.infra)
  const narrowed = (await ctx.stdin()) !== undefined || ctx.args.servers !== undefined || ctx.args.where !== undefined
  const pool = narrowed ? await targetsOf(ctx, prepared) : workspaceServers(prepared.workspace)
  const placements = clusterPlacements(cluster, pool)
  for (const p of placements) {
    if (!p.servers.length)
      throw notFoundError(`no server for component '${p.name}' of cluster '${cluster.manifest.name}'`, {
        hint: 'check the placement labels against prov-server list',
      })
  }
  const built = buildPlan<SshTarget>(
    { catalog: prepared.catalog, action, requests: [], placements, state: prepared.state, expand: action === 'install', check: ctx.common.check },
    sshTarget,
  )
  return { prepared, cluster, built }
}

const clustersFile = (statePath: string) => join(statePath, 'clusters.json')

const deploy = defineProvCommand({
  meta: {
    name: 'deploy',
    description: 'Install the components of a cluster in dependency order; roll back what this deploy installed when a step fails',
    examples: ['prov-taskserv cluster deploy web --infra demo', 'prov-taskserv cluster deploy web --infra demo --check'],
    mutating: true,
    uses: ['infra', 'parallel'],
  },
  orchestrated: 'cluster.deploy',
  args: { ...clusterArgs, 'no-rollback': { type: 'boolean', description: 'Keep what was installed when a step fails' } },
  async run(ctx) {
    const { prepared, cluster, built } = await setup(ctx, 'install')
    if (ctx.common.check) {
      ctx.emit({ ...built.plan, cluster: cluster.manifest.name })
      return 0
    }
    const out = resultWriter(ctx)
    const name = cluster.manifest.name
    const base = {
      ctx,
      config: prepared.config,
      workspace: prepared.workspace,
      dependencyScope: 'global' as const,
      write: out.write,
      cluster: name,
      timeoutSec: parseTimeout(ctx.args.timeout),
    }
    const results = await executeLevels({ ...base, levels: built.levels, label: `cluster-${name}-deploy` })
    const failed = results.filter((r) => r.status === 'failed')
    if (failed.length && !ctx.args['no-rollback']) {
      // Undo what this deploy changed, dependents first.
      const changed = new Set(results.filter((r) => r.status === 'changed').map((r) => `${r.server}\0${r.taskserv}`))
      const undo: TaskItem<SshTarget>[][] = built.levels
        .map((level) => level.filter((i) => changed.has(`${i.host.name}\0${i.unit.name}`)).map((i) => ({ ...i, action: 'remove' as const, dependsOn: [] })))
        .filter((l) => l.length)
        .reverse()
      ctx.log.warn(`cluster ${name}: ${failed[0].taskserv} failed on ${failed[0].server}; rolling back ${changed.size} installed component(s)`)
      if (undo.length) await executeLevels({ ...base, levels: undo, label: `cluster-${name}-rollback`, stopOnFailure: false })
      out.end()
      return exitCodeOf(results)
    }
    if (prepared.workspace && !failed.length) {
      await updateJsonFile<Record<string, unknown>>(clustersFile(prepared.workspace.paths.state), {}, (state) => ({
        ...state,
        [name]: {
          version: cluster.manifest.version,
          deployed_at: new Date().toISOString(),
          components: built.plan.servers.flatMap((s) => s.taskservs.map((t) => ({ taskserv: t.name, server: s.server, version: t.version }))),
        },
      }))
    }
    out.end()
    return exitCodeOf(results)
  },
})

const remove = defineProvCommand({
  meta: {
    name: 'remove',
    description: 'Remove the components of a cluster (dependents first)',
    examples: ['prov-taskserv cluster remove web --infra demo --yes'],
    mutating: true,
    destructive: true,
    confirms: true,
    uses: ['infra', 'parallel'],
  },
  args: { ...clusterArgs, 'keep-data': { type: 'boolean', description: 'Keep data directories' } },
  async run(ctx) {
    const { prepared, cluster, built } = await setup(ctx, 'remove')
    if (ctx.common.check) {
      ctx.emit({ ...built.plan, cluster: cluster.manifest.name })
      return 0
    }
    await confirmAction(ctx, 'remove', built.levels.flat(), `cluster ${cluster.manifest.name}`)
    const keep = ctx.args['keep-data'] ? '1' : '0'
    const levels = built.levels.map((l) => l.map((i) => ({ ...i, env: { ...i.env, PROV_KEEP_DATA: keep } })))
    const out = resultWriter(ctx)
    const results = await executeLevels({
      ctx,
      config: prepared.config,
      workspace: prepared.workspace,
      levels,
      dependencyScope: 'global',
      write: out.write,
      label: `cluster-${cluster.manifest.name}-remove`,
      timeoutSec: parseTimeout(ctx.args.timeout),
      stopOnFailure: false,
    })
    if (prepared.workspace && !results.some((r) => r.status === 'failed')) {
      await updateJsonFile<Record<string, unknown>>(clustersFile(prepared.workspace.paths.state), {}, (state) => {
        delete state[cluster.manifest.name]
        return state
      })
    }
    out.end()
    return exitCodeOf(results)
  },
})

const status = defineProvCommand({
  meta: {
    name: 'status',
    description: 'State and health of every component of a cluster on its servers',
    examples: ['prov-taskserv cluster status web --infra demo'],
    mutating: false,
    uses: ['infra', 'parallel'],
  },
  args: clusterArgs,
  async run(ctx) {
    const { prepared, cluster, built } = await setup(ctx, 'status')
    if (ctx.common.check) {
      ctx.emit({ ...built.plan, cluster: cluster.manifest.name })
      return 0
    }
    const out = resultWriter(ctx)
    const results: TaskResult[] = await executeLevels({
      ctx,
      config: prepared.config,
      workspace: prepared.workspace,
      levels: [built.levels.flat()],
      write: out.write,
      label: `cluster-${cluster.manifest.name}-status`,
      timeoutSec: parseTimeout(ctx.args.timeout),
      stopOnFailure: false,
    })
    const healthy = results.filter((r) => r.status === 'ok' && r.healthy !== false).length
    ctx.log.info(`cluster ${cluster.manifest.name}: ${healthy}/${results.length} component placements healthy`)
    out.end()
    return results.every((r) => r.status === 'ok') ? 0 : exitCodeOf(results.map((r) => (r.status === 'skipped' ? { ...r, status: 'failed' as const } : r)))
  },
})

export default {
  meta: { name: 'cluster', description: 'Deploy, remove and inspect clusters of taskservs (extensions/clusters)' },
  subCommands: { deploy, remove, status },
} satisfies CommandDef
