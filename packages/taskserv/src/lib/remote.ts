import { type ServerRecord as CoreServerRecord, listServers, type SshTarget, targetOf, type Workspace } from '@prov/core'
import type { ServerRecord } from './targets'

/** Servers recorded in the workspace (prov-server's state). */
export function loadWorkspaceServers(workspace: Workspace): ServerRecord[] {
  return listServers(workspace.path) as unknown as ServerRecord[]
}

/** The SSH endpoint of a server record. */
export function sshTarget(server: ServerRecord): SshTarget {
  return targetOf(server as unknown as CoreServerRecord)
}
