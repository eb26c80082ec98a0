/** The prov-kms part of the layered configuration, plus where the identity lives. */
import { existsSync, statSync } from 'node:fs'
import { resolve } from 'node:path'
import {
  assertOwnKeyFile,
  type CommonOptions,
  deniedError,
  kmsIdentityPath,
  kmsRetiredDir,
  notFoundError,
  type ProvError,
  resolveWorkspace,
  type Workspace,
} from '@prov/core'

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
  /** `--identity FILE` was given: decrypt with that file's keys only (like `age -i`), no retired ones. */
  identityOnly?: boolean
  /** `output.format` from the configuration (`auto` unless set). */
  outputFormat: string
  /** Mode enterprise: keys live in Vault or AWS KMS, so nothing uses a local age identity (set when it is so). */
  ageRefusal?: ProvError
}

/** Refuses local age keys where the mode keeps keys in Vault or AWS KMS only (whatever kms.backend or --backend say). */
export function assertAgeAllowed(ctx: KmsContext): void {
  if (ctx.ageRefusal) throw ctx.ageRefusal
}

/** `-i/--identity FILE` of the commands that decrypt. */
export const identityArg = {
  type: 'string',
  description: 'Decrypt with the age identities in FILE only (like age -i); default: the workspace or user key and its retired ones',
  valueHint: 'FILE',
} as const

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
  assertOwnKeyFile(path, 'identity')
}

/** Loads the configuration once per command (8 layers; `kms` section); checks the identity's mode unless told not to. */
export async function kmsContext(common: Partial<CommonOptions>, options: { checkIdentity?: boolean; identity?: unknown } = {}): Promise<KmsContext> {
  let ctx = await loadKmsContext(common)
  if (options.identity !== undefined && options.identity !== false) {
    const identityPath = resolve(String(options.identity))
    if (!existsSync(identityPath) || !statSync(identityPath).isFile()) {
      throw notFoundError(`no identity file ${identityPath}`, { location: '--identity', hint: 'create one with prov-kms keygen or age-keygen -o FILE' })
    }
    ctx = { ...ctx, identityPath, identityOnly: true }
  }
  if (options.checkIdentity !== false) assertIdentitySafe(ctx.identityPath)
  return ctx
}

function loadKmsContext(common: Partial<CommonOptions>): Promise<KmsContext> {
  let pending = cache.get(common)
  if (!pending) {
    pending = (async () => {
      const { assertModeRules, loadCommandConfig, modeRuleError } = await import('@prov/core/config')
      const resolved = await loadCommandConfig(common)
      // Mode enterprise keeps keys in Vault or AWS KMS: no prov-kms command runs on a local age setup.
      assertModeRules(resolved.config, ['kms.backend'])
      const workspace = resolved.workspace ?? resolveWorkspace(common.workspace)
      const settings = resolved.config.kms as KmsSettings
      const identityPath = kmsIdentityPath(workspace?.path, settings.identity_file)
      const outputFormat = resolved.config.output.format
      const ageRefusal =
        resolved.config.mode === 'enterprise'
          ? modeRuleError({
              mode: 'enterprise',
              rule: 'keys in Vault or AWS KMS, not a local age identity',
              key: 'kms.backend',
              ok: false,
              hint: 'use --backend vault or awskms (kms.backend), and a SOPS file encrypted with them',
            })
          : undefined
      return {
        workspace,
        settings,
        identityPath,
        retiredDir: kmsRetiredDir(workspace?.path, identityPath),
        outputFormat,
        ...(ageRefusal ? { ageRefusal } : {}),
      }
    })()
    cache.set(common, pending)
  }
  return pending
}

export type BackendName = KmsSettings['backend']
export const backendNames: BackendName[] = ['age', 'vault', 'awskms']
