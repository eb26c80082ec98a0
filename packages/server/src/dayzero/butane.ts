import { readFileSync, realpathSync, statSync } from 'node:fs'
import { isAbsolute, join, resolve, sep } from 'node:path'
import { assertSafeStructure, assertYamlDepth, usageError } from '@prov/core'
import { isMap, isScalar, isSeq, LineCounter, type Node, parseDocument, type ScalarTag } from 'yaml'
import { dataUrl, plainDataUrl } from './dataurl'
import { isCleanAbsolutePath, MAX_DOCUMENT_BYTES, MAX_FILE_BYTES } from './provision'

/**
 * Butane (the YAML front end of Ignition) translated to Ignition JSON the way coreos/butane does
 * for the fields a provisioning tool hands to a new machine: files (inline, local, source,
 * compression, append, mode, owner), directories, links, systemd units and drop-ins, users and
 * groups, and the `ignition` section. Disk layout (disks, partitions, raid, filesystems, luks,
 * trees, boot_device, grub, kernel_arguments) is refused by name rather than dropped.
 */

/** Variant and version -> the base spec (a Butane `base/v0_N`) and the Ignition version it emits. */
const variants: Record<string, Record<string, { base: number; ignition: string }>> = {
  fcos: {
    '1.0.0': { base: 1, ignition: '3.0.0' },
    '1.1.0': { base: 2, ignition: '3.1.0' },
    '1.2.0': { base: 3, ignition: '3.2.0' },
    '1.3.0': { base: 3, ignition: '3.2.0' },
    '1.4.0': { base: 4, ignition: '3.3.0' },
    '1.5.0': { base: 5, ignition: '3.4.0' },
  },
  flatcar: {
    '1.0.0': { base: 4, ignition: '3.3.0' },
    '1.1.0': { base: 5, ignition: '3.4.0' },
  },
}

type Shape = 'string' | 'int' | 'bool' | 'mode' | 'dirmode' | { list: Shape } | { object: Record<string, Shape> } | 'resource' | { refuse: string }

const diskLayout = 'disk layout is not translated by prov-server butane (prov provisions machines whose disks the provider lays out)'

function shapes(base: number) {
  const node = { user: { object: { id: 'int', name: 'string' } }, group: { object: { id: 'int', name: 'string' } } } as const
  const file: Record<string, Shape> = {
    path: 'string',
    overwrite: 'bool',
    mode: 'mode',
    contents: 'resource',
    append: { list: 'resource' },
    ...node,
  }
  const unitFields: Record<string, Shape> = { name: 'string', contents: 'string' }
  if (base >= 5) unitFields.contents_local = 'string'
  const user: Record<string, Shape> = {
    name: 'string',
    password_hash: 'string',
    ssh_authorized_keys: { list: 'string' },
    uid: 'int',
    gecos: 'string',
    home_dir: 'string',
    no_create_home: 'bool',
    primary_group: 'string',
    groups: { list: 'string' },
    no_user_group: 'bool',
    no_log_init: 'bool',
    shell: 'string',
    system: 'bool',
  }
  const group: Record<string, Shape> = { name: 'string', gid: 'int', password_hash: 'string', system: 'bool' }
  if (base >= 3) {
    user.should_exist = 'bool'
    group.should_exist = 'bool'
  }
  if (base >= 5) user.ssh_authorized_keys_local = { list: 'string' }
  const ignition: Record<string, Shape> = {
    config: { object: { merge: { list: 'resource' }, replace: 'resource' } },
    timeouts: { object: { http_response_headers: 'int', http_total: 'int' } },
    security: { object: { tls: { object: { certificate_authorities: { list: 'resource' } } } } },
  }
  if (base >= 2) ignition.proxy = { object: { http_proxy: 'string', https_proxy: 'string', no_proxy: { list: 'string' } } }
  const storage: Record<string, Shape> = {
    files: { list: { object: file } },
    directories: { list: { object: { path: 'string', overwrite: 'bool', mode: 'dirmode', ...node } } },
    links: { list: { object: { path: 'string', overwrite: 'bool', target: 'string', hard: 'bool', ...node } } },
    disks: { refuse: diskLayout },
    raid: { refuse: diskLayout },
    filesystems: { refuse: diskLayout },
  }
  if (base >= 2) storage.trees = { refuse: 'storage.trees is not translated by prov-server butane; list the files under storage.files with local:' }
  if (base >= 3) storage.luks = { refuse: diskLayout }
  const top: Record<string, Shape> = {
    version: 'string',
    variant: 'string',
    ignition: { object: ignition },
    passwd: { object: { users: { list: { object: user } }, groups: { list: { object: group } } } },
    storage: { object: storage },
    systemd: {
      object: {
        units: {
          list: {
            object: {
              ...unitFields,
              enabled: 'bool',
              mask: 'bool',
              dropins: { list: { object: unitFields } },
            },
          },
        },
      },
    },
  }
  if (base >= 4) top.kernel_arguments = { refuse: 'kernel_arguments are not translated by prov-server butane' }
  return top
}

