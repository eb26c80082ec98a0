import { spawn } from 'node:child_process'
import { closeSync, existsSync, fsyncSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, extname, join } from 'node:path'
import {
  type CommandDef,
  defineProvCommand,
  failedError,
  formatBytes,
  inputLimitBytes,
  isUnattended,
  notFoundError,
  usageError,
  writeFileAtomic,
} from '@prov/core'
import { checkRecipients, resolveRecipients } from '../backends/age'
import { listFlag } from '../lib/args'
import { confirmed, previewed, refuseCheck } from '../lib/check'
import { writeOut } from '../lib/io'
import { identityArg, kmsContext } from '../lib/settings'
import type { SopsMap } from '../sops/cipher'
import { detectFormat, emitTree, parseTree, type SopsFormat } from '../sops/formats'
import {
  findCreationRule,
  openDocument,
  otherMetadataForNewKey,
  readSopsDocument,
  rulesOf,
  type SopsRules,
  sealDocument,
  sopsIdentities,
  writeSopsDocument,
} from '../sops/index'

const fileArg = { type: 'positional', description: 'The YAML, JSON or dotenv file', required: true } as const
const inputType = { type: 'enum' as const, options: ['yaml', 'json', 'dotenv'], description: 'Format of FILE (default: from the file name)' }
const inPlace = { type: 'boolean', description: 'Rewrite FILE instead of printing to stdout (sops -i; here -i is --infra)' } as const

function readInput(file: string): string {
  if (!existsSync(file)) throw notFoundError(`no file ${file}`, { location: file })
  const limit = inputLimitBytes()
  if (statSync(file).size > limit) {
    throw usageError(`${file} is larger than the input limit of ${formatBytes(limit)}`, {
      location: file,
      hint: 'raise limits.input_bytes (or PROV_LIMITS__INPUT_BYTES)',
    })
  }
  const data = readFileSync(file)
  const text = data.toString('utf8')
  if (!Buffer.from(text, 'utf8').equals(data)) throw usageError(`${file} is not UTF-8 text`, { location: file })
  return text
}

function keepMode(file: string): number {
  return existsSync(file) ? statSync(file).mode & 0o777 : 0o600
}

const encrypt = defineProvCommand({
  meta: {
    name: 'encrypt',
    description: 'Encrypt the values of FILE in place of the cleartext (keys stay readable); recipients from --age, .sops.yaml, kms.recipients or the own key',
    examples: ['prov-kms sops encrypt secrets/app.yaml', 'prov-kms sops encrypt secrets/app.yaml --age age1...'],
    mutating: true,
  },
  args: {
    file: fileArg,
    age: { type: 'string', description: 'age recipients (comma-separated or repeated)' },
    'encrypted-regex': { type: 'string', description: 'Only encrypt values whose key path matches' },
    'unencrypted-regex': { type: 'string', description: 'Leave values whose key path matches in clear' },
    'unencrypted-suffix': { type: 'string', description: "Leave keys ending with this in clear (default '_unencrypted')" },
    'encrypted-suffix': { type: 'string', description: 'Only encrypt keys ending with this' },
    'mac-only-encrypted': { type: 'boolean', description: 'MAC only the encrypted values' },
    'input-type': inputType,
    'in-place': inPlace,
  },
  async run({ args, common, emit, log }) {
    const ctx = await kmsContext(common)
    const file = String(args.file)
    const format = detectFormat(file, args['input-type'] as string | undefined)
    const doc = await readSopsDocument(readInput(file), format, file)
    if (doc.metadata) throw usageError(`${file} is already encrypted`, { location: file, hint: 'use sops edit or sops rotate' })
    const found = await findCreationRule(file)
    const flagRules: SopsRules = {}
    if (args['encrypted-regex']) flagRules.encrypted_regex = String(args['encrypted-regex'])
    if (args['unencrypted-regex']) flagRules.unencrypted_regex = String(args['unencrypted-regex'])
    if (args['unencrypted-suffix']) flagRules.unencrypted_suffix = String(args['unencrypted-suffix'])
    if (args['encrypted-suffix']) flagRules.encrypted_suffix = String(args['encrypted-suffix'])
    if (args['mac-only-encrypted']) flagRules.mac_only_encrypted = true
    const { path_regex: _regex, age: ruleAge, ...ruleRules } = found?.rule ?? {}
    let rules: SopsRules = Object.keys(flagRules).length ? flagRules : ruleRules
    if (!rules.encrypted_regex && !rules.unencrypted_regex && !rules.encrypted_suffix && !rules.unencrypted_suffix)
      rules = { ...rules, unencrypted_suffix: '_unencrypted' }
    const flagged = listFlag(args.age, 'age')
    const recipients = flagged.length ? checkRecipients(flagged) : ruleAge?.length ? checkRecipients(ruleAge) : await resolveRecipients(ctx, [])
    if (found && !flagged.length) log.info(`using creation rule of ${found.config}`)
    if (args['in-place'] && previewed(common, emit, [{ action: 'encrypt', target: file, recipients }])) return
    const sealed = await sealDocument(format, doc.tree, { recipients, rules })
    if (args['in-place']) {
      writeFileAtomic(file, await writeSopsDocument(sealed), { mode: keepMode(file) })
      return
    }
    // Like sops --output-type: the file's own format by default, an asked-for output format
    // (--out, PROV_OUTPUT__FORMAT, output.format) otherwise; the MAC covers values, not syntax.
    const asked = (args.out as string | undefined) ?? (ctx.outputFormat !== 'auto' ? ctx.outputFormat : undefined)
    if (asked) emit(JSON.parse(await writeSopsDocument({ ...sealed, format: 'json' })))
    else await writeOut(await writeSopsDocument(sealed))
  },
})

