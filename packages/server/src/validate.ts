import { configError, isProvError, listServers, ProvError, type ProvErrorOptions, type ServerRecord } from '@prov/core'
import { providerConfig, type ServerEnv } from './engine'
import type { ServerSpec } from './providers/types'

/**
 * Checks shared by everything that brings desired servers in (servers.yaml, a plan): the
 * provider accepts its configuration and each server, and no fixed address is taken twice.
 * `locate` names where a server came from (file:line, a plan field); `refuse` builds the error
 * (configuration for servers.yaml, input for a plan).
 */
export interface SpecChecks {
  locate(spec: ServerSpec): string
  refuse(message: string, options: ProvErrorOptions): ProvError
  /** Servers the same input deletes first: their addresses are free again. */
  deleted?: ReadonlySet<string>
}

/** Problems a provider reports with its config (exit 3) or with one server (`checks.refuse`). */
export async function checkSpecsWithProviders(env: ServerEnv, specs: ServerSpec[], checks: SpecChecks): Promise<void> {
  for (const name of new Set(specs.map((s) => s.provider))) {
    const provider = await env.provider(name)
    const config = providerConfig(env.config, name)
    const problems = provider.validateConfig(config)
    if (problems.length) throw configError(`provider '${name}' is misconfigured: ${problems[0]}`, { hint: 'see prov config show --explain' })
    const own = specs.filter((s) => s.provider === name)
    for (const spec of own) {
      let specProblems: string[]
      try {
        specProblems = provider.validateSpec?.(spec, config, { workspacePath: env.workspace.path }) ?? []
      } catch (error) {
        // A provider's own verdict (e.g. not found: an unknown image) keeps its kind and gets the place.
        if (!isProvError(error) || error.location) throw error
        throw new ProvError(error.code, `server '${spec.name}': ${error.message}`, { location: checks.locate(spec), hint: error.hint })
      }
      if (specProblems.length) throw checks.refuse(`server '${spec.name}': ${specProblems[0]}`, { location: checks.locate(spec) })
    }
    // Cloud providers check plans/zones/images against their catalog (read-only API calls).
    if (own.length && provider.checkSpecs) await provider.checkSpecs(env.providerContext(name), own)
  }
}

/** The key two servers may not share: local sandboxes live in their own address space. */
export const addressKey = (provider: string, address: string, port: number) => `${provider === 'local' ? 'local' : 'net'}:${address}:${port}`

/** Fixed addresses must be unique among the specs and must not collide with servers that exist under other names. */
export function checkAddressCollisions(env: ServerEnv, specs: ServerSpec[], checks: SpecChecks): void {
  const taken = new Map<string, string>()
  for (const spec of specs) {
    if (!spec.address) continue
    const key = addressKey(spec.provider, spec.address, spec.ssh.port)
    const other = taken.get(key)
    if (other) throw checks.refuse(`address ${spec.address} of server '${spec.name}' collides with server '${other}'`, { location: checks.locate(spec) })
    taken.set(key, spec.name)
  }
  const existing: ServerRecord[] = listServers(env.workspace).filter((s) => !checks.deleted?.has(s.name))
  for (const spec of specs) {
    if (!spec.address) continue
    const other = existing.find((s) => s.name !== spec.name && s.ip_address === spec.address && s.ssh.port === spec.ssh.port)
    if (other) {
      throw checks.refuse(`address ${spec.address} of server '${spec.name}' collides with existing server '${other.name}'`, { location: checks.locate(spec) })
    }
  }
}
