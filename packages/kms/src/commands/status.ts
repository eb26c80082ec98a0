import { existsSync } from 'node:fs'
import { defineProvCommand } from '@prov/core'
import { hasProbe } from '../backends/key-wrapper'
import { backends } from '../backends/registry'
import { describeIdentity, retiredIdentityFiles } from '../lib/keyfile'
import { type BackendName, backendNames, kmsContext } from '../lib/settings'

export default defineProvCommand({
  meta: {
    name: 'status',
    description: 'Backend reachability and key health, as JSON (exit 0 even when something is unhealthy)',
    examples: ['prov-kms status'],
    mutating: false,
  },
  args: {
    probe: { type: 'string', description: 'Also probe these remote backends: vault,awskms (default: the configured backend)' },
  },
  async run({ args, common, emit }) {
    const ctx = await kmsContext(common, { checkIdentity: false })
    const identity = await describeIdentity(ctx.identityPath, 'active')
    const retired = retiredIdentityFiles(ctx.retiredDir)
    const requested = String(args.probe ?? ctx.settings.backend)
      .split(',')
      .map((s) => s.trim())
    // Backends with local keys are always reported; remote ones when asked.
    const probed = backendNames.filter((name) => backends[name].localKeys || requested.includes(name))
    const report: Partial<Record<BackendName, unknown>> = {}
    for (const name of probed) {
      const wrapper = backends[name].create(ctx, [])
      if (hasProbe(wrapper)) report[name] = await wrapper.probe()
    }
    emit({
      schema: 'prov.kms.status/v1',
      backend: ctx.settings.backend,
      workspace: ctx.workspace?.path ?? null,
      identity,
      retired_keys: retired.length,
      secrets_dir: ctx.workspace ? { path: ctx.workspace.paths.secrets, exists: existsSync(ctx.workspace.paths.secrets) } : null,
      backends: report,
      healthy: identity.healthy || !backends[ctx.settings.backend].localKeys,
    })
  },
})
