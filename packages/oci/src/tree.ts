// The command tree of this binary: imported by its runner (cli.ts) and by tools that read the
// definitions without running them (the Nushell plugin, shell completions, the conformance suite).
import { type CommandDef, PROV_VERSION } from '@prov/core'

// Subcommands load on demand: `prov-oci --version` imports none of them (cold start is benchmarked).
const sub =
  (load: () => Promise<Record<string, unknown>>, name = 'default') =>
  () =>
    load().then((m) => m[name] as CommandDef)

export const main: CommandDef = {
  meta: { name: 'prov-oci', version: PROV_VERSION, description: 'Extensions and workspace bundles as OCI artifacts: registries, layouts, cache, signatures' },
  subCommands: {
    package: sub(() => import('./commands/package')),
    push: sub(() => import('./commands/push')),
    pull: sub(() => import('./commands/pull')),
    tags: sub(() => import('./commands/registry'), 'tags'),
    catalog: sub(() => import('./commands/registry'), 'catalog'),
    inspect: sub(() => import('./commands/inspect')),
    copy: sub(() => import('./commands/copy')),
    delete: sub(() => import('./commands/registry'), 'remove'),
    login: sub(() => import('./commands/login'), 'login'),
    logout: sub(() => import('./commands/login'), 'logout'),
    resolve: sub(() => import('./commands/resolve'), 'resolve'),
    'check-updates': sub(() => import('./commands/resolve'), 'checkUpdates'),
    sign: sub(() => import('./commands/sign'), 'signCommand'),
    verify: sub(() => import('./commands/sign'), 'verifyCommand'),
    bundle: sub(() => import('./commands/bundle')),
    seed: sub(() => import('./commands/seed')),
  },
}
