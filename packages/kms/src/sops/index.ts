/**
 * SOPS-compatible files (YAML, JSON, dotenv), written from the published format:
 * - every leaf value encrypted in place with one random 32-byte data key (see cipher.ts);
 * - the data key wrapped for each age recipient (`sops.age[].enc`, an armored age file);
 * - the MAC: SHA-512 over the cleartext values in document order (all of them, or only the
 *   encrypted ones with mac_only_encrypted), upper-case hex, encrypted with the data key and
 *   `lastmodified` (RFC 3339, UTC, seconds) as AAD;
 * - encrypted_regex / unencrypted_regex / encrypted_suffix / unencrypted_suffix select values.
 */
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import {
  type AgeIdentity,
  assertSafeStructure,
  assertYamlDepth,
  deniedError,
  formatBytes,
  isStackOverflow,
  MAX_CONFIG_FILE_BYTES,
  readAllIdentities,
  readIdentityFile,
  tooDeepError,
  usageError,
} from '@prov/core'
import { recipientOfIdentity } from '../age/file'
import { checkRecipients, openAgeData, sealAgeText } from '../backends/age'
import type { KmsContext } from '../lib/settings'
import { decryptScalar, encryptScalar, isEncrypted, type SopsMap, type SopsScalar, type SopsValue, valueBytes } from './cipher'
import { detectFormat, emitTree, flattenMetadata, parseTree, type SopsFormat, unflattenMetadata } from './formats'

export const SOPS_VERSION = '3.9.4'
const MAC_ONLY_ENCRYPTED_INIT = Buffer.from([
  0x8a, 0x3f, 0xd2, 0xad, 0x54, 0xce, 0x66, 0x52, 0x7b, 0x10, 0x34, 0xf3, 0xd1, 0x47, 0xbe, 0x0b, 0x0b, 0x97, 0x5b, 0x3b, 0xf4, 0x4f, 0x72, 0xc6, 0xfd, 0xad,
  0xec, 0x81, 0x76, 0xf2, 0x7d, 0x69,
])

export interface SopsRules {
  unencrypted_suffix?: string
  encrypted_suffix?: string
  unencrypted_regex?: string
  encrypted_regex?: string
  mac_only_encrypted?: boolean
}

/** One age entry of a SOPS file's metadata: a recipient and the data key encrypted for it. */
export interface SopsAgeKey {
  recipient: string
  enc: string
}

export interface SopsMetadata extends SopsRules {
  age: SopsAgeKey[]
  lastmodified: string
  mac: string
  version: string
  /** Key sources prov-kms cannot use (kms, pgp, ...): kept so the file stays intact. */
  other: Array<[string, SopsValue]>
}

export interface SopsDocument {
  format: SopsFormat
  tree: SopsMap
  metadata?: SopsMetadata
}

const ruleKeys = ['unencrypted_suffix', 'encrypted_suffix', 'unencrypted_regex', 'encrypted_regex'] as const

function compileRules(rules: SopsRules) {
  const regex = (source: string | undefined, name: string) => {
    if (!source) return undefined
    try {
      return new RegExp(source)
    } catch (error) {
      throw usageError(`bad ${name} '${source}': ${(error as Error).message}`, { location: name })
    }
  }
  const encryptedRegex = regex(rules.encrypted_regex, 'encrypted_regex')
  const unencryptedRegex = regex(rules.unencrypted_regex, 'unencrypted_regex')
  return (path: string[]): boolean => {
    let encrypted = true
    if (rules.unencrypted_suffix && path.some((p) => p.endsWith(rules.unencrypted_suffix as string))) encrypted = false
    if (rules.encrypted_suffix) encrypted = path.some((p) => p.endsWith(rules.encrypted_suffix as string))
    if (unencryptedRegex && path.some((p) => unencryptedRegex.test(p))) encrypted = false
    if (encryptedRegex) encrypted = path.some((p) => encryptedRegex.test(p))
    return encrypted
  }
}

