/** The prov-kms part of the layered configuration, plus where the identity lives. */
import { statSync } from 'node:fs'
import { type CommonOptions, deniedError, kmsIdentityPath, kmsRetiredDir, resolveWorkspace, type Workspace } from '@prov/core'

export interface KmsSettings {
  backend: 'age' | 'vault' | 'awskms'
  identity_file?: string
  recipients: string[]
  vault: { address: string; mount: string; key: string; token_env: string; role_id?: string; secret_id_env?: string }
  aws: { region: string; key_id: string; endpoint?: string }
}

export interface KmsContext {
  workspace?: Workspace
  settings: KmsSettings
  identityPath: string
  retiredDir: string
}

const cache = new WeakMap<object, Promise<KmsContext>>()

/** An identity that group or others can read is refused by every command (exit 4). */
export function assertIdentitySafe(path: string): void {
  let mode: number
  try {
    mode = statSync(path).mode
  } catch {
    return
  }
  if (mode & 0o077) {
    throw deniedError(`identity ${path} is readable by group or others (mode ${(mode & 0o777).toString(8)}); refusing to use it`, { hint: `chmod 600 ${path}` })
  }
}

/** Loads the configuration once per command (8 layers; `kms` section); checks the identity's mode unless told not to. */
export async function kmsContext(common: Partial<CommonOptions>, options: { checkIdentity?: boolean } = {}): Promise<KmsContext> {
  const ctx = await loadKmsContext(common)
  if (options.checkIdentity !== false) assertIdentitySafe(ctx.identityPath)
  return ctx
}

function loadKmsContext(common: Partial<CommonOptions>): Promise<KmsContext> {
  let pending = cache.get(common)
  if (!pending) {
    pending = (async () => {
      const { loadCommandConfig } = await import('@prov/core/config')
      const resolved = await loadCommandConfig(common)
      const workspace = resolved.workspace ?? resolveWorkspace(common.workspace)
      const settings = resolved.config.kms as KmsSettings
      const identityPath = kmsIdentityPath(workspace?.path, settings.identity_file)
      return { workspace, settings, identityPath, retiredDir: kmsRetiredDir(workspace?.path, identityPath) }
    })()
    cache.set(common, pending)
  }
  return pending
}

export type BackendName = KmsSettings['backend']
export const backendNames: BackendName[] = ['age', 'vault', 'awskms']