/** Variant-specific top-level sections (Fedora CoreOS boot disk and GRUB). */
const variantOnly: Record<string, Shape> = {
  boot_device: { refuse: diskLayout },
  grub: { refuse: 'grub is not translated by prov-server butane' },
}

const resourceShape = (base: number): Record<string, Shape> =>
  base >= 2
    ? {
        source: 'string',
        inline: 'string',
        local: 'string',
        compression: 'string',
        http_headers: { list: { object: { name: 'string', value: 'string' } } },
        verification: { object: { hash: 'string' } },
      }
    : { source: 'string', inline: 'string', compression: 'string', verification: { object: { hash: 'string' } } }

export interface ButaneOptions {
  /** Directory that `local:` and `*_local:` paths are relative to (Butane's -d/--files-dir). */
  filesDir?: string
  /** Warnings become errors. */
  strict?: boolean
  /** Name of the input in messages. */
  source?: string
}

export interface ButaneResult {
  /** The Ignition config. */
  config: Record<string, unknown>
  /** The Ignition spec version it is written in. */
  ignitionVersion: string
  warnings: string[]
}

const camel = (key: string) => key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase())

/** YAML ints the way Butane's parser reads them: a leading 0 means octal (0644), 0o and 0x too. */
const legacyOctal: ScalarTag = {
  identify: (value) => typeof value === 'number',
  default: true,
  tag: 'tag:yaml.org,2002:int',
  test: /^0[0-7]+$/,
  resolve: (text) => Number.parseInt(text, 8),
}

/** Whether a mode written in decimal would be a typical mode if it had been written in octal. */
function looksDecimal(mode: number, directory: boolean): boolean {
  if (mode < 0 || mode > 7777) return false
  const digits = String(mode).padStart(4, '0')
  if (/[89]/.test(digits)) return false
  const octal = Number.parseInt(digits, 8)
  return !typicalMode(mode, directory) && typicalMode(octal, directory)
}

function typicalMode(mode: number, directory: boolean): boolean {
  if (mode === 0) return true
  const perms = [mode & 0o7, (mode & 0o70) >> 3, (mode & 0o700) >> 6]
  let hadR = false
  let hadW = false
  let hadX = false
  for (const perm of perms) {
    const r = (perm & 4) !== 0
    const w = (perm & 2) !== 0
    const x = (perm & 1) !== 0
    if ((!r && hadR) || (!w && hadW) || (!x && hadX)) return false
    if (x && hadR && !hadX) return false
    if ((w || x) && !r) return false
    hadR ||= r
    hadW ||= w
    hadX ||= x
  }
  if (!hadR) return false
  if (directory) {
    if (!hadX) return false
    if (mode & 0o4000) return false
    if (mode & 0o3000 && !hadW) return false
  } else {
    if (mode & 0o6000 && (!hadX || mode & 2)) return false
    if (mode & 0o1000) return false
  }
  return true
}

class Translation {
  readonly warnings: string[] = []
  private total = 0
  constructor(
    private readonly base: number,
    private readonly options: ButaneOptions,
    private readonly lineOf: (path: (string | number)[]) => string,
  ) {}

  fail(path: (string | number)[], message: string, hint?: string): never {
    throw usageError(`${message} at ${pathText(path)}`, { location: this.lineOf(path), hint })
  }

  warn(path: (string | number)[], message: string): void {
    if (this.options.strict) this.fail(path, message, 'without --strict this is a warning')
    this.warnings.push(`${pathText(path)}: ${message}`)
  }

