// The command tree of this binary: imported by its runner (cli.ts) and by tools that read the
// definitions without running them (the Nushell plugin, shell completions, the conformance suite).
// Every subcommand and heavy dependency (age-encryption, AWS SDK, ofetch, yaml) loads only when used.
import { type CommandDef, PROV_VERSION } from '@prov/core'

export const main: CommandDef = {
  meta: {
    name: 'prov-kms',
    version: PROV_VERSION,
    description: 'Keys, encryption with context, SOPS files and the workspace secret store (age, Vault Transit, AWS KMS)',
  },
  subCommands: {
    keygen: () => import('./commands/keygen').then((m) => m.default),
    keys: () => import('./commands/keys').then((m) => m.default),
    status: () => import('./commands/status').then((m) => m.default),
    encrypt: () => import('./commands/encrypt').then((m) => m.default),
    decrypt: () => import('./commands/decrypt').then((m) => m.default),
    datakey: () => import('./commands/datakey').then((m) => m.default),
    rewrap: () => import('./commands/rewrap').then((m) => m.default),
    sops: () => import('./commands/sops').then((m) => m.default),
    secret: () => import('./commands/secret').then((m) => m.default),
    scan: () => import('./commands/scan').then((m) => m.default),
  },
}
