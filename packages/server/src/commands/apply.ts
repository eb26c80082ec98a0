import { closeSync, fstatSync, openSync, readSync } from 'node:fs'
import { defineProvCommand, notFoundError, parseInput, readServerState, usageError } from '@prov/core'
import { confirmChange } from '../confirm'
import { createJob, deleteJob, failure, type Job, outcomeCode, parallelOf, preflight, runJobs, serverEnv } from '../engine'
import type { ServerPlan } from '../plan'
import { checkPlan, parsePlan } from '../plan-input'
import type { ServerSpec } from '../providers/types'
import { emitPlan, painter, renderPlan } from '../render'

/** Largest plan accepted (bytes): plans are small; anything bigger is not one. */
const maxPlanBytes = 16 << 20

function readPlanFile(file: string): string {
  let fd: number
  try {
    fd = openSync(file, 'r')
  } catch {
    throw usageError(`cannot read plan file ${file}`, { location: file })
  }
  try {
    if (!fstatSync(fd).isFile()) throw usageError(`plan file ${file} is not a regular file`, { location: file })
    const buffer = Buffer.alloc(maxPlanBytes + 1)
    let length = 0
    for (let n = 1; n > 0 && length <= maxPlanBytes; length += n) n = readSync(fd, buffer, length, buffer.length - length, null)
    if (length > maxPlanBytes) throw usageError(`plan file ${file} is larger than ${maxPlanBytes >> 20} MiB`, { location: file })
    return buffer.subarray(0, length).toString('utf8')
  } finally {
    closeSync(fd)
  }
}

export default defineProvCommand({
  meta: {
    name: 'apply',
    description: 'Carry out a prov.server.plan/v1 (file or stdin); streams prov.server/v1 results',
    examples: ['prov-server plan --infra demo | prov-server apply --yes', 'prov-server apply plan.json --check'],
    mutating: true,
    destructive: true,
    confirms: true,
    uses: ['infra', 'parallel'],
  },
  orchestrated: 'server.apply',
  args: {
    plan: { type: 'positional', required: false, description: 'Plan file (default: stdin)', valueHint: 'PLAN_FILE' },
  },
  async run(ctx) {
    let plan: ServerPlan
    const file = ctx.positionals[0]
    if (ctx.positionals.length > 1) throw usageError('apply takes one plan file', { hint: 'prov-server apply plan.json --yes' })
    const source = file ?? 'stdin'
    if (file) {
      const input = parseInput(readPlanFile(file), file)
      if (input.records.length !== 1) throw usageError(`${file} must hold exactly one plan record`, { location: file })
      plan = parsePlan(input.records[0], file)
    } else {
      const input = await ctx.stdin()
      if (!input?.records.length) throw usageError('no plan given', { hint: 'prov-server plan --infra NAME | prov-server apply --yes' })
      if (input.records.length !== 1) throw usageError(`stdin must hold exactly one plan record, got ${input.records.length}`, { location: 'stdin' })
      plan = parsePlan(input.records[0], 'stdin')
    }
    const env = await serverEnv(ctx.common)
    await checkPlan(env, plan, source)
    const work = plan.actions.filter((a) => a.action !== 'keep')
    const s = plan.summary
    if (ctx.common.check) {
      emitPlan(ctx, plan)
      return
    }
    if (!work.length) {
      ctx.log.info('nothing to do: servers match the plan')
      ctx.emit([])
      return
    }
    await preflight(
      env,
      work.map((a) => a.spec?.provider ?? a.provider),
    )
    const question = `apply: ${s.create} create, ${s.update} update, ${s.delete} delete?`
    await confirmChange(ctx.common.yes, 'apply a plan', question, renderPlan(plan, painter(process.stderr)))
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
          if (!record) {
            const gone = notFoundError(`server '${a.server}' no longer exists`, { location: env.workspace.paths.servers })
            return failure({ name: a.server, provider: a.provider }, 'delete', gone)
          }
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
          if (!record) return failure({ name: a.server, provider: a.provider }, 'update', notFoundError(`server '${a.server}' no longer exists`))
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