const decrypt = defineProvCommand({
  meta: {
    name: 'decrypt',
    description: "Decrypt FILE (verifying its MAC: a tampered file is refused with exit 4); printed in FILE's format unless --out asks for another",
    examples: ['prov-kms sops decrypt secrets/app.enc.yaml', 'prov-kms sops decrypt secrets/app.enc.yaml --out json'],
    mutating: true,
  },
  args: { file: fileArg, 'input-type': inputType, 'in-place': inPlace, identity: identityArg },
  async run({ args, common, emit }) {
    const ctx = await kmsContext(common, { identity: args.identity })
    const file = String(args.file)
    const format = detectFormat(file, args['input-type'] as string | undefined)
    const doc = await readSopsDocument(readInput(file), format, file)
    const { tree } = await openDocument(doc, sopsIdentities(ctx), file)
    if (args['in-place']) {
      if (previewed(common, emit, [{ action: 'decrypt', target: file }])) return
      writeFileAtomic(file, await emitTree(tree, format), { mode: 0o600 })
      return
    }
    // Like sops, the file's own format by default; an asked-for output format (--out,
    // PROV_OUTPUT__FORMAT, output.format) is honoured like everywhere else.
    const asked = (args.out as string | undefined) ?? (ctx.outputFormat !== 'auto' ? ctx.outputFormat : undefined)
    if (asked) emit(JSON.parse(await emitTree(tree, 'json')))
    else await writeOut(await emitTree(tree, format))
  },
})

