/**
 * Finds plain-text secrets in a folder: secret-named fields with literal values in
 * YAML/JSON/TOML/dotenv files, private keys, and known token formats anywhere in text files.
 * Encrypted values (ENC[...], prov:..., vault:v1:), secret references, interpolations and
 * empty/placeholder values are not findings. Findings never carry the value.
 */
import { closeSync, type Dirent, lstatSync, openSync, readdirSync, readSync, statSync } from 'node:fs'
import { basename, extname, join, relative, resolve } from 'node:path'
import { isInside } from '@prov/core'

export interface Finding {
  schema: 'prov.kms.finding/v1'
  file: string
  line: number
  kind: string
  field?: string
}

const skipDirs = new Set(['.git', 'node_modules', '.prov', 'dist', '.cache', '.venv', '__pycache__'])
const structured = new Set(['.yaml', '.yml', '.json', '.toml', '.env', '.ini', '.conf', '.properties', '.tfvars'])
const maxFileSize = 2 * 1024 * 1024

const tokenPatterns: Array<[string, RegExp]> = [
  ['private-key', /-----BEGIN ((RSA|EC|DSA|OPENSSH|ENCRYPTED|PGP) )?PRIVATE KEY( BLOCK)?-----/],
  ['age-identity', /AGE-SECRET-KEY-1[0-9A-Z]{50,}/],
  ['aws-access-key-id', /\b(AKIA|ASIA)[0-9A-Z]{16}\b/],
  ['github-token', /\b(gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{60,})\b/],
  ['gitlab-token', /\bglpat-[A-Za-z0-9_-]{20,}\b/],
  ['slack-token', /\bxox[abpr]-[A-Za-z0-9-]{10,}\b/],
  ['vault-token', /\bhvs\.[A-Za-z0-9_-]{20,}\b/],
  ['stripe-key', /\b[sr]k_live_[A-Za-z0-9]{20,}\b/],
  ['google-api-key', /\bAIza[0-9A-Za-z_-]{35}\b/],
  ['jwt', /\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\b/],
  ['url-credentials', /\b[a-z][a-z0-9+.-]*:\/\/[^:/\s@]+:[^@\s/]{3,}@[^\s]+/i],
]

