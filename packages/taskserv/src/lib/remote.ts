import { listServers, type ServerRecord, type SshTarget, targetOf, type Workspace } from '@prov/core'

/** Servers recorded in the workspace (prov-server's state). */
export function loadWorkspaceServers(workspace: Workspace): ServerRecord[] {
  return listServers(workspace.path)
}

/** The SSH endpoint of a server record. */
export function sshTarget(server: ServerRecord): SshTarget {
  return targetOf(server)
}
