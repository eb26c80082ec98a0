// The command tree of this binary: imported by its runner (cli.ts) and by tools that read the
// definitions without running them (the Nushell plugin, shell completions, the conformance suite).
import { type CommandDef, PROV_VERSION } from '@prov/core'

export const main: CommandDef = {
  meta: {
    name: 'prov-server',
    version: PROV_VERSION,
    description: 'Declarative server lifecycle over providers (local sandboxes, ssh hosts): plan, apply, create, delete, list, ssh, exec.',
  },
  subCommands: {
    plan: () => import('./commands/plan').then((m) => m.default),
    apply: () => import('./commands/apply').then((m) => m.default),
    create: () => import('./commands/create').then((m) => m.default),
    delete: () => import('./commands/delete').then((m) => m.default),
    list: () => import('./commands/list').then((m) => m.default),
    info: () => import('./commands/info').then((m) => m.default),
    userdata: () => import('./commands/userdata').then((m) => m.default),
    butane: () => import('./commands/butane').then((m) => m.default),
    start: () => import('./commands/power').then((m) => m.start),
    stop: () => import('./commands/power').then((m) => m.stop),
    restart: () => import('./commands/power').then((m) => m.restart),
    ssh: () => import('./commands/ssh').then((m) => m.default),
    exec: () => import('./commands/exec').then((m) => m.default),
    providers: () => import('./commands/catalog').then((m) => m.providers),
    plans: () => import('./commands/catalog').then((m) => m.plans),
    zones: () => import('./commands/catalog').then((m) => m.zones),
    price: () => import('./commands/catalog').then((m) => m.price),
    image: () => import('./commands/image').then((m) => m.default),
  },
}
