// The command tree of this binary: imported by its runner (cli.ts) and by tools that read the
// definitions without running them (the Nushell plugin, shell completions, the conformance suite).
import { type CommandDef, PROV_VERSION } from '@prov/core'

/** The commands prov runs itself; any other first word runs `prov-<word>`. */
export const builtins: Record<string, () => Promise<CommandDef<any>>> = {
  workspace: () => import('./commands/workspace').then((m) => m.default),
  config: () => import('./commands/config').then((m) => m.default),
  ext: () => import('./commands/ext').then((m) => m.default),
  deps: () => import('./commands/deps').then((m) => m.default),
  doctor: () => import('./commands/doctor').then((m) => m.default),
  mode: () => import('./commands/mode').then((m) => m.default),
  completion: () => import('./commands/completion').then((m) => m.default),
}

export const main: CommandDef = {
  meta: {
    name: 'prov',
    version: PROV_VERSION,
    description: 'Infrastructure provisioning toolkit. `prov <tool> ...` runs `prov-<tool> ...` (server, taskserv, kms, oci, orch).',
  },
  subCommands: builtins,
}
