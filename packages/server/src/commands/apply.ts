import { readFileSync } from 'node:fs'
import { defineProvCommand, parseInput, readServerState, stateFingerprint, usageError } from '@prov/core'
import { confirmOrRefuse } from '../confirm'
import { type ActionOutcome, createJob, deleteJob, failure, type Job, outcomeCode, parallelOf, preflight, runJobs, serverEnv } from '../engine'
import { parsePlan, type ServerPlan } from '../plan'
import type { ServerSpec } from '../providers/types'

export default defineProvCommand({
  meta: { name: 'apply', description: 'Carry out a prov.server.plan/v1 (file or stdin); streams prov.server/v1 results' },
  orchestrated: 'server.apply',
  args: {
    plan: { type: 'positional', required: false, description: 'Plan file (default: stdin)', valueHint: 'PLAN_FILE' },
  },
  async run(ctx) {
    let plan: ServerPlan
    const file = ctx.positionals[0]
    if (ctx.positionals.length > 1) throw usageError('apply takes one plan file', { hint: 'prov-server apply plan.json --yes' })
    if (file) {
      let text: string
      try {
        text = readFileSync(file, 'utf8')
      } catch {
        throw usageError(`cannot read plan file ${file}`, { location: file })
      }
      const input = parseInput(text, file)
      if (input.records.length !== 1) throw usageError(`${file} must hold exactly one plan record`, { location: file })
      plan = parsePlan(input.records[0], file)
    } else {
      const input = await ctx.stdin()
      if (!input?.records.length) throw usageError('no plan given', { hint: 'prov-server plan --infra NAME | prov-server apply --yes' })
      if (input.records.length !== 1) throw usageError(`stdin must hold exactly one plan record, got ${input.records.length}`, { location: 'stdin' })
      plan = parsePlan(input.records[0], 'stdin')
    }
    const env = await serverEnv(ctx.common)
    if (plan.workspace && plan.workspace !== env.workspace.path) {
      throw usageError(`the plan is for workspace ${plan.workspace}, not ${env.workspace.path}`, {
        hint: 'apply it with -w pointing to that workspace, or plan again here',
      })
    }
    const current = stateFingerprint(Object.values(readServerState(env.workspace).servers))
    if (current !== plan.state_fingerprint) {
      throw usageError('the plan is stale: servers changed since it was computed', {
        location: env.workspace.paths.servers,
        hint: `run prov-server plan${plan.infra ? ` --infra ${plan.infra}` : ''} again and apply the new plan`,
      })
    }
    const work = plan.actions.filter((a) => a.action !== 'keep')
    const s = plan.summary
    if (ctx.common.check || !work.length) {
      if (!work.length) ctx.log.info('nothing to do: servers match the plan')
      ctx.emit(plan)
      return
    }
    await preflight(
      env,
      work.map((a) => a.spec?.provider ?? a.provider),
    )
    const ok = await confirmOrRefuse(`apply: ${s.create} create, ${s.update} update, ${s.delete} delete?`, ctx.common.yes, 'apply a plan')
    if (!ok) throw usageError('apply cancelled')
    const writer = ctx.writer()
    const parallel = parallelOf(ctx.common)
    const state = () => readServerState(env.workspace).servers
    // Deletes first: they free names and addresses the creates may reuse.
    const deletes: Job[] = work
      .filter((a) => a.action === 'delete')
      .map((a) => ({
        title: `delete ${a.server}`,
        run: async () => {
          const record = state()[a.server]
          if (!record)
            return {
              ok: true,
              record: { schema: 'prov.server/v1', name: a.server, provider: a.provider, status: 'stopped', action: 'delete', deleted: true },
            } as unknown as ActionOutcome
          return deleteJob(env, record, false)
        },
      }))
    const outcomes = await runJobs(deletes, { parallel, writer, quiet: ctx.common.quiet })
    const rest: Job[] = work
      .filter((a) => a.action !== 'delete')
      .map((a) => ({
        title: `${a.action} ${a.server}`,
        run: async () => {
          const spec = a.spec as ServerSpec
          if (a.action === 'create') return createJob(env, spec)
          const record = state()[a.server]
          if (!record) return createJob(env, spec)
          const provider = await env.provider(record.provider)
          const pctx = env.providerContext(record.provider)
          try {
            let next = {
              ...record,
              labels: spec.labels,
              cores: spec.cores,
              memory_mb: spec.memory_mb,
              disk_gb: spec.disk_gb,
              plan: spec.plan,
              zone: spec.zone ?? record.zone,
              image: spec.image ?? record.image,
              infra: spec.infra,
              ssh: spec.ssh,
            }
            await pctx.save(next)
            if (a.start) next = await provider.start(pctx, next)
            return { ok: true, record: { ...next, action: 'update' } }
          } catch (error) {
            return failure(record, 'update', error)
          }
        },
      }))
    outcomes.push(...(await runJobs(rest, { parallel, writer, quiet: ctx.common.quiet })))
    writer.end()
    return outcomeCode(outcomes)
  },
})