  value(shape: Shape, input: unknown, path: (string | number)[]): unknown {
    if (input === null || input === undefined) return undefined
    if (typeof shape === 'object' && 'refuse' in shape) this.fail(path, `unsupported field '${path.at(-1)}'`, shape.refuse)
    if (shape === 'resource') return this.resource(input, path)
    if (shape === 'string') {
      if (typeof input !== 'string') this.fail(path, `expected a string, got ${kind(input)}`)
      return input
    }
    if (shape === 'bool') {
      if (typeof input !== 'boolean') this.fail(path, `expected true or false, got ${kind(input)}`)
      return input
    }
    if (shape === 'int' || shape === 'mode' || shape === 'dirmode') {
      if (typeof input !== 'number' || !Number.isInteger(input)) this.fail(path, `expected an integer, got ${kind(input)}`)
      if (shape !== 'int' && looksDecimal(input, shape === 'dirmode')) {
        this.warn(path, 'unreasonable mode would be reasonable if specified in octal; remember to add a leading zero')
      }
      return input
    }
    if ('list' in shape) {
      if (!Array.isArray(input)) this.fail(path, `expected a list, got ${kind(input)}`)
      return input.map((item, index) => this.value(shape.list, item, [...path, index]))
    }
    return this.object(shape.object, input, path)
  }

  object(fields: Record<string, Shape>, input: unknown, path: (string | number)[]): Record<string, unknown> {
    if (!input || typeof input !== 'object' || Array.isArray(input)) this.fail(path, `expected a mapping, got ${kind(input)}`)
    const out: Record<string, unknown> = {}
    for (const [key, value] of Object.entries(input as Record<string, unknown>)) {
      const shape = fields[key]
      if (!shape) this.fail([...path, key], `unknown key '${key}'`, `known keys here: ${Object.keys(fields).join(', ')}`)
      if (key === 'contents_local' || key === 'ssh_authorized_keys_local') continue
      const translated = this.value(shape, value, [...path, key])
      if (translated !== undefined) out[camel(key)] = translated
    }
    const record = input as Record<string, unknown>
    if (record.contents_local !== undefined && record.contents_local !== null) {
      if (record.contents !== undefined && record.contents !== null)
        this.fail([...path, 'contents_local'], 'only one of the following can be set: contents, contents_local')
      out.contents = this.readLocal(this.value('string', record.contents_local, [...path, 'contents_local']) as string, [...path, 'contents_local']).toString(
        'utf8',
      )
    }
    if (Array.isArray(record.ssh_authorized_keys_local)) {
      const keys = (out.sshAuthorizedKeys as string[] | undefined) ?? []
      record.ssh_authorized_keys_local.forEach((file, index) => {
        const at = [...path, 'ssh_authorized_keys_local', index]
        for (const line of this.readLocal(this.value('string', file, at) as string, at)
          .toString('utf8')
          .split(/\r?\n/))
          if (line) keys.push(line)
      })
      out.sshAuthorizedKeys = keys
    }
    return out
  }

  resource(input: unknown, path: (string | number)[]): Record<string, unknown> {
    const fields = resourceShape(this.base)
    const given = ['inline', 'local', 'source'].filter((k) => (input as Record<string, unknown> | null)?.[k] != null)
    if (given.length > 1) this.fail([...path, given[1]], 'only one of the following can be set: inline, local, source')
    const out = this.object(fields, input, path)
    const declared = out.compression as string | undefined
    let bytes: Buffer | undefined
    if (typeof out.inline === 'string') bytes = Buffer.from(out.inline, 'utf8')
    if (typeof out.local === 'string') bytes = this.readLocal(out.local, [...path, 'local'])
    delete out.inline
    delete out.local
    if (bytes) {
      if (bytes.length > MAX_FILE_BYTES) this.fail(path, `contents of ${bytes.length} bytes exceed the ${MAX_FILE_BYTES}-byte limit of one file`)
      this.total += bytes.length
      if (this.total > MAX_DOCUMENT_BYTES) this.fail(path, `the config holds more than ${MAX_DOCUMENT_BYTES} bytes of file contents`)
      if (this.base === 1) out.source = plainDataUrl(bytes)
      else {
        const url = dataUrl(bytes, declared)
        out.source = url.source
        if (url.compression !== undefined) out.compression = url.compression
      }
    }
    return out
  }

