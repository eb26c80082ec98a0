import { defineProvCommand, type SecretResolver, secretResolverFor, usageError } from '@prov/core'
import { dayZeroFormats } from '../dayzero/provision'
import { serverEnv } from '../engine'
import { desiredServer } from '../plan'

export default defineProvCommand({
  meta: {
    name: 'userdata',
    description: "Print a server's first-boot document (Ignition or cloud-init) rendered from provision: or its Butane file",
    examples: [
      'prov-server userdata web-01 --infra demo',
      'prov-server userdata web-01 --infra demo --format cloud-init',
      'prov-server userdata web-01 --reveal > web-01.ign',
    ],
    mutating: false,
    uses: ['infra'],
  },
  args: {
    name: { type: 'positional', required: true, description: 'Server name (as declared in servers.yaml)' },
    format: { type: 'enum', options: [...dayZeroFormats], description: "Document format (default: the server's provision.format, then its provider's)" },
    file: { type: 'string', alias: ['f'], description: 'servers.yaml to read instead of --infra' },
    reveal: { type: 'boolean', description: 'Put secret values in the document (only when stdout is not a terminal)' },
  },
  async run(ctx) {
    if (ctx.positionals.length !== 1) throw usageError('userdata takes one server name', { hint: 'prov-server userdata web-01 --infra demo' })
    const reveal = Boolean(ctx.args.reveal)
    if (reveal && process.stdout.isTTY) {
      throw usageError('--reveal would print secret values on a terminal', { hint: 'redirect the output to a file or a pipe' })
    }
    const env = await serverEnv(ctx.common)
    const { spec, at, locate } = await desiredServer(env, ctx.positionals[0], ctx.args.file as string | undefined)
    let secrets: SecretResolver | undefined
    if (reveal) {
      const config = env.config as { secrets?: { provider?: 'workspace' | 'kms' | 'env' } }
      secrets = secretResolverFor(config.secrets?.provider ?? 'workspace', env.workspace.path)
    }
    const { renderDayZero, writeDayZeroDocument } = await import('../dayzero/document')
    const document = await renderDayZero(spec, {
      workspacePath: env.workspace.path,
      format: ctx.args.format as (typeof dayZeroFormats)[number] | undefined,
      secrets,
      at,
      locate,
    })
    if (!document) throw usageError(`server '${spec.name}' declares no provision: or butane:`, { location: at, hint: 'see docs/day-zero.md' })
    if (reveal) ctx.log.warn(`the ${document.format} document of ${spec.name} holds secret values: keep it private`)
    writeDayZeroDocument(document.text, document.format, ctx.args.out as string | undefined)
  },
})
