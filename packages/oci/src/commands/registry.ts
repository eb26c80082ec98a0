import { confirmOrCancel, defineProvCommand, failedError, usageError } from '@prov/core'
import { ociContext, referenceName, transportArgs } from '../context'
import { planPull } from '../pull'
import { formatReference } from '../ref'

export const tags = defineProvCommand({
  meta: {
    name: 'tags',
    description: 'Tags of a repository (registry or layout), newest semver first',
    examples: ['prov-oci tags 127.0.0.1:5000/prov/taskservs/redis'],
    mutating: false,
  },
  args: {
    repo: { type: 'positional', description: 'host[:port]/ns/name or layout:PATH', required: true },
    all: { type: 'boolean', description: 'Also list the sha256-<hex> referrer tags (signatures)' },
    ...transportArgs,
  },
  async run({ args, common, emit }) {
    const oci = await ociContext(common, args)
    const ref = oci.parse(args.repo, { allowBare: true })
    const semver = (await import('semver')).default
    const list = (await oci.target(ref).tags()).filter((t) => args.all || !/^sha256-[a-f0-9]{64}$/.test(t))
    const sorted = [...list].sort((a, b) => {
      const va = semver.valid(semver.coerce(a) ? a : null)
      const vb = semver.valid(semver.coerce(b) ? b : null)
      if (va && vb) return semver.rcompare(va, vb)
      if (va) return -1
      if (vb) return 1
      return a.localeCompare(b)
    })
    const base = formatReference({ ...ref, tag: undefined, digest: undefined })
    emit(sorted.map((tag) => ({ schema: 'prov.oci.tag/v1', repository: base, tag, reference: `${base}:${tag}` })))
  },
})

export const catalog = defineProvCommand({
  meta: { name: 'catalog', description: 'Repositories of a registry (default: oci.registry)', examples: ['prov-oci catalog 127.0.0.1:5000'], mutating: false },
  args: {
    registry: { type: 'positional', description: 'host[:port]', required: false },
    ...transportArgs,
  },
  async run({ args, common, emit }) {
    const oci = await ociContext(common, args)
    const registry = (args.registry ?? oci.settings.registry).replace(/^oci:\/\//, '').replace(/\/$/, '')
    if (!/^[A-Za-z0-9.-]+(:\d+)?$|^\[[0-9a-fA-F:]+\](:\d+)?$/.test(registry)) throw usageError(`invalid registry '${registry}'`, { hint: 'host[:port]' })
    const repositories = await oci.client(registry).catalog()
    emit(repositories.map((repository) => ({ schema: 'prov.oci.repository/v1', registry, repository, reference: `${registry}/${repository}` })))
  },
})

export const remove = defineProvCommand({
  meta: {
    name: 'delete',
    description: 'Delete a manifest (by tag or digest) from a registry or layout; asks first (--yes off a terminal)',
    examples: ['prov-oci delete 127.0.0.1:5000/prov/taskservs/redis:7.0.0 --yes'],
    mutating: true,
    destructive: true,
    confirms: true,
  },
  args: {
    ref: { type: 'positional', description: 'Reference', required: true },
    ...transportArgs,
  },
  async run({ args, common, emit, log }) {
    const oci = await ociContext(common, args)
    const ref = oci.parse(args.ref)
    const name = referenceName(ref)
    if (common.check) {
      const { digest } = await planPull(oci, ref)
      emit({ schema: 'prov.oci.delete/v1', reference: formatReference(ref), digest, deleted: false, planned: true })
      return
    }
    await confirmOrCancel({ yes: common.yes, what: `delete ${formatReference(ref)}` })
    const descriptor = await oci.target(ref).delete(name)
    log.success(`deleted ${formatReference(ref)} (${descriptor.digest})`)
    emit({ schema: 'prov.oci.delete/v1', reference: formatReference(ref), digest: descriptor.digest, deleted: true })
  },
})
