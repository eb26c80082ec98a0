/** The prov-kms part of the layered configuration, plus where the identity lives. */
import { type CommonOptions, kmsIdentityPath, kmsRetiredDir, resolveWorkspace, type Workspace } from '@prov/core'

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

/** Loads the configuration once per command (8 layers; `kms` section). */
export function kmsContext(common: Partial<CommonOptions>): Promise<KmsContext> {
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
