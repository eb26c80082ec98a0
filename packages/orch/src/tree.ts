// The command tree of this binary: imported by its runner (cli.ts) and by tools that read the
// definitions without running them (the Nushell plugin, shell completions, the conformance suite).
import { type CommandDef, PROV_VERSION } from '@prov/core'

export const main: CommandDef = {
  meta: {
    name: 'prov-orch',
    version: PROV_VERSION,
    description:
      'Durable workflow engine: DAG workflows and batches of prov tools (or any command), retries, timeouts, checkpoints, crash recovery, rollback, rolling and canary updates; REST + events',
  },
  subCommands: {
    run: () => import('./commands/run').then((m) => m.default),
    submit: () => import('./commands/submit').then((m) => m.default),
    status: () => import('./commands/status').then((m) => m.default),
    list: () => import('./commands/list').then((m) => m.default),
    watch: () => import('./commands/watch').then((m) => m.default),
    logs: () => import('./commands/logs').then((m) => m.default),
    cancel: () => import('./commands/cancel').then((m) => m.default),
    retry: () => import('./commands/retry').then((m) => m.default),
    rollback: () => import('./commands/rollback').then((m) => m.default),
    validate: () => import('./commands/validate').then((m) => m.default),
    serve: () => import('./commands/serve').then((m) => m.default),
    worker: () => import('./commands/worker').then((m) => m.default),
    ui: () => import('./commands/ui').then((m) => m.default),
  },
}
