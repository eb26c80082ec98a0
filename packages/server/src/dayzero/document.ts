import { createHash } from 'node:crypto'
import { readFileSync, statSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { configError, formatOutput, notFoundError, resolveOutputFormat, type SecretResolver, usageError, writeStdout } from '@prov/core'
import { parse as parseYaml } from 'yaml'
import type { FieldPath } from '../desired'
import type { ServerSpec } from '../providers/types'
import { materializeProvision } from './materialize'
import { type DayZeroFormat, MAX_DOCUMENT_BYTES, provisionListKeys } from './provision'

/** A server's first-boot document, rendered. */
export interface DayZeroDocument {
  format: DayZeroFormat
  /** The document as the machine receives it (secret contents masked unless resolved). */
  text: string
  /** sha256 of the masked document: changes with everything but secret values. */
  fingerprint: string
  /** Where it came from: `provision` in servers.yaml or a Butane file. */
  source: string
}

/** Images that boot with Ignition instead of cloud-init (Fedora CoreOS, Flatcar, RHCOS). */
const ignitionImage = /(^|[^a-z])(fcos|fedora-coreos|coreos|flatcar|rhcos)([^a-z]|$)/i

/**
 * The format a provider hands to its machines: sandboxes run Ignition, cloud images read
 * cloud-init unless the image is one of the Ignition-booted distributions.
 */
export function nativeFormat(provider: string, image?: string | null): DayZeroFormat {
  if (provider === 'local') return 'ignition'
  return image && ignitionImage.test(image) ? 'ignition' : 'cloud-init'
}

/** Providers whose servers have a first boot (the ssh provider adopts machines that already run). */
export function hasFirstBoot(provider: string): boolean {
  return provider !== 'ssh'
}

export interface DayZeroOptions {
  workspacePath: string
  /** Requested format (`--format`); default: provision.format, then the provider's own. */
  format?: DayZeroFormat
  /** Resolves secret contents; without it they are masked. */
  secrets?: SecretResolver
  /** `file:line` of the server in servers.yaml. */
  at: string
  /** `file:line` of a field of the server (e.g. ['provision', 'files', { key: 'path', value: '/etc/motd' }]); default: `at`. */
  locate?: (path: FieldPath) => string
}

const sha256 = (text: string) => `sha256:${createHash('sha256').update(text).digest('hex')}`

/** The Butane file of a server, translated (its local: files are relative to the file's folder). */
async function butaneDocument(spec: ServerSpec, workspacePath: string, at: string): Promise<string> {
  const file = join(workspacePath, spec.butane as string)
  const shown = relative(workspacePath, file)
  if (shown.startsWith('..')) throw configError(`butane file '${spec.butane}' is outside the workspace`, { location: at })
  let size: number
  try {
    size = statSync(file).size
  } catch {
    throw notFoundError(`butane file '${spec.butane}' of server '${spec.name}' does not exist`, {
      location: at,
      hint: 'butane: is relative to the workspace root',
    })
  }
  if (size > MAX_DOCUMENT_BYTES) throw configError(`butane file '${spec.butane}' is larger than ${MAX_DOCUMENT_BYTES} bytes`, { location: at })
  const { translateButane } = await import('./butane')
  const result = translateButane(readFileSync(file, 'utf8'), { filesDir: dirname(file), source: shown })
  return `${JSON.stringify(result.config)}\n`
}

/**
 * Renders a server's day-zero document, or undefined when it declares none. Every check that can
 * fail (groups, owners, secrets, sources, formats) runs here, so a plan fails before any machine
 * boots with a broken document.
 */
export async function renderDayZero(spec: ServerSpec, options: DayZeroOptions): Promise<DayZeroDocument | undefined> {
  if (!spec.provision && !spec.butane) return undefined
  if (!hasFirstBoot(spec.provider)) {
    throw configError(`server '${spec.name}' uses the ${spec.provider} provider, which adopts running machines: there is no first boot for provision/butane`, {
      location: options.at,
      hint: 'remove provision:/butane: or use a provider that creates machines',
    })
  }
  if (spec.butane) {
    const format = options.format ?? 'ignition'
    if (format !== 'ignition') throw usageError(`server '${spec.name}' is described by a Butane file, which renders to Ignition only`, { location: options.at })
    const text = await butaneDocument(spec, options.workspacePath, options.at)
    return { format, text, fingerprint: sha256(text), source: spec.butane }
  }
  const provision = spec.provision as NonNullable<ServerSpec['provision']>
  if (!options.format && provision.format && spec.provider === 'local' && provision.format !== 'ignition') {
    // Sandboxes have no cloud-init datasource or systemd to run its stages: they apply Ignition.
    throw configError(`server '${spec.name}' is a local sandbox, which applies Ignition at first boot, not ${provision.format}`, {
      location: `${options.locate?.(['provision', 'format']) ?? options.at} (provision.format)`,
      hint: 'remove provision.format (or set it to ignition); prov-server userdata --format cloud-init still prints the cloud-init form',
    })
  }
  const format = options.format ?? provision.format ?? nativeFormat(spec.provider, spec.image)
  // Lists are merged with the defaults by key: an item is found in the file by its key, not its index.
  const fieldPath = (field: string): FieldPath => {
    const [list, index, ...rest] = field.split('.')
    const key = provisionListKeys[list as keyof typeof provisionListKeys]
    const item =
      key && /^\d+$/.test(index ?? '')
        ? (provision[list as keyof typeof provisionListKeys] as Record<string, unknown>[] | undefined)?.[Number(index)]
        : undefined
    return item ? ['provision', list, { key, value: item[key] }, ...rest] : ['provision', ...field.split('.')]
  }
  const location = (field: string) => `${options.locate?.(fieldPath(field)) ?? options.at} (provision.${field})`
  const render = async (secrets?: SecretResolver) => {
    const materialized = await materializeProvision(provision, { workspacePath: options.workspacePath, server: spec.name, secrets, location })
    if (format === 'ignition') {
      const { renderIgnition } = await import('./ignition')
      return `${JSON.stringify(renderIgnition(materialized))}\n`
    }
    const { renderCloudConfig } = await import('./cloud-config')
    return renderCloudConfig(materialized)
  }
  const masked = await render()
  const text = options.secrets ? await render(options.secrets) : masked
  return { format, text, fingerprint: sha256(masked), source: 'provision' }
}

/** What plans and server records keep of a day-zero document: never its contents. */
export interface DayZeroSummary {
  format: DayZeroFormat
  fingerprint: string
  source: string
}

export function summarizeDayZero(document: DayZeroDocument | undefined): DayZeroSummary | undefined {
  return document ? { format: document.format, fingerprint: document.fingerprint, source: document.source } : undefined
}

/**
 * Prints a first-boot document. Without `--out` it is the document as the machine reads it
 * (Ignition JSON, or `#cloud-config` YAML); an explicit `--out json|ndjson|yaml` gives the same data
 * in that form (a cloud-config is YAML already, so `yaml` keeps it as it is, header included).
 * A document has no table view.
 */
export function writeDayZeroDocument(text: string, format: DayZeroFormat, requested: string | undefined, pretty = false): void {
  if (requested === undefined) {
    writeStdout(format === 'ignition' && pretty ? `${JSON.stringify(JSON.parse(text), null, 2)}\n` : text)
    return
  }
  const out = resolveOutputFormat(requested)
  if (out === 'table' || out === 'wide')
    throw usageError(`a first-boot document has no ${out} view`, {
      location: '--out',
      hint: 'use --out json or --out yaml, or no --out for the document itself',
    })
  if (format === 'cloud-init' && out === 'yaml') {
    writeStdout(text)
    return
  }
  const data: unknown = format === 'ignition' ? JSON.parse(text) : parseYaml(text, { version: '1.1' })
  writeStdout(formatOutput(data, out))
}