  readLocal(file: string, path: (string | number)[]): Buffer {
    const dir = this.options.filesDir
    if (!dir) this.fail(path, 'local file paths are relative to a files directory that must be specified with --files-dir')
    if (!file) this.fail(path, 'a local file path is empty: name a file under --files-dir')
    if (file.includes('\0')) this.fail(path, 'a local file path contains a NUL byte')
    if (isAbsolute(file)) this.fail(path, 'local file paths are relative to --files-dir, not absolute')
    const root = realpathSync(resolve(dir))
    const target = resolve(root, file)
    if (target !== root && !target.startsWith(root + sep)) this.fail(path, 'local file path traverses outside the files directory')
    let real: string
    try {
      real = realpathSync(target)
    } catch {
      this.fail(path, `no such file in --files-dir: ${file}`)
    }
    if (!real.startsWith(root + sep)) this.fail(path, 'local file path traverses outside the files directory (through a link)')
    // A workspace's own state (.prov/: the KMS identity, the secret store) and .git/ never go to a
    // machine, whichever folder the files directory is.
    const hidden = real
      .slice(root.length + 1)
      .split(sep)
      .find((part) => part === '.prov' || part === '.git')
    if (hidden)
      this.fail(path, `local file ${file} is in a ${hidden}/ folder, which never goes to a machine`, 'put files for machines in a folder of their own')
    const stat = statSync(real)
    if (!stat.isFile()) this.fail(path, `not a regular file: ${file}`)
    if (stat.size > MAX_FILE_BYTES) this.fail(path, `${file} is ${stat.size} bytes, more than the ${MAX_FILE_BYTES}-byte limit of one file`)
    return readFileSync(real)
  }
}

function kind(value: unknown): string {
  if (Array.isArray(value)) return 'a list'
  if (value === null) return 'null'
  return typeof value === 'object' ? 'a mapping' : `${typeof value} ${JSON.stringify(value)}`
}