type Visit = (value: SopsScalar, path: string[]) => SopsScalar

function walk(value: SopsValue, path: string[], visit: Visit): SopsValue {
  if (value instanceof Map) {
    const out: SopsMap = new Map()
    for (const [k, v] of value) out.set(k, walk(v, [...path, k], visit))
    return out
  }
  if (Array.isArray(value)) return value.map((v) => walk(v, path, visit))
  if (value === null) return null
  return visit(value, path)
}

/** Encrypts every selected value; returns the encrypted tree and the MAC (hex) of the cleartext. */
export function encryptTree(tree: SopsMap, dataKey: Buffer, rules: SopsRules): { tree: SopsMap; mac: string } {
  const selected = compileRules(rules)
  const hash = createHash('sha512')
  if (rules.mac_only_encrypted) hash.update(MAC_ONLY_ENCRYPTED_INIT)
  const out = walk(tree, [], (value, path) => {
    const encrypt = selected(path)
    if (!rules.mac_only_encrypted || encrypt) hash.update(valueBytes(value))
    return encrypt ? encryptScalar(value, dataKey, `${path.join(':')}:`) : value
  }) as SopsMap
  return { tree: out, mac: hash.digest('hex').toUpperCase() }
}

/** Decrypts every selected value; returns the cleartext tree and the MAC computed over it. */
export function decryptTree(tree: SopsMap, dataKey: Buffer, rules: SopsRules): { tree: SopsMap; mac: string } {
  const selected = compileRules(rules)
  const hash = createHash('sha512')
  if (rules.mac_only_encrypted) hash.update(MAC_ONLY_ENCRYPTED_INIT)
  const out = walk(tree, [], (value, path) => {
    const encrypted = selected(path)
    let plain = value
    if (encrypted) {
      if (typeof value !== 'string')
        throw deniedError(`value at ${path.join('.')} should be encrypted but is plain`, { location: path.join('.'), hint: 'the file was edited without sops' })
      plain = decryptScalar(value, dataKey, `${path.join(':')}:`, path.join('.'))
    }
    if (!rules.mac_only_encrypted || encrypted) hash.update(valueBytes(plain))
    return plain
  }) as SopsMap
  return { tree: out, mac: hash.digest('hex').toUpperCase() }
}

/** RFC 3339 in UTC with whole seconds, as Go's time.RFC3339 prints it. */
export function rfc3339(date = new Date()): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z')
}

function normaliseLastModified(text: string): string {
  const date = new Date(text)
  if (Number.isNaN(date.getTime())) throw usageError(`bad sops.lastmodified '${text}'`)
  // sops re-formats the parsed time in its own zone: keep the text when it already is RFC 3339.
  return /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)$/.test(text) ? text : rfc3339(date)
}

function readMetadata(raw: SopsValue, source: string): SopsMetadata {
  if (!(raw instanceof Map)) throw usageError(`${source} has a malformed sops metadata block`, { location: `${source}: sops` })
  const str = (key: string) => {
    const v = raw.get(key)
    return v === undefined || v === null ? undefined : String(v)
  }
  const ageList = raw.get('age')
  const age: SopsAgeKey[] = []
  if (Array.isArray(ageList)) {
    for (const entry of ageList) {
      if (entry instanceof Map && typeof entry.get('recipient') === 'string' && typeof entry.get('enc') === 'string') {
        age.push({ recipient: entry.get('recipient') as string, enc: entry.get('enc') as string })
      }
    }
  }
  const lastmodified = str('lastmodified')
  const mac = str('mac')
  if (!lastmodified || mac === undefined) throw usageError(`${source} has no sops lastmodified/mac`, { location: `${source}: sops` })
  const known = new Set(['age', 'lastmodified', 'mac', 'version', 'mac_only_encrypted', ...ruleKeys])
  const other: Array<[string, SopsValue]> = [...raw].filter(([k, v]) => !known.has(k) && v !== null && !(Array.isArray(v) && !v.length))
  const macOnly = raw.get('mac_only_encrypted')
  const metadata: SopsMetadata = {
    age,
    lastmodified: normaliseLastModified(lastmodified),
    mac,
    version: str('version') ?? SOPS_VERSION,
    other,
    mac_only_encrypted: macOnly === true || macOnly === 'true',
  }
  for (const key of ruleKeys) {
    const value = str(key)
    if (value) metadata[key] = value
  }
  return metadata
}

