import { defineProvCommand, usageError } from '@prov/core'
import { previewed } from '../lib/check'
import { assertNoIdentity, createIdentity, describeIdentity } from '../lib/keyfile'
import { assertAgeAllowed, kmsContext } from '../lib/settings'

export default defineProvCommand({
  meta: {
    name: 'keygen',
    description: 'Create the age identity (0600) of the workspace, or of the user outside a workspace; never overwrites',
    examples: ['prov-kms keygen', 'prov-kms keygen --out json'],
    mutating: true,
  },
  args: {
    backend: { type: 'string', description: 'Only age keys are generated locally (Vault and AWS KMS keys live in the service)', valueHint: 'age' },
  },
  async run({ args, common, emit, log }) {
    if (args.backend !== undefined && args.backend !== 'age') {
      throw usageError(`keygen creates age keys only, not '${String(args.backend)}'`, {
        location: '--backend',
        hint: 'create Vault keys with `vault write -f transit/keys/NAME`, AWS keys with `aws kms create-key`',
      })
    }
    const ctx = await kmsContext(common)
    assertAgeAllowed(ctx)
    assertNoIdentity(ctx.identityPath)
    if (previewed(common, emit, [{ action: 'create', target: ctx.identityPath }])) return
    const created = await createIdentity(ctx.identityPath)
    log.success(`age identity written to ${ctx.identityPath} (recipient ${created.recipient})`)
    emit(await describeIdentity(ctx.identityPath, 'active'))
  },
})
