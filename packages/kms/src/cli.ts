// prov-kms: keys, encryption with context, SOPS-compatible files, the workspace secret store.
// Kept tiny for cold start: `--version` answers before anything is imported; every subcommand
// and heavy dependency (age-encryption, AWS SDK, ofetch, yaml) loads only when used.
import type { CommandDef } from '@prov/core'

/** Same value as PROV_VERSION in @prov/core (a test checks they agree). */
export const KMS_VERSION = '0.1.0'

const argv = process.argv.slice(2)
if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-v')) {
  process.stdout.write(`${KMS_VERSION}\n`)
} else {
  const { runProvMain, PROV_VERSION } = await import('@prov/core')
  const main: CommandDef = {
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
  process.exitCode = await runProvMain(main)
}