function metadataTree(metadata: SopsMetadata): SopsMap {
  const out: SopsMap = new Map()
  for (const [k, v] of metadata.other) out.set(k, v)
  out.set(
    'age',
    metadata.age.map(
      (a) =>
        new Map<string, SopsValue>([
          ['recipient', a.recipient],
          ['enc', a.enc],
        ]),
    ),
  )
  out.set('lastmodified', metadata.lastmodified)
  out.set('mac', metadata.mac)
  for (const key of ruleKeys) if (metadata[key]) out.set(key, metadata[key] as string)
  if (metadata.mac_only_encrypted) out.set('mac_only_encrypted', true)
  out.set('version', metadata.version)
  return out
}

export async function readSopsDocument(text: string, format: SopsFormat, source: string): Promise<SopsDocument> {
  const tree = await parseTree(text, format, source)
  if (format === 'dotenv') {
    const meta: Array<[string, string]> = []
    for (const [k, v] of [...tree]) {
      if (k.startsWith('sops_')) {
        meta.push([k.slice(5), String(v)])
        tree.delete(k)
      }
    }
    return { format, tree, metadata: meta.length ? readMetadata(unflattenMetadata(meta, source), source) : undefined }
  }
  const raw = tree.get('sops')
  tree.delete('sops')
  return { format, tree, metadata: raw === undefined ? undefined : readMetadata(raw, source) }
}

export async function writeSopsDocument(doc: SopsDocument): Promise<string> {
  const out: SopsMap = new Map(doc.tree)
  if (doc.metadata) {
    if (doc.format === 'dotenv') {
      const flat: Array<[string, string]> = []
      flattenMetadata(metadataTree(doc.metadata), '', flat)
      for (const [k, v] of flat) out.set(`sops_${k}`, v)
    } else out.set('sops', metadataTree(doc.metadata))
  }
  return emitTree(out, doc.format)
}

/** Identities able to open SOPS files: prov's (current + retired), $SOPS_AGE_KEY(_FILE), sops' keys.txt. */
export function sopsIdentities(ctx: KmsContext): AgeIdentity[] {
  if (ctx.identityOnly) return readIdentityFile(ctx.identityPath)
  const identities: AgeIdentity[] = []
  let firstError: unknown
  try {
    identities.push(...readAllIdentities(ctx.workspace?.path, ctx.identityPath))
  } catch (error) {
    firstError = error
  }
  const extraFiles = [process.env.SOPS_AGE_KEY_FILE, join(process.env.XDG_CONFIG_HOME || join(process.env.HOME ?? '', '.config'), 'sops', 'age', 'keys.txt')]
  for (const file of extraFiles) {
    if (file && existsSync(file)) identities.push(...readIdentityFile(file))
  }
  for (const secret of (process.env.SOPS_AGE_KEY ?? '').split(/\s+/))
    if (secret.startsWith('AGE-SECRET-KEY-')) identities.push({ secret, path: '$SOPS_AGE_KEY' })
  if (!identities.length) throw firstError ?? deniedError('no age identity found', { hint: 'prov-kms keygen' })
  return identities
}

