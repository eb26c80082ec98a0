import { defineProvCommand, usageError } from '@prov/core'
import { transportArgs } from '../context'
import { credentialsFile, hasStoredCredential, removeCredential, storeCredential } from '../credentials'
import { RegistryClient } from '../registry-client'

function registryArg(value: string): string {
  const registry = value.replace(/^(oci|https?):\/\//, '').replace(/\/$/, '')
  if (!/^[A-Za-z0-9.-]+(:\d+)?$|^\[[0-9a-fA-F:]+\](:\d+)?$/.test(registry)) throw usageError(`invalid registry '${value}'`, { hint: 'host[:port]' })
  return registry
}

async function readStdinText(): Promise<string> {
  if (process.stdin.isTTY)
    throw usageError('--password-stdin needs the password on stdin', { hint: 'echo "$PASS" | prov-oci login HOST --username U --password-stdin' })
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '')
}

export const login = defineProvCommand({
  meta: {
    name: 'login',
    description: 'Check credentials against a registry and store them (0600 file in the user config dir)',
    examples: ['echo "$TOKEN" | prov-oci login 127.0.0.1:5000 --username ci --password-stdin'],
    mutating: true,
  },
  args: {
    registry: { type: 'positional', description: 'host[:port]', required: true },
    username: { type: 'string', alias: 'u', description: 'User name', required: true },
    'password-stdin': { type: 'boolean', description: 'Read the password (or token) from stdin' },
    ...transportArgs,
  },
  async run({ args, common, emit, log }) {
    const registry = registryArg(args.registry)
    if (common.check) {
      throw usageError('login is not supported with --check: it checks the credentials against the registry', {
        hint: 'run it without --check; nothing is stored unless the registry accepts them',
      })
    }
    if (!args['password-stdin']) throw usageError('pass the password on stdin with --password-stdin', { hint: 'passwords never go on the command line' })
    const password = await readStdinText()
    if (!password) throw usageError('empty password on stdin')
    const client = new RegistryClient(registry, { plainHttp: args['plain-http'], insecure: args.insecure, credential: { username: args.username, password } })
    await client.ping()
    await storeCredential(registry, { username: args.username, password })
    log.success(`logged in to ${registry}`)
    emit({ schema: 'prov.oci.login/v1', registry, username: args.username, stored: credentialsFile() })
  },
})

export const logout = defineProvCommand({
  meta: { name: 'logout', description: 'Forget the stored credentials of a registry', examples: ['prov-oci logout 127.0.0.1:5000'], mutating: true },
  args: { registry: { type: 'positional', description: 'host[:port]', required: true } },
  async run({ args, common, emit }) {
    const registry = registryArg(args.registry)
    if (common.check) {
      emit({ schema: 'prov.oci.logout/v1', registry, removed: hasStoredCredential(registry), planned: true })
      return
    }
    const removed = await removeCredential(registry)
    emit({ schema: 'prov.oci.logout/v1', registry, removed })
  },
})