/** Overwrites a file with zeros before removing it, then removes its folder. */
function wipe(file: string, dir: string): void {
  try {
    if (existsSync(file)) {
      const size = statSync(file).size
      const fd = openSync(file, 'r+')
      try {
        const zeros = Buffer.alloc(Math.min(size, 1 << 20))
        for (let offset = 0; offset < size; offset += zeros.length) writeSync(fd, zeros, 0, Math.min(zeros.length, size - offset), offset)
        fsyncSync(fd)
      } finally {
        closeSync(fd)
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

const edit = defineProvCommand({
  meta: {
    name: 'edit',
    description: 'Open FILE decrypted in $EDITOR (temp file in a 0700 folder), re-encrypt on save, wipe the temp file',
    examples: ['prov-kms sops edit secrets/app.enc.yaml'],
    mutating: true,
  },
  args: { file: fileArg, 'input-type': inputType, age: { type: 'string', description: 'Recipients for a new file' } },
  async run({ args, common, log }) {
    refuseCheck(common, 'sops edit (an editor session)')
    if (isUnattended())
      throw usageError('mode ci never asks: sops edit opens an editor for a person', {
        location: 'mode',
        hint: 'in a job, prov-kms sops decrypt the file, change it, and prov-kms sops encrypt it',
      })
    const ctx = await kmsContext(common)
    const file = String(args.file)
    const format: SopsFormat = detectFormat(file, args['input-type'] as string | undefined)
    const editor = process.env.SOPS_EDITOR || process.env.EDITOR || process.env.VISUAL || 'vi'
    let plainText = ''
    let dataKey: Buffer | undefined
    let metadata: Awaited<ReturnType<typeof readSopsDocument>>['metadata']
    if (existsSync(file)) {
      const doc = await readSopsDocument(readInput(file), format, file)
      const opened = await openDocument(doc, sopsIdentities(ctx), file)
      dataKey = opened.dataKey
      metadata = doc.metadata
      plainText = await emitTree(opened.tree, format)
    }
    const dir = mkdtempSync(join(tmpdir(), 'prov-kms-edit-'))
    const temp = join(dir, `${basename(file, extname(file)) || 'secret'}${extname(file) || (format === 'dotenv' ? '.env' : '')}`)
    try {
      writeFileSync(temp, plainText, { mode: 0o600 })
      const result = await editInterruptibly(editor, temp)
      if (result.signal) throw failedError(`interrupted by ${result.signal}: ${file} is unchanged and the decrypted copy is wiped`, { location: file })
      if (result.error || result.status !== 0)
        throw failedError(`editor '${editor}' failed (exit ${result.status ?? result.error?.message}); ${file} is unchanged`, { location: file })
      const edited = readFileSync(temp, 'utf8')
      if (edited === plainText) {
        log.info(`${file}: no change`)
        return
      }
      const tree: SopsMap = await parseTree(edited, format, `${file} (edited)`)
      const other = metadata?.other ?? []
      const rules: SopsRules = metadata ? rulesOf(metadata) : { unencrypted_suffix: '_unencrypted' }
      let recipients: string[] = []
      if (!metadata) {
        const flagged = listFlag(args.age, 'age')
        const ruleAge = (await findCreationRule(file))?.rule.age ?? []
        recipients = flagged.length ? checkRecipients(flagged) : ruleAge.length ? checkRecipients(ruleAge) : await resolveRecipients(ctx, [])
      }
      const sealed = await sealDocument(format, tree, { recipients, rules, dataKey, ageKeys: metadata?.age, other })
      writeFileAtomic(file, await writeSopsDocument(sealed), { mode: keepMode(file) })
      log.success(`${file} re-encrypted`)
    } finally {
      wipe(temp, dir)
    }
  },
})

/**
 * Runs the editor on the decrypted copy. A signal to prov-kms (SIGTERM, SIGHUP, SIGINT) ends the
 * editor and comes back here, so the caller wipes the copy instead of leaving it behind.
 */
async function editInterruptibly(editor: string, temp: string): Promise<{ status: number | null; signal?: NodeJS.Signals; error?: Error }> {
  const child = spawn('/bin/sh', ['-c', `${editor} "$1"`, 'sh', temp], { stdio: 'inherit' })
  let received: NodeJS.Signals | undefined
  const signals: NodeJS.Signals[] = ['SIGTERM', 'SIGHUP', 'SIGINT']
  const onSignal = (signal: NodeJS.Signals) => {
    received = signal
    child.kill(signal === 'SIGINT' ? 'SIGTERM' : signal)
  }
  for (const signal of signals) process.on(signal, onSignal)
  try {
    return await new Promise((resolve) => {
      child.once('error', (error) => resolve({ status: null, error }))
      child.once('close', (status) => resolve({ status, ...(received ? { signal: received } : {}) }))
    })
  } finally {
    for (const signal of signals) process.off(signal, onSignal)
  }
}

const rotate = defineProvCommand({
  meta: {
    name: 'rotate',
    description: 'New data key for FILE, all values re-encrypted; --add-age / --rm-age change the recipients (asks; --yes when nobody can answer)',
    examples: ['prov-kms sops rotate secrets/app.enc.yaml --yes', 'prov-kms sops rotate secrets/app.enc.yaml --add-age age1... --yes'],
    mutating: true,
    destructive: true,
    confirms: true,
  },
  args: {
    file: fileArg,
    'input-type': inputType,
    'add-age': { type: 'string', description: 'Recipients to add' },
    'rm-age': { type: 'string', description: 'Recipients to remove' },
  },
  async run({ args, common, emit, log }) {
    const ctx = await kmsContext(common)
    const file = String(args.file)
    const format = detectFormat(file, args['input-type'] as string | undefined)
    const doc = await readSopsDocument(readInput(file), format, file)
    const { tree } = await openDocument(doc, sopsIdentities(ctx), file)
    const metadata = doc.metadata as NonNullable<typeof doc.metadata>
    const remove = new Set(checkRecipients(listFlag(args['rm-age'], 'rm-age')))
    const recipients = [
      ...new Set([...metadata.age.map((a) => a.recipient).filter((r) => !remove.has(r)), ...checkRecipients(listFlag(args['add-age'], 'add-age'))]),
    ]
    const { kept, dropped } = otherMetadataForNewKey(metadata)
    if (previewed(common, emit, [{ action: 'rotate', target: file, recipients, dropped }])) return
    await confirmed(common, `rotate the data key of ${file}`)
    if (dropped.length) log.warn(`${file}: dropping key sources prov-kms cannot re-wrap (${dropped.join(', ')}); re-add them with sops`)
    const sealed = await sealDocument(format, tree, { recipients, rules: rulesOf(metadata), other: kept })
    writeFileAtomic(file, await writeSopsDocument(sealed), { mode: keepMode(file) })
    emit({ schema: 'prov.kms.sops.rotation/v1', file, recipients, rotated: true })
  },
})

export default {
  meta: { name: 'sops', description: 'SOPS-compatible encrypted files (YAML, JSON, dotenv) with age recipients' },
  subCommands: { encrypt, decrypt, edit, rotate },
} satisfies CommandDef
