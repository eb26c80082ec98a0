/**
 * Modes: named presets over storage, authentication and policy. A mode is a configuration layer
 * right above the built-in defaults, so any file, variable or flag still overrides what it sets;
 * what a mode *requires* (a rule) is checked where it applies and named in the error.
 */
import { configError, type ProvError } from '../errors'
import type { ProvConfig } from './schema'

export const MODES = ['solo', 'multi-user', 'ci', 'enterprise'] as const
export type Mode = (typeof MODES)[number]
export const DEFAULT_MODE: Mode = 'solo'

export const isMode = (value: unknown): value is Mode => typeof value === 'string' && (MODES as readonly string[]).includes(value)

/** The values each mode sets (the `mode` layer). */
export const modePresets: Record<Mode, Record<string, unknown>> = {
  solo: { orchestrator: { auth: { mode: 'token' } }, oci: { require_signatures: false } },
  'multi-user': { orchestrator: { auth: { mode: 'jwt' } } },
  ci: {},
  enterprise: { orchestrator: { auth: { mode: 'jwt' } }, oci: { require_signatures: true } },
}

export interface ModeRule {
  mode: Mode
  /** What the rule asks, as the error says it. */
  rule: string
  /** The configuration key the rule is about. */
  key: string
  ok: boolean
  hint: string
}

const isPostgres = (url: string) => /^postgres(ql)?:\/\//.test(url)

/** Every rule of `mode` with whether the configuration keeps it (`prov doctor`, and each binary where a rule applies). */
export function modeRules(mode: Mode, config: ProvConfig): ModeRule[] {
  const rules: ModeRule[] = []
  const add = (rule: string, key: string, ok: boolean, hint: string) => rules.push({ mode, rule, key, ok, hint })
  if (mode === 'multi-user' || mode === 'enterprise') {
    add('a PostgreSQL store', 'orchestrator.store', isPostgres(config.orchestrator.store), 'set orchestrator.store: postgres://user@host:5432/db')
    add('--auth jwt', 'orchestrator.auth.mode', config.orchestrator.auth.mode === 'jwt', 'set orchestrator.auth.mode: jwt and orchestrator.auth.key_file')
  }
  if (mode === 'enterprise') {
    add('signed OCI artifacts', 'oci.require_signatures', config.oci.require_signatures, 'set oci.require_signatures: true and oci.trusted_keys')
    add('a Vault or AWS KMS backend', 'kms.backend', config.kms.backend === 'vault' || config.kms.backend === 'awskms', 'set kms.backend: vault (or awskms)')
  }
  return rules
}

/** The error a broken rule is reported with where it applies (exit 3, at mode). */
export function modeRuleError(rule: ModeRule): ProvError {
  return configError(`mode ${rule.mode} requires ${rule.rule}`, { location: 'mode', hint: `${rule.hint}, or prov mode set solo` })
}

/** The rules of the configured mode about `keys` that the configuration breaks. */
export function brokenModeRules(config: ProvConfig, keys: readonly string[]): ModeRule[] {
  const mode = isMode(config.mode) ? config.mode : DEFAULT_MODE
  return modeRules(mode, config).filter((rule) => !rule.ok && keys.includes(rule.key))
}

/** Refuses (exit 3, naming the mode) when the configured mode has a rule about `keys` this configuration breaks. */
export function assertModeRules(config: ProvConfig, keys: readonly string[]): void {
  const [broken] = brokenModeRules(config, keys)
  if (broken) throw modeRuleError(broken)
}
