/**
 * Finds plain-text secrets in a folder: secret-named fields with literal values in
 * YAML/JSON/TOML/dotenv files, private keys, and known token formats anywhere in text files.
 * Encrypted values (ENC[...], prov:..., vault:v1:), secret references, interpolations and
 * empty/placeholder values are not findings. Findings never carry the value.
 */
import { closeSync, type Dirent, openSync, readdirSync, readSync, statSync } from 'node:fs'
import { extname, join, relative } from 'node:path'

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

export function scanDir(root: string): Finding[] {
  const findings: Finding[] = []
  const walk = (dir: string) => {
    let entries: Dirent[]
    try {
      entries = readdirSync(dir, { withFileTypes: true })
    } catch {
      return
    }
    for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      const full = join(dir, entry.name)
      if (entry.isDirectory()) {
        if (!skipDirs.has(entry.name)) walk(full)
      } else if (entry.isFile() && !entry.name.endsWith('.age')) findings.push(...scanFile(full, root))
    }
  }
  if (statSync(root).isFile()) return scanFile(root, root)
  walk(root)
  return findings
}
