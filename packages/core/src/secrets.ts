/**
 * Secret references (`{"secret": "db/password"}`): plans and results carry the reference,
 * never the value; values are resolved at run time through a resolver (prov-kms provides the
 * workspace store; `env` reads PROV_SECRET_<NAME>).
 */
export interface SecretRef {
  secret: string
}

export interface SecretResolver {
  /** Returns the plain value as text; throws ProvError NOT_FOUND / DENIED. */
  get(name: string): Promise<string>
  /** The plain value byte for byte, for secrets that are not text (a keytab, a DER key); same errors. */
  bytes(name: string): Promise<Uint8Array>
}

export function isSecretRef(value: unknown): value is SecretRef {
  return !!value && typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length === 1 && typeof (value as SecretRef).secret === 'string'
}

/** Deep copy with every secret reference replaced by its value (for process environments, never for output). */
export async function resolveSecretRefs<T>(value: T, resolver: SecretResolver): Promise<T> {
  if (isSecretRef(value)) return (await resolver.get(value.secret)) as T
  if (Array.isArray(value)) return (await Promise.all(value.map((v) => resolveSecretRefs(v, resolver)))) as T
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) out[k] = await resolveSecretRefs(v, resolver)
    return out as T
  }
  return value
}

/** Names of all references inside a value. */
export function collectSecretRefs(value: unknown, out = new Set<string>()): Set<string> {
  if (isSecretRef(value)) out.add(value.secret)
  else if (Array.isArray(value)) for (const v of value) collectSecretRefs(v, out)
  else if (value && typeof value === 'object') for (const v of Object.values(value)) collectSecretRefs(v, out)
  return out
}
