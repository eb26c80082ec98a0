import { readdirSync, readFileSync, renameSync, rmSync } from 'node:fs'
import { extname, join, relative } from 'node:path'
import { type CommandDef, defineProvCommand, listSecretNames, readAllIdentities, writeFileAtomic } from '@prov/core'
import { recipientOfIdentity } from '../age/file'
import { openAgeData, sealAgeText } from '../backends/age'
import { confirmed, previewed } from '../lib/check'
import { createIdentity, describeIdentity, retiredIdentityFiles, retireIdentity } from '../lib/keyfile'
import { assertAgeAllowed, kmsContext } from '../lib/settings'
import { secretPath, secretsRoot, writeSecretFile } from '../lib/store'
import { detectFormat } from '../sops/formats'
import { openDocument, otherMetadataForNewKey, readSopsDocument, rulesOf, sealDocument, writeSopsDocument } from '../sops/index'

const list = defineProvCommand({
  meta: {
    name: 'list',
    description: 'The age identities: the active one and the retired ones (public recipients only)',
    examples: ['prov-kms keys list'],
    mutating: false,
  },
  async run({ common, emit }) {
    const ctx = await kmsContext(common)
    const records = [await describeIdentity(ctx.identityPath, 'active')]
    for (const file of retiredIdentityFiles(ctx.retiredDir).reverse()) records.push(await describeIdentity(file, 'retired'))
    emit(records)
  },
})

function sopsCandidates(root: string): string[] {
  const out: string[] = []
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = join(dir, entry.name)
      if (entry.isDirectory()) {
        if (!['.git', 'node_modules', '.prov'].includes(entry.name)) walk(full)
      } else if (entry.isFile() && ['.yaml', '.yml', '.json', '.env'].includes(extname(entry.name))) out.push(full)
    }
  }
  walk(root)
  return out
}

const rotate = defineProvCommand({
  meta: {
    name: 'rotate',
    description:
      "New age identity; re-encrypt the workspace's secrets and SOPS files; the old key is kept as a retired one (asks; --yes when nobody can answer)",
    examples: ['prov-kms keys rotate --yes', 'prov-kms keys rotate --check'],
    mutating: true,
    destructive: true,
    confirms: true,
  },
  async run({ common, emit, log }) {
    const ctx = await kmsContext(common)
    assertAgeAllowed(ctx)
    const oldIdentities = readAllIdentities(ctx.workspace?.path, ctx.identityPath)
    const oldRecipients = new Set(await Promise.all(oldIdentities.map((i) => recipientOfIdentity(i.secret))))
    // Decrypt everything first: a failure here changes nothing.
    const secrets: Array<{ name: string; file: string; value: Uint8Array }> = []
    const sopsFiles: Array<{ file: string; doc: Awaited<ReturnType<typeof readSopsDocument>>; tree: Awaited<ReturnType<typeof openDocument>>['tree'] }> = []
    if (ctx.workspace) {
      secretsRoot(ctx.workspace)
      for (const name of listSecretNames(ctx.workspace.path)) {
        const file = secretPath(ctx.workspace, name)
        secrets.push({ name, file, value: await openAgeData(readFileSync(file), oldIdentities, file) })
      }
      for (const file of sopsCandidates(ctx.workspace.path)) {
        const text = readFileSync(file, 'utf8')
        if (!/(^|\n)(sops:|sops_lastmodified=|\s*"sops"\s*:)/.test(text)) continue
        let doc: Awaited<ReturnType<typeof readSopsDocument>>
        try {
          doc = await readSopsDocument(text, detectFormat(file), file)
        } catch {
          continue
        }
        if (!doc.metadata?.age.some((a) => oldRecipients.has(a.recipient))) continue
        sopsFiles.push({ file, doc, tree: (await openDocument(doc, oldIdentities, file)).tree })
      }
    }
    const where = (file: string) => relative(ctx.workspace?.path ?? '.', file)
    const planned = [
      { action: 'rotate', target: ctx.identityPath, retire_to: ctx.retiredDir },
      ...secrets.map((secret) => ({ action: 're-encrypt', target: secret.name, kind: 'secret' })),
      ...sopsFiles.map(({ file }) => ({ action: 're-encrypt', target: where(file), kind: 'sops' })),
    ]
    if (previewed(common, emit, planned)) return
    await confirmed(common, `rotate the age identity and re-encrypt ${secrets.length} secret(s) and ${sopsFiles.length} SOPS file(s)`)
    // New key first (its own file), then swap: a crash leaves a usable identity either way.
    const pending = `${ctx.identityPath}.new`
    rmSync(pending, { force: true })
    const created = await createIdentity(pending)
    const retired = retireIdentity(ctx.identityPath, ctx.retiredDir)
    renameSync(pending, ctx.identityPath)
    log.success(`new identity ${created.recipient}; old one kept at ${retired}`)
    const records: Record<string, unknown>[] = [{ schema: 'prov.kms.rotation/v1', kind: 'identity', recipient: created.recipient, retired }]
    const recipients = ctx.settings.recipients.filter((r) => !oldRecipients.has(r))
    for (const secret of secrets) {
      await writeSecretFile(
        ctx.workspace as NonNullable<typeof ctx.workspace>,
        secret.name,
        await sealAgeText(secret.value, [created.recipient, ...recipients]),
      )
      records.push({ schema: 'prov.kms.rotation/v1', kind: 'secret', name: secret.name })
    }
    for (const { file, doc, tree } of sopsFiles) {
      const metadata = doc.metadata as NonNullable<typeof doc.metadata>
      const keep = metadata.age.map((a) => a.recipient).filter((r) => !oldRecipients.has(r))
      const sealed = await sealDocument(doc.format, tree, {
        recipients: [created.recipient, ...keep],
        rules: rulesOf(metadata),
        other: otherMetadataForNewKey(metadata).kept,
      })
      writeFileAtomic(file, await writeSopsDocument(sealed), { mode: 0o600 })
      records.push({ schema: 'prov.kms.rotation/v1', kind: 'sops', file: where(file) })
    }
    emit(records)
  },
})

export default {
  meta: { name: 'keys', description: 'List and rotate age identities' },
  subCommands: { list, rotate },
} satisfies CommandDef
