import { failedError } from '@prov/core'
import type { CloudApi } from './cloud/api'
import { requireChoice } from './cloud/common'
import type { ProviderPrice, ServerSpec } from './types'
import { api, type Ctx, type UPlan, type UpcloudConfig, UUID } from './upcloud-api'

// What the upcloud API offers: zones, plans, templates and prices, and the checks of a server's
// choices against them.

/** UpCloud bills a month as at most this many hours. */
const HOURS_PER_MONTH = 672

export function planOf(spec: ServerSpec, config: UpcloudConfig): string | undefined {
  return spec.plan ?? config.plan
}

export function imageOf(spec: ServerSpec, config: UpcloudConfig): string | undefined {
  return spec.image ?? config.image
}

export function zoneOf(spec: ServerSpec, config: UpcloudConfig): string | undefined {
  return spec.zone ?? config.zone
}

export async function zoneList(client: CloudApi): Promise<{ id: string; description?: string; public?: string }[]> {
  const zones = await client.items<{ id: string; description?: string; public?: string }>('GET', '/zone', 'zones.zone')
  if (!zones.every((z) => typeof z.id === 'string')) throw client.unusable('GET', '/zone', 'a zone without an id')
  return zones
}

export async function planList(client: CloudApi): Promise<UPlan[]> {
  const plans = await client.items<UPlan>('GET', '/plan', 'plans.plan')
  if (!plans.every((p) => typeof p.name === 'string')) throw client.unusable('GET', '/plan', 'a plan without a name')
  return plans
}

/**
 * A template title as a server's `image:` can name it (titles have spaces and parentheses):
 * `Ubuntu Server 24.04 LTS (Noble Numbat)` is `ubuntu-server-24.04-lts-noble-numbat`.
 */
export function templateSlug(title: string): string {
  return title
    .toLowerCase()
    .replace(/[^a-z0-9.]+/g, '-')
    .replace(/^-+|-+$/g, '')
}

/**
 * The template UUID of an image: a UUID is taken as it is (the API refuses an unknown one), a
 * name is looked up among the templates by title or its slug (exit 2 listing them when none fits).
 */
export async function templateOf(client: CloudApi, image: string, server: string): Promise<string> {
  if (UUID.test(image)) return image
  const templates = (await client.items<{ uuid?: unknown; title?: unknown }>('GET', '/storage/template', 'storages.storage')).filter(
    (t): t is { uuid: string; title: string } => typeof t.uuid === 'string' && UUID.test(t.uuid) && typeof t.title === 'string',
  )
  const match = templates.find((t) => t.title === image || templateSlug(t.title) === image)
  if (!match) requireChoice('upcloud', 'template (image)', image, templates.map((t) => templateSlug(t.title)).sort(), server)
  return (match as { uuid: string }).uuid
}

/**
 * Checks zone, plan and image of servers against what the API offers: exit 2 listing the valid
 * ones. An image given by name is looked up among the templates now, so a plan refuses it rather
 * than the apply; a template UUID is checked by the API at create.
 */
export async function checkChoices(ctx: Ctx, client: CloudApi, specs: ServerSpec[]): Promise<void> {
  const zones = (await zoneList(client)).map((z) => z.id)
  const needPlans = specs.some((spec) => planOf(spec, ctx.config))
  const plans = needPlans ? (await planList(client)).map((p) => p.name) : []
  const checkedImages = new Set<string>()
  for (const spec of specs) {
    requireChoice('upcloud', 'zone', zoneOf(spec, ctx.config) as string, zones, spec.name)
    const plan = planOf(spec, ctx.config)
    if (plan) requireChoice('upcloud', 'plan', plan, plans, spec.name)
    const image = imageOf(spec, ctx.config)
    if (image && !UUID.test(image) && !checkedImages.has(image)) {
      await templateOf(client, image, spec.name)
      checkedImages.add(image)
    }
  }
}

/** The price of a plan in a zone (the configured one, else the first the API lists); null when the API has none. */
export async function upcloudPrice(ctx: Ctx, plan: string, zone?: string | null): Promise<ProviderPrice | null> {
  const client = await api(ctx)
  requireChoice(
    'upcloud',
    'plan',
    plan,
    (await planList(client)).map((p) => p.name),
  )
  const where = zone ?? ctx.config.zone ?? null
  const { prices } = await client.request<{ prices?: { zone?: (Record<string, unknown> & { name: string })[] } }>('GET', '/price')
  const zones = prices?.zone ?? []
  if (where && !zones.some((z) => z.name === where))
    requireChoice(
      'upcloud',
      'zone',
      where,
      zones.map((z) => z.name),
    )
  const entry = where ? zones.find((z) => z.name === where) : zones[0]
  const item = entry?.[`server_plan_${plan}`] as { amount?: number; price?: number } | undefined
  if (!entry || typeof item?.price !== 'number') return null
  // Prices are euro cents per hour; a month is billed as at most 672 hours.
  const hourly = Number((item.price / 100).toFixed(6))
  if (!Number.isFinite(hourly) || hourly < 0) throw failedError(`the upcloud API reported an unusable price for ${plan}`)
  return { plan, zone: entry.name, currency: 'EUR', hourly, monthly: Math.round(hourly * HOURS_PER_MONTH * 100) / 100 }
}
