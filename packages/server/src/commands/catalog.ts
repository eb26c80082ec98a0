import { defineProvCommand, usageError } from '@prov/core'
import { providerConfig, serverEnv } from '../engine'
import { providerExtensions, providerNames } from '../providers/registry'

const providerArg = { provider: { type: 'string', description: 'Provider (default providers.default)' } } as const

async function chosen(ctx: { args: Record<string, unknown>; common: Parameters<typeof serverEnv>[0] }) {
  const env = await serverEnv(ctx.common)
  const name = String(ctx.args.provider ?? env.config.providers.default)
  const provider = await env.provider(name)
  return { env, name, provider, pctx: env.providerContext(name) }
}

export const providers = defineProvCommand({
  meta: {
    name: 'providers',
    description: 'Providers visible from the workspace, with capabilities and layer',
    examples: ['prov-server providers'],
    mutating: false,
    uses: ['infra'],
  },
  async run(ctx) {
    const env = await serverEnv(ctx.common)
    const lookup = { workspacePath: env.workspace.path, infra: ctx.common.infra }
    const exts = new Map(providerExtensions(lookup).map((e) => [e.manifest.name, e]))
    const out = []
    for (const name of providerNames(lookup)) {
      const provider = await env.provider(name)
      const ext = exts.get(name)
      out.push({
        schema: 'prov.server.provider/v1',
        name,
        version: ext?.manifest.version ?? null,
        description: ext?.manifest.description ?? '',
        layer: ext?.layer ?? 'bundled',
        capabilities: provider.capabilities,
        problems: provider.validateConfig(providerConfig(env.config, name)),
      })
    }
    ctx.emit(out)
  },
})

export const plans = defineProvCommand({
  meta: { name: 'plans', description: 'Server plans (sizes) of a provider', examples: ['prov-server plans --provider local'], mutating: false },
  args: providerArg,
  async run(ctx) {
    const { name, provider, pctx } = await chosen(ctx)
    ctx.emit((await provider.plans(pctx)).map((p) => ({ schema: 'prov.server.plan-size/v1', provider: name, ...p })))
  },
})

export const zones = defineProvCommand({
  meta: { name: 'zones', description: 'Zones of a provider', examples: ['prov-server zones --provider local'], mutating: false },
  args: providerArg,
  async run(ctx) {
    const { name, provider, pctx } = await chosen(ctx)
    ctx.emit((await provider.zones(pctx)).map((z) => ({ schema: 'prov.server.zone/v1', provider: name, ...z })))
  },
})

export const price = defineProvCommand({
  meta: {
    name: 'price',
    description: 'Price of a plan (PLAN [--zone Z] --provider P); all plans when none is named',
    examples: ['prov-server price --provider local'],
    mutating: false,
  },
  args: { ...providerArg, zone: { type: 'string', description: 'Zone' } },
  async run(ctx) {
    const { name, provider, pctx } = await chosen(ctx)
    const named = ctx.positionals.length > 0
    const wanted = named ? ctx.positionals : (await provider.plans(pctx)).map((p) => p.name)
    const out = []
    for (const plan of wanted) {
      const result = await provider.price(pctx, plan, (ctx.args.zone as string | undefined) ?? null)
      // Every plan listed: one without a price (not sold in that zone) is left out, not fatal. A
      // provider without prices answers nothing. A named plan a priced provider lacks is input to fix.
      if (!result && (!named || !provider.capabilities.price)) continue
      if (!result) throw usageError(`provider '${name}' has no price for plan '${plan}'`)
      out.push({ schema: 'prov.server.price/v1', provider: name, ...result })
    }
    ctx.emit(out)
  },
})
