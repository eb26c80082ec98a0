import { existsSync, readFileSync, statSync } from 'node:fs'
import {
  type CommandDef,
  defineProvCommand,
  listSecretNames,
  notFoundError,
  registerSecretValue,
  requireWorkspace,
  usageError,
  validateSecretName,
} from '@prov/core'
import { decryptionIdentities, openAgeData, resolveRecipients, sealAgeText } from '../backends/age'
import { confirmed, previewed } from '../lib/check'
import { readAll, stdinSource, writeOut } from '../lib/io'
import { kmsContext } from '../lib/settings'
import { removeSecretFile, secretPath, secretsRoot, writeSecretFile } from '../lib/store'

const nameArg = { type: 'positional', description: 'Secret name, e.g. db/password', required: true } as const

async function storeContext(common: Parameters<typeof kmsContext>[0]) {
  const ctx = await kmsContext(common)
  const workspace = requireWorkspace(common.workspace)
  return { workspace, ctx: { ...ctx, workspace } }
}

/** The largest secret value, whatever it comes from. */
const MAX_SECRET_BYTES = 1 << 20

/** A value file read whole: a regular file (not a FIFO or device that never ends), at most MAX_SECRET_BYTES. */
function readValueFile(file: string): Buffer {
  let size: number
  try {
    const info = statSync(file)
    if (!info.isFile()) throw usageError(`${file} is not a regular file`, { location: file })
    size = info.size
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw notFoundError(`no file ${file}`, { location: file })
    throw error
  }
  if (size > MAX_SECRET_BYTES) throw usageError(`${file} is larger than a secret may be (1 MiB)`, { location: file })
  return readFileSync(file)
}

const set = defineProvCommand({
  meta: {
    name: 'set',
    description: "Store a secret encrypted (age) under <workspace>/secrets/NAME.age; VALUE or '-'/nothing for stdin",
    examples: ['echo s3cret | prov-kms secret set db/password', 'prov-kms secret set api/token "$TOKEN"', 'prov-kms secret set tls/key --file server.key'],
    mutating: true,
  },
  args: {
    name: nameArg,
    value: { type: 'positional', description: "The value ('-' or nothing: stdin, one trailing newline dropped)", required: false },
    file: { type: 'string', description: 'Read the value from this file, byte for byte (a key file, a certificate: nothing dropped)' },
  },
  async run({ args, common, emit, log }) {
    const name = validateSecretName(String(args.name))
    if (args.file !== undefined && args.value !== undefined) throw usageError('give the value or --file, not both', { location: '--file' })
    const { workspace, ctx } = await storeContext(common)
    const target = secretPath(workspace, name)
    // The value is not read under --check: a preview never takes a secret in.
    if (previewed(common, emit, [{ action: existsSync(target) ? 'replace' : 'store', target: name, path: target }])) return
    let value: Buffer
    if (args.file !== undefined) value = readValueFile(String(args.file))
    else if (args.value === undefined || args.value === '-') {
      value = await readAll(stdinSource('secret value'), MAX_SECRET_BYTES)
      if (value.at(-1) === 0x0a) value = value.subarray(0, value.at(-2) === 0x0d ? -2 : -1)
    } else value = Buffer.from(String(args.value), 'utf8')
    if (!value.length) throw usageError(`empty value for secret '${name}'`, { location: name })
    registerSecretValue(value.toString('utf8'))
    const armored = await sealAgeText(value, await resolveRecipients(ctx, []))
    const file = await writeSecretFile(workspace, name, armored)
    log.success(`secret '${name}' stored`)
    emit({ schema: 'prov.kms.secret/v1', name, path: file, updated: statSync(file).mtime.toISOString() })
  },
})

const get = defineProvCommand({
  meta: {
    name: 'get',
    description: 'Print the value of a secret on stdout (the one command that reveals it)',
    examples: ['prov-kms secret get db/password'],
    mutating: false,
  },
  args: { name: nameArg },
  async run({ args, common }) {
    const name = validateSecretName(String(args.name))
    const { workspace, ctx } = await storeContext(common)
    const file = secretPath(workspace, name)
    if (!existsSync(file)) throw notFoundError(`no secret '${name}'`, { location: file, hint: `prov-kms secret set ${name}` })
    const value = await openAgeData(readFileSync(file), decryptionIdentities(ctx), file)
    registerSecretValue(Buffer.from(value).toString('utf8'))
    await writeOut(value)
  },
})

const list = defineProvCommand({
  meta: { name: 'list', description: 'Names of the stored secrets (never values)', examples: ['prov-kms secret list'], mutating: false },
  async run({ common, emit }) {
    const { workspace } = await storeContext(common)
    secretsRoot(workspace)
    emit(listSecretNames(workspace.path).map((name) => ({ schema: 'prov.kms.secret/v1', name, path: secretPath(workspace, name) })))
  },
})

const rm = defineProvCommand({
  meta: {
    name: 'rm',
    description: 'Delete a stored secret (asks; --yes when nobody can answer)',
    examples: ['prov-kms secret rm db/old --yes', 'prov-kms secret rm db/old --check'],
    mutating: true,
    destructive: true,
    confirms: true,
  },
  args: { name: nameArg },
  async run({ args, common, emit, log }) {
    const name = validateSecretName(String(args.name))
    const { workspace } = await storeContext(common)
    const file = secretPath(workspace, name)
    if (!existsSync(file)) throw notFoundError(`no secret '${name}'`, { location: file })
    if (previewed(common, emit, [{ action: 'remove', target: name, path: file }])) return
    await confirmed(common, `delete secret '${name}'`)
    removeSecretFile(workspace, name)
    log.success(`secret '${name}' removed`)
    emit({ schema: 'prov.kms.secret/v1', name, removed: true })
  },
})

export default {
  meta: { name: 'secret', description: 'The workspace secret store: set, get, list, rm' },
  subCommands: { set, get, list, rm },
} satisfies CommandDef
