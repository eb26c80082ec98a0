import { resolve } from 'node:path'
import { usageError } from '@prov/core'

/** Where an artifact lives: a remote registry repository, or an on-disk OCI image layout. */
export type Reference =
  | { type: 'registry'; registry: string; repository: string; tag?: string; digest?: string }
  | { type: 'layout'; path: string; tag?: string; digest?: string }

const digestPattern = /^sha256:[a-f0-9]{64}$/
const tagPattern = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/
const componentPattern = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/
const hostPattern = /^(?:\[[0-9a-fA-F:]+\]|[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*)(?::[0-9]{1,5})?$/

export interface ParseOptions {
  /** host[:port] used when the reference has no registry part. */
  defaultRegistry?: string
  /** Namespace prepended to a bare name (e.g. `redis:1.0.0` -> `<ns>/redis`). */
  defaultNamespace?: string
  /** A repository without tag or digest is allowed (tags, catalog). */
  allowBare?: boolean
}

function bad(input: string, why: string): never {
  throw usageError(`invalid reference '${input}': ${why}`, {
    hint: 'use host[:port]/namespace/name:tag, ...@sha256:<64 hex>, oci://..., or layout:PATH:tag',
  })
}

export function isDigest(value: string): boolean {
  return digestPattern.test(value)
}

/** A repository name as the distribution spec allows it: path components of lower-case letters, digits and separators. */
export function isRepositoryName(value: string): boolean {
  return value.length <= 255 && value.split('/').every((component) => componentPattern.test(component))
}

/** A tag as the distribution spec allows it; in a layout also never `..` (tags are no paths, and stay so). */
export function isTag(value: string): boolean {
  return tagPattern.test(value) && !value.includes('..')
}

/**
 * Parses `host[:port]/ns/name:tag`, `...@sha256:<hex>`, with an optional `oci://` prefix,
 * or `layout:PATH[:tag|@digest]` for an on-disk OCI image layout.
 */
export function parseReference(input: string, options: ParseOptions = {}): Reference {
  if (!input || /\s/.test(input)) bad(input, 'empty or contains spaces')
  if (input.startsWith('layout:')) return parseLayout(input)
  let rest = input.startsWith('oci://') ? input.slice(6) : input
  if (/^[a-z]+:\/\//.test(rest)) bad(input, 'only the oci:// scheme is accepted')
  let digest: string | undefined
  const at = rest.indexOf('@')
  if (at >= 0) {
    digest = rest.slice(at + 1)
    rest = rest.slice(0, at)
    if (!digestPattern.test(digest)) bad(input, 'a digest is sha256: followed by 64 lower-case hex digits')
  }
  let tag: string | undefined
  const slash = rest.lastIndexOf('/')
  const colon = rest.lastIndexOf(':')
  if (colon > slash) {
    tag = rest.slice(colon + 1)
    rest = rest.slice(0, colon)
    if (!tagPattern.test(tag)) bad(input, `tag '${tag}' is not valid (letters, digits, . _ -, at most 128)`)
  }
  const parts = rest.split('/')
  let registry: string
  let repoParts: string[]
  const first = parts[0] ?? ''
  if (parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost' || first.startsWith('['))) {
    registry = first
    repoParts = parts.slice(1)
  } else {
    if (!options.defaultRegistry) bad(input, 'no registry host (and no default registry configured)')
    registry = options.defaultRegistry
    repoParts = parts.length === 1 && options.defaultNamespace ? [...options.defaultNamespace.split('/'), ...parts] : parts
  }
  if (!hostPattern.test(registry)) bad(input, `registry '${registry}' is not host[:port]`)
  const port = registry.match(/:(\d+)$/)?.[1]
  if (port && (Number(port) < 1 || Number(port) > 65535)) bad(input, `port ${port} out of range`)
  if (repoParts.length === 0 || repoParts.some((p) => !componentPattern.test(p))) {
    bad(input, 'repository path components are lower-case letters, digits and separators (. _ __ -)')
  }
  const repository = repoParts.join('/')
  if (repository.length > 255) bad(input, 'repository name longer than 255 characters')
  if (!tag && !digest && !options.allowBare) bad(input, 'missing :tag or @sha256:digest')
  return { type: 'registry', registry, repository, tag, digest }
}

function parseLayout(input: string): Reference {
  let rest = input.slice('layout:'.length)
  let digest: string | undefined
  let tag: string | undefined
  const at = rest.lastIndexOf('@')
  if (at >= 0 && rest.slice(at + 1).startsWith('sha256:')) {
    digest = rest.slice(at + 1)
    rest = rest.slice(0, at)
    if (!digestPattern.test(digest)) bad(input, 'a digest is sha256: followed by 64 lower-case hex digits')
  } else {
    // Everything after the last ':' is the tag, so a path cannot smuggle `:../x` in as a folder.
    const colon = rest.lastIndexOf(':')
    if (colon >= 0) {
      tag = rest.slice(colon + 1)
      rest = rest.slice(0, colon)
      if (tag.includes('/') || tag.includes('..')) bad(input, `layout tag '${tag}' contains '/' or '..' (a layout path may not contain ':')`)
      if (!isTag(tag)) bad(input, `tag '${tag}' is not valid (letters, digits, . _ -, at most 128)`)
    }
  }
  if (!rest) bad(input, 'layout: needs a path')
  return { type: 'layout', path: resolve(rest), tag, digest }
}

/** The reference as a string that parses back to the same value. */
export function formatReference(ref: Reference): string {
  const suffix = `${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`
  return ref.type === 'layout' ? `layout:${ref.path}${suffix}` : `${ref.registry}/${ref.repository}${suffix}`
}

/** Loopback registries may speak plain HTTP without --plain-http. */
export function isLoopbackHost(registry: string): boolean {
  const host = registry.replace(/:\d+$/, '').replace(/^\[|\]$/g, '')
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)
}