/** Unwraps the data key with the first identity that matches a recipient of the file. */
export async function unwrapDataKey(metadata: SopsMetadata, identities: AgeIdentity[], source: string): Promise<Buffer> {
  if (!metadata.age.length) throw deniedError(`${source} has no age recipients (only other key sources prov-kms cannot use)`, { location: source })
  const ours = new Map<string, AgeIdentity>()
  for (const identity of identities) ours.set(await recipientOfIdentity(identity.secret), identity)
  const matching = metadata.age.filter((a) => ours.has(a.recipient))
  // Recipients written as ssh or tag keys cannot be matched by name: then try every entry.
  const candidates = matching.length ? matching : metadata.age
  for (const entry of candidates) {
    const keys = matching.length ? [ours.get(entry.recipient) as AgeIdentity] : [...ours.values()]
    const enc = entry.enc.trim()
    try {
      const key = await openAgeData(enc.startsWith('-----BEGIN') ? Buffer.from(`${enc}\n`) : Buffer.from(enc, 'base64'), keys, source)
      if (key.length === 32) return key
    } catch {
      // try the next entry
    }
  }
  throw deniedError(`no matching recipient: ${source} is encrypted for ${metadata.age.map((a) => a.recipient).join(', ')}`, {
    location: source,
    hint: `your identities are ${[...ours.keys()].join(', ') || 'none'}; ask a recipient to run prov-kms sops rotate --add-age YOUR_RECIPIENT`,
  })
}

export async function wrapDataKey(dataKey: Buffer, recipients: string[]): Promise<SopsAgeKey[]> {
  const keys: SopsAgeKey[] = []
  for (const recipient of checkRecipients(recipients)) keys.push({ recipient, enc: await sealAgeText(dataKey, [recipient]) })
  return keys
}

/** Decrypts a document and verifies its MAC (exit 4 on mismatch). */
export async function openDocument(doc: SopsDocument, identities: AgeIdentity[], source: string): Promise<{ tree: SopsMap; dataKey: Buffer }> {
  const metadata = doc.metadata
  if (!metadata) throw usageError(`${source} is not encrypted (no sops metadata)`, { location: source, hint: 'prov-kms sops encrypt FILE' })
  const dataKey = await unwrapDataKey(metadata, identities, source)
  const { tree, mac } = decryptTree(doc.tree, dataKey, metadata)
  let stored: SopsScalar
  try {
    stored = decryptScalar(metadata.mac, dataKey, metadata.lastmodified, 'sops.mac')
  } catch {
    throw deniedError(`${source} failed its integrity check: the MAC cannot be decrypted (altered lastmodified or mac)`, { location: `${source}: sops.mac` })
  }
  if (String(stored) !== mac) {
    throw deniedError(`${source} failed its integrity check: MAC mismatch (a value was added, removed or changed)`, {
      location: `${source}: sops.mac`,
      hint: 'restore the file from version control',
    })
  }
  return { tree, dataKey }
}

/** Encrypts a cleartext tree into a document with fresh metadata (data key reused when given). */
export async function sealDocument(
  format: SopsFormat,
  plain: SopsMap,
  options: { recipients: string[]; rules: SopsRules; dataKey?: Buffer; ageKeys?: SopsAgeKey[]; other?: Array<[string, SopsValue]> },
): Promise<SopsDocument> {
  if (!options.recipients.length && !options.ageKeys?.length)
    throw usageError('no age recipients for the SOPS file', { hint: 'pass --age age1..., add a .sops.yaml creation rule, or run prov-kms keygen' })
  const dataKey = options.dataKey ?? randomBytes(32)
  const { tree, mac } = encryptTree(plain, dataKey, options.rules)
  const lastmodified = rfc3339()
  const metadata: SopsMetadata = {
    age: options.ageKeys ?? (await wrapDataKey(dataKey, options.recipients)),
    lastmodified,
    mac: encryptScalar(mac, dataKey, lastmodified),
    version: SOPS_VERSION,
    other: options.other ?? [],
    ...options.rules,
  }
  return { format, tree, metadata }
}

