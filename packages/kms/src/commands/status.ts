import { existsSync } from 'node:fs'
import { defineProvCommand } from '@prov/core'
import { AwsKms, awsOptions } from '../backends/awskms'
import { VaultTransit, vaultOptions } from '../backends/vault'
import { describeIdentity, retiredIdentityFiles } from '../lib/keyfile'
import { kmsContext } from '../lib/settings'

export default defineProvCommand({
  meta: { name: 'status', description: 'Backend reachability and key health, as JSON (exit 0 even when something is unhealthy)' },
  args: {
    probe: { type: 'string', description: 'Also probe these remote backends: vault,awskms (default: the configured backend)' },
  },
  async run({ args, common, emit }) {
    const ctx = await kmsContext(common, { checkIdentity: false })
    const identity = await describeIdentity(ctx.identityPath, 'active')
    const retired = retiredIdentityFiles(ctx.retiredDir)
    const probes = new Set(
      String(args.probe ?? ctx.settings.backend)
        .split(',')
        .map((s) => s.trim()),
    )
    const backends: Record<string, unknown> = {
      age: { reachable: true, in_process: true, identity: identity.healthy ? 'ok' : (identity.problem ?? 'unhealthy') },
    }
    if (probes.has('vault')) {
      const options = vaultOptions(ctx.settings.vault)
      backends.vault = {
        address: options.address,
        mount: options.mount,
        key: options.key,
        auth: options.token ? 'token' : options.roleId ? 'approle' : 'none',
        ...(await new VaultTransit(options).health()),
      }
    }
    if (probes.has('awskms')) {
      const options = awsOptions(ctx.settings.aws)
      backends.awskms = { region: options.region, endpoint: options.endpoint ?? null, ...(await new AwsKms(options).ping()) }
    }
    emit({
      schema: 'prov.kms.status/v1',
      backend: ctx.settings.backend,
      workspace: ctx.workspace?.path ?? null,
      identity,
      retired_keys: retired.length,
      secrets_dir: ctx.workspace ? { path: ctx.workspace.paths.secrets, exists: existsSync(ctx.workspace.paths.secrets) } : null,
      backends,
      healthy: identity.healthy || ctx.settings.backend !== 'age',
    })
  },
})
