import { join } from 'node:path'
import { findExtension, type ServerRecord, type Workspace } from '@prov/core'
import { z } from 'zod/v4'
import type { PlacedTaskserv } from './plan'
import { placementSchema, placeServers, readYamlFile, VERSION_PATTERN } from './targets'

export const componentSchema = z.strictObject({
  name: z.string().regex(/^[a-z0-9][a-z0-9_.-]*$/, 'a taskserv name'),
  role: z.string().optional(),
  type: z.literal('taskserv').default('taskserv'),
  version: z.string().regex(VERSION_PATTERN, 'a version such as 1.2.3').optional(),
  enabled: z.boolean().default(true),
  placement: placementSchema.optional(),
  settings: z.record(z.string(), z.unknown()).optional(),
})

export const clusterManifestSchema = z.looseObject({
  name: z.string(),
  kind: z.literal('cluster'),
  version: z.string(),
  description: z.string().optional(),
  components: z.array(componentSchema).min(1, 'a cluster names at least one component'),
})
export type ClusterManifest = z.infer<typeof clusterManifestSchema>

export interface LoadedCluster {
  manifest: ClusterManifest
  dir: string
}

export function loadCluster(name: string, workspace: Workspace | undefined, infra?: string): LoadedCluster {
  const ext = findExtension('cluster', name, { workspacePath: workspace?.path, infra })
  const manifest = readYamlFile(join(ext.dir, 'manifest.yaml'), clusterManifestSchema, `cluster manifest '${name}'`)
  return { manifest, dir: ext.dir }
}

/** Where each enabled component goes among the server pool. */
export function clusterPlacements(cluster: LoadedCluster, pool: ServerRecord[]): PlacedTaskserv[] {
  return cluster.manifest.components
    .filter((c) => c.enabled)
    .map((c) => ({
      name: c.name,
      servers: placeServers(c.placement, pool, `cluster ${cluster.manifest.name} (${c.name})`),
      settings: c.settings,
      version: c.version,
    }))
}
