import type { ServerRecord } from '@prov/core'

/** A complete `prov.server/v1` record; by default at an address nobody answers (TEST-NET-1 is never routed). */
export function serverRecord(name: string, fields: Partial<ServerRecord> = {}): ServerRecord {
  return {
    schema: 'prov.server/v1',
    name,
    provider: 'ssh',
    status: 'running',
    hostname: name,
    ip_address: '192.0.2.10',
    ssh: { user: 'root', port: 22 },
    labels: {},
    infra: null,
    cores: null,
    memory_mb: null,
    disk_gb: null,
    zone: null,
    plan: null,
    image: null,
    created_at: '2026-01-01T00:00:00Z',
    ...fields,
  }
}