const fieldPattern =
  /^\s*(?:export\s+)?["']?([A-Za-z0-9_.-]*?(?:pass(?:word|wd|phrase)?|secret|token|api[_-]?key|apikey|private[_-]?key|access[_-]?key|secret[_-]?key|client[_-]?secret|credentials?|auth[_-]?key|(?:^|[_.-])key))["']?\s*[:=]\s*(.*?)\s*,?\s*$/i
const harmlessField =
  /^(key_id|keyid|public_key|publickey|key_path|keyfile|key_file|.*_ref|.*_env|.*_file|.*_path|token_url|.*_id|ssh_key_name|key_name|.*_(size|length|type|algorithm|bits)|recipient|recipients)$/i

function isLiteralSecret(raw: string): boolean {
  let value = raw.replace(/\s+#.*$/, '').trim()
  if (value.endsWith(',')) value = value.slice(0, -1).trim()
  if (!value || value === '|' || value === '>' || value === '|-' || value === '>-') return false
  if (/^(["'])(.*)\1$/.test(value)) value = value.slice(1, -1)
  if (!value || value.length < 4) return false
  if (/^(null|~|none|true|false|changeme|change-me|xxx+|\*+|<.*>|todo|redacted|\[redacted\])$/i.test(value)) return false
  if (/^-?\d+(\.\d+)?$/.test(value)) return false
  if (/^(ENC\[AES256_GCM,|prov:[a-z0-9]+:|vault:v\d+:|age1[0-9a-z]{50,}$|-----BEGIN AGE ENCRYPTED FILE)/.test(value)) return false
  if (/^\{\s*"?secret"?\s*:/.test(value) || /^\{\{.*\}\}$/.test(value) || /^\$\{?[A-Za-z_][A-Za-z0-9_]*\}?$/.test(value) || /^\$\(.+\)$/.test(value))
    return false
  if (/^[{[]/.test(value)) return false
  return true
}

function readText(file: string): string | undefined {
  const size = statSync(file).size
  if (size > maxFileSize || size === 0) return undefined
  const fd = openSync(file, 'r')
  try {
    const buffer = Buffer.alloc(size)
    readSync(fd, buffer, 0, size, 0)
    if (buffer.subarray(0, Math.min(size, 8000)).includes(0)) return undefined
    return buffer.toString('utf8')
  } finally {
    closeSync(fd)
  }
}

export function scanFile(file: string, root: string): Finding[] {
  const text = readText(file)
  if (text === undefined) return []
  const findings: Finding[] = []
  const rel = relative(root, file) || file
  const name = file.split('/').pop() ?? ''
  const isStructured = structured.has(extname(file).toLowerCase()) || name === '.env' || name.startsWith('.env.')
  const lines = text.split('\n')
  let inSopsBlock = false
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]
    if (/^sops:\s*$/.test(line) || /^\s*"sops"\s*:\s*\{/.test(line)) inSopsBlock = true
    else if (inSopsBlock && /^\S/.test(line) && !/^\s*\}/.test(line)) inSopsBlock = false
    if (inSopsBlock || /^sops_/.test(line)) continue
    let matchedToken = false
    for (const [kind, pattern] of tokenPatterns) {
      if (pattern.test(line)) {
        findings.push({ schema: 'prov.kms.finding/v1', file: rel, line: i + 1, kind })
        matchedToken = true
        break
      }
    }
    if (matchedToken || !isStructured || /^\s*[#;]/.test(line)) continue
    const match = fieldPattern.exec(line)
    // `"secret": "db/password"` on its own line is the inside of a secret reference.
    const isReference = match && /^secret$/i.test(match[1]) && /^["']?[\w.-]+(\/[\w.-]+)+["']?,?$/.test(match[2])
    if (match && !isReference && !harmlessField.test(match[1]) && isLiteralSecret(match[2])) {
      findings.push({ schema: 'prov.kms.finding/v1', file: rel, line: i + 1, kind: 'secret-field', field: match[1] })
    }
  }
  return findings
}

const headSize = 4096

function readHead(file: string): Buffer {
  const fd = openSync(file, 'r')
  try {
    const buffer = Buffer.alloc(headSize)
    return buffer.subarray(0, readSync(fd, buffer, 0, headSize, 0))
  } finally {
    closeSync(fd)
  }
}

/**
 * The start of a ciphertext. A binary age file counts only when a recipient stanza (`-> `) follows
 * its version line: the version line followed by plain text is plain text.
 */
const encryptedHead = /^\s*(-----BEGIN AGE ENCRYPTED FILE-----|age-encryption\.org\/v1\n-> |prov:[a-z0-9]+:[a-z0-9]+[:\n]|vault:v\d+:)/
/** A SOPS file: its metadata holds an encrypted MAC (YAML, JSON, dotenv, INI). */
const sopsMac = /(^|\n)\s*("?mac"?\s*[:=]\s*"?|sops_mac=)ENC\[AES256_GCM,/

/** Files a secrets folder may hold in clear: notes and VCS markers, never values. */
const harmlessInSecrets = /^(readme(\.(md|txt|rst))?|\.gitignore|\.gitkeep|\.keep|\.sops\.ya?ml)$/i

/** Whether a file is encrypted as a whole: an age file, a prov or Vault ciphertext, or a SOPS file. */
function isEncryptedFile(file: string, size: number): boolean {
  const head = readHead(file)
  if (encryptedHead.test(head.toString('latin1'))) return true
  const text = size <= maxFileSize ? readText(file) : undefined
  return text !== undefined && sopsMac.test(text)
}

/**
 * Files in a secrets folder must be encrypted (age, prov, Vault or SOPS): anything else there is
 * a plain-text secret, whatever it looks like. Symbolic links are reported too: the store never
 * writes through them, and they may point at a plain file outside.
 */
function scanSecretsEntry(full: string, name: string, root: string): Finding[] {
  const rel = relative(root, full) || full
  const stat = lstatSync(full)
  if (stat.isSymbolicLink()) return [{ schema: 'prov.kms.finding/v1', file: rel, line: 1, kind: 'symlink-in-secrets' }]
  if (!stat.isFile() || stat.size === 0 || harmlessInSecrets.test(name)) return []
  if (isEncryptedFile(full, stat.size)) return scanFile(full, root)
  return [{ schema: 'prov.kms.finding/v1', file: rel, line: 1, kind: 'plaintext-file' }]
}

export interface ScanOptions {
  /** Folders whose files must all be encrypted (the workspace's `secrets/`); any folder named `secrets` counts too. */
  secretsDirs?: string[]
}

export function scanDir(root: string, options: ScanOptions = {}): Finding[] {
  const secretsDirs = new Set((options.secretsDirs ?? []).map((dir) => resolve(dir)))
  const isSecretsDir = (dir: string) => secretsDirs.has(resolve(dir)) || basename(dir) === 'secrets'
  const findings: Finding[] = []
  const walk = (dir: string, inSecrets: boolean) => {
    let entries: Dirent[]
    try {
      entries = readdirSync(dir, { withFileTypes: true })
    } catch {
      return
    }
    for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      const full = join(dir, entry.name)
      if (entry.isDirectory()) {
        if (!skipDirs.has(entry.name)) walk(full, inSecrets || isSecretsDir(full))
      } else if (inSecrets) findings.push(...scanSecretsEntry(full, entry.name, root))
      else if (entry.isSymbolicLink() && isSecretsDir(full))
        findings.push({ schema: 'prov.kms.finding/v1', file: relative(root, full), line: 1, kind: 'symlink-in-secrets' })
      else if (entry.isFile() && !(entry.name.endsWith('.age') && encryptedHead.test(readHead(full).toString('latin1')))) findings.push(...scanFile(full, root))
    }
  }
  if (statSync(root).isFile()) return scanFile(root, root)
  walk(root, [...secretsDirs].some((dir) => isInside(dir, resolve(root))) || isSecretsDir(root))
  return findings
}
