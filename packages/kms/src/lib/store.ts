/**
 * Paths of the workspace secret store, contained: every secret file and folder must resolve
 * (symlinks followed) inside the workspace's own `secrets/` folder. A `secrets` folder that is a
 * symlink to elsewhere, or a link inside it, is refused (exit 4) before anything is read, written
 * or removed. Folders of the store are 0700, secret files 0600.
 */
import { chmodSync, existsSync, mkdirSync, rmdirSync, rmSync, statSync } from 'node:fs'
import { dirname, join, relative, sep } from 'node:path'
import { containedPath, secretFilePath, type Workspace, withLock, writeFileAtomic } from '@prov/core'

const what = (workspace: Workspace) => `the secret store of workspace ${workspace.path}`

/** `<workspace>/secrets` itself, refused when it (or a folder above it in the workspace) leads elsewhere. */
export function secretsRoot(workspace: Workspace): string {
  return containedPath(workspace.path, relative(workspace.path, workspace.paths.secrets), { what: `workspace ${workspace.path}` })
}

/** `<workspace>/secrets/<name>.age`, contained in the workspace's secrets folder. */
export function secretPath(workspace: Workspace, name: string): string {
  const root = secretsRoot(workspace)
  return containedPath(root, relative(root, secretFilePath(workspace.path, name)).split(sep), { what: what(workspace) })
}

/** Creates (or tightens to 0700) the folders from `secrets/` down to the secret's folder, one level at a time. */
function prepareFolders(workspace: Workspace, file: string): void {
  const root = secretsRoot(workspace)
  let folder = root
  for (const part of ['', ...relative(root, dirname(file)).split(sep).filter(Boolean)]) {
    folder = part ? join(folder, part) : folder
    // Checked before each step: a link swapped in meanwhile is caught at the next level.
    containedPath(root, relative(root, folder).split(sep), { what: what(workspace) })
    if (!existsSync(folder)) mkdirSync(folder, { mode: 0o700 })
    if ((statSync(folder).mode & 0o777) !== 0o700) chmodSync(folder, 0o700)
  }
}

/** Writes a secret file atomically (0600) under the store's lock for that name. */
export async function writeSecretFile(workspace: Workspace, name: string, data: string | Uint8Array): Promise<string> {
  const file = secretPath(workspace, name)
  prepareFolders(workspace, file)
  await withLock(file, () => {
    secretPath(workspace, name)
    writeFileAtomic(file, data, { mode: 0o600 })
  })
  return file
}

/** Removes a secret file, then the folders it leaves empty (never `secrets/` itself). */
export function removeSecretFile(workspace: Workspace, name: string): void {
  const file = secretPath(workspace, name)
  const root = secretsRoot(workspace)
  rmSync(file)
  let dir = dirname(file)
  while (dir !== root && relative(root, dir) && !relative(root, dir).startsWith('..')) {
    try {
      rmdirSync(dir)
    } catch {
      break
    }
    dir = dirname(dir)
  }
}
