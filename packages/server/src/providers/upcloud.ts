import type { ServerRecord } from '@prov/core'
import { cloudSpecProblems, listedRecord } from './cloud/common'
import type { CreateOptions, Provider, ProviderPlan } from './types'
import { api, findServer, labelsOf, power, publicIpv4, recordOf, requireServer, type UpcloudConfig, upcloudConfigProblems } from './upcloud-api'
import { checkChoices, imageOf, planList, upcloudPrice, zoneList, zoneOf } from './upcloud-catalog'
import { createServer, deleteServer } from './upcloud-create'

export type { UpcloudConfig } from './upcloud-api'
export { templateSlug } from './upcloud-catalog'

const NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/

/** `upcloud`: UpCloud servers over its API 1.3 (docs/providers.md#upcloud). */
export const upcloudProvider: Provider<UpcloudConfig> = {
  name: 'upcloud',
  capabilities: { start_stop: true, keep_storage: true, plans: true, zones: true, price: true, root: false },

  validateConfig(config) {
    return upcloudConfigProblems(config)
  },

  validateSpec(spec, config) {
    const problems = cloudSpecProblems('upcloud', spec, [
      { field: 'zone', value: zoneOf(spec, config), example: 'such as fi-hel2' },
      {
        field: 'image',
        value: imageOf(spec, config),
        example: 'a template UUID, or its title as a slug such as ubuntu-server-24.04-lts-noble-numbat',
      },
    ])
    if (!NAME.test(spec.name)) problems.push('an upcloud server name is used as its hostname: lower-case letters, digits, . _ -')
    if (spec.disk_gb !== null && spec.disk_gb !== undefined && !(spec.disk_gb >= 10 && spec.disk_gb <= 4096))
      problems.push('an upcloud system disk is 10-4096 GB (disk_gb)')
    for (const [key, value] of Object.entries(spec.labels ?? {})) {
      if (!/^[A-Za-z0-9_-]{2,32}$/.test(key) || key.startsWith('_') || value.length > 255)
        problems.push(`label '${key}': UpCloud label keys are 2-32 of A-Z a-z 0-9 _ - (not starting with _), values at most 255 characters`)
    }
    return problems
  },

  async checkSpecs(ctx, specs) {
    await checkChoices(ctx, await api(ctx), specs)
  },

  async list(ctx, records) {
    if (!records.length) return records
    const client = await api(ctx)
    const out: ServerRecord[] = []
    for (const record of records) {
      // One details call per server: the list call of the API carries no addresses.
      out.push(listedRecord(record, (await findServer(ctx, client, record.name)) ?? undefined, recordOf))
    }
    return out
  },

  create(ctx, spec, record, options?: CreateOptions) {
    return createServer(ctx, spec, record, options)
  },

  delete(ctx, record, options) {
    return deleteServer(ctx, record, options)
  },

  start(ctx, record) {
    return power(ctx, record, 'started')
  },

  stop(ctx, record) {
    return power(ctx, record, 'stopped')
  },

  async info(ctx, record) {
    const client = await api(ctx)
    const server = await requireServer(ctx, client, record)
    return {
      uuid: server.uuid,
      state: server.state,
      zone: server.zone,
      plan: server.plan,
      cores: Number(server.core_number),
      memory_mb: Number(server.memory_amount),
      ipv4: publicIpv4(server) || null,
      storages: (server.storage_devices?.storage_device ?? []).map((d) => ({ uuid: d.storage, title: d.storage_title, size_gb: d.storage_size })),
      labels: labelsOf(server),
    }
  },

  async plans(ctx) {
    return (await planList(await api(ctx))).map(
      (p): ProviderPlan => ({ name: p.name, cores: p.core_number, memory_mb: p.memory_amount, disk_gb: p.storage_size }),
    )
  },

  async zones(ctx) {
    return (await zoneList(await api(ctx))).map((z) => ({ name: z.id, ...(z.description ? { description: z.description } : {}) }))
  },

  price(ctx, plan, zone) {
    return upcloudPrice(ctx, plan, zone)
  },
}

export default upcloudProvider
