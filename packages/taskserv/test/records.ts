import { newServerRecord, type ServerRecord } from '@prov/core'

/** A complete `prov.server/v1` record; by default at an address nobody answers (TEST-NET-1 is never routed). */
export function serverRecord(name: string, fields: Partial<ServerRecord> = {}): ServerRecord {
  return newServerRecord({ name, provider: 'ssh', status: 'running', ip_address: '192.0.2.10', created_at: '2026-01-01T00:00:00Z', ...fields })
}