export interface CreationRule extends SopsRules {
  path_regex?: string
  age?: string[]
}

/** The first `.sops.yaml` creation rule (searching upward from the file) whose path_regex matches. */
export async function findCreationRule(file: string): Promise<{ rule: CreationRule; config: string } | undefined> {
  let dir = dirname(resolve(file))
  for (;;) {
    for (const name of ['.sops.yaml', '.sops.yml']) {
      const config = join(dir, name)
      if (existsSync(config)) return matchRule(config, resolve(file))
    }
    const parent = dirname(dir)
    if (parent === dir) return undefined
    dir = parent
  }
}

async function matchRule(config: string, file: string): Promise<{ rule: CreationRule; config: string } | undefined> {
  const { parse } = await import('yaml')
  let data: unknown
  if (statSync(config).size > MAX_CONFIG_FILE_BYTES) throw usageError(`${config} is larger than ${formatBytes(MAX_CONFIG_FILE_BYTES)}`, { location: config })
  const text = readFileSync(config, 'utf8')
  assertYamlDepth(text, config)
  try {
    data = parse(text, { maxAliasCount: 100, prettyErrors: false })
  } catch (error) {
    if (isStackOverflow(error)) throw tooDeepError(config)
    throw usageError(`${config} is not valid YAML: ${(error as Error).message.split('\n')[0]}`, { location: config })
  }
  assertSafeStructure(data, { source: config })
  const rules = (data as { creation_rules?: unknown })?.creation_rules
  if (!Array.isArray(rules)) return undefined
  const rel = relative(dirname(config), file)
  for (let i = 0; i < rules.length; i++) {
    const raw = rules[i] as Record<string, unknown>
    if (!raw || typeof raw !== 'object') throw usageError(`creation_rules[${i}] is not a mapping`, { location: config })
    if (raw.path_regex !== undefined) {
      let pattern: RegExp
      try {
        pattern = new RegExp(String(raw.path_regex))
      } catch (error) {
        throw usageError(`bad path_regex in creation_rules[${i}]: ${(error as Error).message}`, { location: config })
      }
      if (!pattern.test(rel) && !pattern.test(file)) continue
    }
    const ageValue = raw.age ?? (raw.key_groups as Array<{ age?: unknown }> | undefined)?.flatMap((g) => [g.age ?? []].flat())
    const age = [ageValue ?? []]
      .flat(2)
      .flatMap((v) => String(v).split(','))
      .map((s) => s.trim())
      .filter(Boolean)
    const rule: CreationRule = { path_regex: raw.path_regex as string | undefined, age }
    for (const key of ruleKeys) if (typeof raw[key] === 'string') rule[key] = raw[key] as string
    if (raw.mac_only_encrypted === true) rule.mac_only_encrypted = true
    return { rule, config }
  }
  return undefined
}

export { detectFormat, isEncrypted }

/** The value-selection rules recorded in a file's metadata. */
export function rulesOf(metadata: SopsMetadata): SopsRules {
  const rules: SopsRules = {}
  for (const key of ruleKeys) if (metadata[key]) rules[key] = metadata[key]
  if (metadata.mac_only_encrypted) rules.mac_only_encrypted = true
  return rules
}

const otherKeySources = new Set(['kms', 'gcp_kms', 'azure_kv', 'hc_vault', 'pgp', 'hckms', 'key_groups', 'shamir_threshold'])

/** Metadata to carry over when the data key changes: key sources prov-kms cannot re-wrap are dropped (their enc would be stale). */
export function otherMetadataForNewKey(metadata: SopsMetadata): { kept: Array<[string, SopsValue]>; dropped: string[] } {
  const kept = metadata.other.filter(([k]) => !otherKeySources.has(k))
  const dropped = metadata.other.filter(([k]) => otherKeySources.has(k)).map(([k]) => k)
  return { kept, dropped }
}
