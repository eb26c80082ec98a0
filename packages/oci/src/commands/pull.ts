import { resolve } from 'node:path'
import { confirmOrCancel, defineProvCommand, failedError, usageError } from '@prov/core'
import { ociContext, transportArgs } from '../context'
import { isNonEmptyFolder, planPull, pullArtifact, pullKeys } from '../pull'
import { readKey } from '../sign'

/** References piped in: records with a `reference` (prov.oci.tag/v1, prov.oci.push/v1, ...) or plain strings. */
function referencesFrom(records: unknown[]): string[] {
  return records.map((record, index) => {
    if (typeof record === 'string') return record
    const reference = (record as { reference?: unknown } | null)?.reference
    if (typeof reference !== 'string') {
      throw usageError(`stdin record ${index + 1} has no 'reference' string`, {
        location: `stdin[${index}]`,
        hint: 'pipe prov-oci tags/push/copy output, or strings',
      })
    }
    return reference
  })
}

export default defineProvCommand({
  meta: {
    name: 'pull',
    description: 'Pull an artifact into the cache and install it (workspace registry layer, or --to DIR); REF or piped records',
    examples: ['prov-oci pull 127.0.0.1:5000/prov/taskservs/redis:7.0.0', 'prov-oci pull 127.0.0.1:5000/prov/taskservs/redis:7.0.0 --to ./redis'],
    mutating: true,
    // --yes replaces a non-empty --to folder without asking.
    uses: ['yes'],
  },
  args: {
    ref: {
      type: 'positional',
      description: 'host[:port]/ns/name:tag, ...@sha256:..., or layout:PATH:tag (default: references piped on stdin)',
      required: false,
    },
    to: { type: 'string', description: 'Extract into this folder instead' },
    verify: { type: 'boolean', description: 'Refuse it unless signed by a trusted key' },
    key: { type: 'string', description: 'Public key (PEM) to verify with (default: oci.trusted_keys)' },
    ...transportArgs,
  },
  async run({ args, common, emit, log, stdin }) {
    const piped = args.ref ? undefined : await stdin()
    const inputs = args.ref ? [args.ref] : referencesFrom(piped?.records ?? [])
    if (!inputs.length) throw usageError('pull needs a reference', { hint: 'prov-oci pull HOST/NS/NAME:TAG, or pipe records with a reference' })
    if (inputs.length > 1 && args.to) throw usageError('--to takes one reference, not several')
    const oci = await ociContext(common, args)
    const refs = inputs.map((input) => oci.parse(input))
    const results: object[] = []
    for (const ref of refs) {
      if (common.check) {
        // The preview refuses what the pull would refuse before fetching anything.
        pullKeys(oci, { verify: args.verify || Boolean(args.key), keys: args.key ? [readKey(args.key, 'public')] : undefined })
        results.push(await planPull(oci, ref, args.to))
        continue
      }
      // Pulling over a folder that holds files replaces them: confirmed like any overwrite.
      if (args.to && isNonEmptyFolder(resolve(args.to))) {
        await confirmOrCancel({ yes: common.yes, what: `replace the non-empty folder ${resolve(args.to)}` })
      }
      const {
        manifest: _m,
        source: _s,
        ...result
      } = await pullArtifact(oci, ref, {
        to: args.to ? resolve(args.to) : undefined,
        verify: args.verify || Boolean(args.key),
        keys: args.key ? [readKey(args.key, 'public')] : undefined,
        log,
      })
      if (result.installed) log.success(`${result.name ?? result.reference} installed in ${result.installed}`)
      results.push(result)
    }
    emit(args.ref ? results[0] : results)
  },
})