function pathText(path: (string | number)[]): string {
  return `$${path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${p}`)).join('')}`
}

/** Parses Butane YAML (with line numbers for messages) and translates it to Ignition. */
export function translateButane(text: string, options: ButaneOptions = {}): ButaneResult {
  const source = options.source ?? 'stdin'
  assertYamlDepth(text, source)
  const counter = new LineCounter()
  const doc = parseDocument(text, {
    lineCounter: counter,
    uniqueKeys: true,
    prettyErrors: false,
    customTags: (tags) => [legacyOctal, ...(tags as ScalarTag[])],
  })
  if (doc.errors[0]) {
    const error = doc.errors[0]
    throw usageError(`malformed YAML: ${error.message.split('\n')[0]}`, { location: `${source}:${error.linePos?.[0]?.line ?? 1}` })
  }
  let data: unknown
  try {
    data = doc.toJS({ maxAliasCount: 100 })
  } catch (error) {
    // yaml refuses alias bombs ("Excessive alias count") while building the values.
    throw usageError(`malformed YAML: ${(error as Error).message}`, { location: source, hint: 'use fewer aliases (*name)' })
  }
  assertSafeStructure(data, { source })
  if (!data || typeof data !== 'object' || Array.isArray(data))
    throw usageError('a Butane config is a mapping with variant: and version:', { location: `${source}:1` })
  const lineOf = (path: (string | number)[]) => {
    let node: Node | null | undefined = doc.contents as Node
    let line = 1
    for (const key of path) {
      if (isMap(node)) {
        const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(key))
        if (!pair) break
        if ((pair.key as Node).range) line = counter.linePos((pair.key as Node).range?.[0] ?? 0).line
        node = pair.value as Node
      } else if (isSeq(node) && typeof key === 'number') {
        node = node.items[key] as Node
        if (node?.range) line = counter.linePos(node.range[0]).line
      } else break
    }
    return `${source}:${line}`
  }
  const record = data as Record<string, unknown>
  const variant = record.variant
  const version = record.version
  if (typeof variant !== 'string' || !variant)
    throw usageError('error parsing variant; must be specified', { location: lineOf(['variant']), hint: `variants: ${Object.keys(variants).join(', ')}` })
  if (typeof version !== 'string' || !/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/.test(version)) {
    throw usageError('error parsing version; must be a valid semver', { location: lineOf(['version']), hint: 'quote it like version: 1.5.0' })
  }
  const spec = variants[variant]?.[version]
  if (!spec) {
    const known = Object.entries(variants).map(([name, versions]) => `${name} ${Object.keys(versions).join(', ')}`)
    throw usageError(`Butane ${variant} ${version} is not supported`, { location: lineOf(['version']), hint: `supported: ${known.join('; ')}` })
  }
  const translation = new Translation(spec.base, options, lineOf)
  const fields = { ...shapes(spec.base), ...(variant === 'fcos' && spec.base >= 4 ? variantOnly : {}) }
  const translated = translation.object(fields, record, [])
  const { version: _version, variant: _variant, ignition, ...rest } = translated
  const config: Record<string, unknown> = { ignition: { ...((ignition as Record<string, unknown>) ?? {}), version: spec.ignition }, ...rest }
  checkPaths(config, translation)
  return { config, ignitionVersion: spec.ignition, warnings: translation.warnings }
}

const hashSizes: Record<string, number> = { sha256: 64, sha512: 128 }

/** Ignition's rule for `verification.hash`: `sha256-<64 hex>` or `sha512-<128 hex>`. */
function checkHash(resource: unknown, path: (string | number)[], translation: Translation): void {
  const hash = (resource as { verification?: { hash?: string } } | undefined)?.verification?.hash
  if (hash === undefined) return
  const [kind, sum] = hash.split('-', 2)
  if (!(kind in hashSizes)) translation.fail([...path, 'verification', 'hash'], 'unrecognized hash function', 'use sha256-<hex> or sha512-<hex>')
  if (!sum || sum.length !== hashSizes[kind] || !/^[0-9a-f]+$/i.test(sum)) translation.fail([...path, 'verification', 'hash'], 'incorrect size for hash sum')
}

/**
 * The rules Ignition itself enforces on what was translated (Butane validates its output with
 * Ignition): absolute and unique paths, names present, a node owner by id or by name, hash sums
 * of the right size, and the warning for a unit enabled without an [Install] section.
 */
function checkPaths(config: Record<string, unknown>, translation: Translation): void {
  const storage = (config.storage ?? {}) as Record<string, Record<string, unknown>[] | undefined>
  const seen = new Map<string, string>()
  for (const kind of ['files', 'directories', 'links'] as const) {
    ;(storage[kind] ?? []).forEach((node, index) => {
      for (const owner of ['user', 'group'] as const) {
        const value = node[owner] as { id?: number; name?: string } | undefined
        if (value?.id !== undefined && value.name !== undefined) translation.fail(['storage', kind, index, owner], 'cannot set both id and name')
      }
      if (kind === 'files') {
        checkHash(node.contents, ['storage', kind, index, 'contents'], translation)
        for (const [a, resource] of ((node.append ?? []) as unknown[]).entries()) checkHash(resource, ['storage', kind, index, 'append', a], translation)
      }
      const path = node.path
      if (typeof path !== 'string' || !path) translation.fail(['storage', kind, index, 'path'], 'path is required')
      if (!path.startsWith('/')) translation.fail(['storage', kind, index, 'path'], 'path not absolute')
      // Ignition's own rule: a path must be its simplest form (no /./, /../, // or trailing /).
      if (!isCleanAbsolutePath(path))
        translation.fail(['storage', kind, index, 'path'], 'path is not fully simplified', `write it like ${join('/', path).replace(/(.)\/+$/, '$1')}`)
      if (seen.has(path)) translation.fail(['storage', kind, index, 'path'], `duplicate path ${path} (also at ${seen.get(path)})`)
      seen.set(path, `storage.${kind}[${index}]`)
      if (kind === 'links' && typeof node.target !== 'string') translation.fail(['storage', kind, index, 'target'], 'a link needs a target')
      // No filesystem takes a NUL in a name or a name longer than 255 bytes; say so here, not on the machine.
      for (const [field, value] of [
        ['path', path],
        ['target', node.target],
      ] as const) {
        if (typeof value !== 'string') continue
        if (value.includes('\0')) translation.fail(['storage', kind, index, field], `${field} contains a NUL byte`)
        if (value.split('/').some((part) => Buffer.byteLength(part) > 255))
          translation.fail(['storage', kind, index, field], `${field} has a name longer than 255 bytes`)
      }
    })
  }
  const systemd = (config.systemd ?? {}) as { units?: Record<string, unknown>[] }
  ;(systemd.units ?? []).forEach((unit, index) => {
    if (typeof unit.name !== 'string' || !unit.name) translation.fail(['systemd', 'units', index, 'name'], 'a unit needs a name')
    if (unit.enabled === true && typeof unit.contents === 'string' && !/^\s*\[Install\]/m.test(unit.contents)) {
      translation.warn(['systemd', 'units', index, 'contents'], `unit "${unit.name}" is enabled, but has no install section so enable does nothing`)
    }
  })
  const passwd = (config.passwd ?? {}) as { users?: Record<string, unknown>[]; groups?: Record<string, unknown>[] }
  for (const kind of ['users', 'groups'] as const) {
    ;(passwd[kind] ?? []).forEach((entry, index) => {
      if (typeof entry.name !== 'string' || !entry.name) translation.fail(['passwd', kind, index, 'name'], 'a name is required')
    })
  }
}
