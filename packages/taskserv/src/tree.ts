// The command tree of this binary: imported by its runner (cli.ts) and by tools that read the
// definitions without running them (the Nushell plugin, shell completions, the conformance suite).
import { type CommandDef, PROV_VERSION } from '@prov/core'

export const main: CommandDef = {
  meta: {
    name: 'prov-taskserv',
    version: PROV_VERSION,
    description: 'Install, remove, update and check task services on servers over SSH, in dependency order, in parallel; clusters of them',
  },
  subCommands: {
    list: () => import('./commands/list').then((m) => m.default),
    plan: () => import('./commands/plan').then((m) => m.default),
    install: () => import('./commands/install').then((m) => m.default),
    remove: () => import('./commands/remove').then((m) => m.default),
    update: () => import('./commands/update').then((m) => m.default),
    'check-updates': () => import('./commands/check-updates').then((m) => m.default),
    status: () => import('./commands/status').then((m) => m.default),
    health: () => import('./commands/health').then((m) => m.default),
    logs: () => import('./commands/logs').then((m) => m.default),
    restart: () => import('./commands/restart').then((m) => m.default),
    generate: () => import('./commands/generate').then((m) => m.default),
    cluster: () => import('./commands/cluster').then((m) => m.default),
  },
}
