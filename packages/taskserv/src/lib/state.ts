import { join } from 'node:path'
import { readJsonFile, updateJsonFile, type WorkspacePaths } from '@prov/core'
import type { TaskResult } from '../engine'

/** What prov knows was installed where (the servers also keep /var/lib/prov/taskservs/<name>.json). */
export interface InstalledEntry {
  version: string
  previous_version?: string
  updated_at: string
  cluster?: string
  /** Settings used (secret references kept as references). */
  settings?: Record<string, unknown>
}
export interface TaskservState {
  schema: 'prov.taskserv.state/v1'
  servers: Record<string, Record<string, InstalledEntry>>
}

const empty = (): TaskservState => ({ schema: 'prov.taskserv.state/v1', servers: {} })
export const statePath = (paths: WorkspacePaths) => join(paths.state, 'taskservs.json')

export function readState(paths: WorkspacePaths | undefined): TaskservState {
  if (!paths) return empty()
  const state = readJsonFile<TaskservState>(statePath(paths), empty())
  return state?.servers ? state : empty()
}

/** Applies results to the state (locked read-modify-write). */
export async function recordResults(
  paths: WorkspacePaths | undefined,
  results: TaskResult[],
  cluster?: string,
  settingsOf: (server: string, taskserv: string) => Record<string, unknown> | undefined = () => undefined,
): Promise<void> {
  if (!paths || !results.length) return
  await updateJsonFile<TaskservState>(statePath(paths), empty(), (state) => {
    if (!state.servers) state.servers = {}
    for (const r of results) {
      const server = (state.servers[r.server] ??= {})
      const now = new Date().toISOString()
      const settings = settingsOf(r.server, r.taskserv)
      const recorded = settings && Object.keys(settings).length ? { settings } : {}
      if (r.action === 'install' && (r.status === 'ok' || r.status === 'changed') && r.version) {
        server[r.taskserv] = {
          ...server[r.taskserv],
          version: r.version,
          updated_at: now,
          ...(r.previous_version ? { previous_version: r.previous_version } : {}),
          ...(cluster ? { cluster } : {}),
          ...recorded,
        }
      } else if (r.action === 'update' && r.version && (r.status !== 'failed' || r.rolled_back)) {
        server[r.taskserv] = {
          ...server[r.taskserv],
          version: r.version,
          updated_at: now,
          ...(r.previous_version ? { previous_version: r.previous_version } : {}),
          ...(r.status === 'failed' ? {} : recorded),
        }
      } else if (r.action === 'remove' && (r.status === 'ok' || r.status === 'changed')) {
        delete server[r.taskserv]
      } else if (r.action === 'status' && r.status === 'skipped' && r.installed === false) {
        delete server[r.taskserv]
      }
      if (!Object.keys(server).length) delete state.servers[r.server]
    }
    return state
  })
}
