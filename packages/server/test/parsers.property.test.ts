import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { isProvError, serversFromRecords } from '@prov/core'
import fc from 'fast-check'
import { afterAll, describe, expect, it } from 'vitest'
import { readDesired } from '../src/desired'
import { parsePlan } from '../src/plan-input'

const dir = mkdtempSync(join(tmpdir(), 'prov-server-prop-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const options = {
  configDefaults: {},
  defaultProvider: 'local',
  defaultSshUser: 'root',
  defaultSshPort: 22,
  knownProviders: { has: (name: string) => name === 'local' || name === 'ssh', all: () => ['local', 'ssh'] },
}
const valid = `defaults:
  labels: { team: a }
servers:
  - name: web-01
    provider: local
    cores: 1
    labels: { role: web }
  - name: db-01
    provider: ssh
    address: 192.0.2.1
    ssh: { user: admin, port: 2222 }
`

function attempt(text: string): unknown {
  const file = join(dir, 'servers.yaml')
  writeFileSync(file, text)
  try {
    return readDesired(file, options)
  } catch (error) {
    // Only contract errors naming file:line: configuration (3), or hostile input (2) for a value
    // that would reach a command line (a cut address or login name).
    expect(isProvError(error), String(error)).toBe(true)
    if (isProvError(error)) {
      if (error.code === 2) expect(error.message).toMatch(/is not an IP address or host name|neither a valid IPv4 address|is not a login name/)
      else expect(error.code).toBe(3)
      expect(error.location).toMatch(/servers\.yaml:\d+$/)
    }
    return undefined
  }
}

describe('servers.yaml parser (property)', () => {
  it('parses the reference file', () => {
    const desired = attempt(valid) as { servers: { name: string; labels: Record<string, string>; ssh: { port: number } }[] }
    expect(desired.servers.map((s) => s.name)).toEqual(['web-01', 'db-01'])
    expect(desired.servers[0].labels).toEqual({ team: 'a', role: 'web' })
    expect(desired.servers[1].ssh.port).toBe(2222)
  })

  it('any truncation is parsed or refused with exit 3 and file:line', () => {
    fc.assert(
      fc.property(fc.nat(valid.length), (cut) => {
        attempt(valid.slice(0, cut))
      }),
      { numRuns: 150 },
    )
  })

  it('random text and random YAML values never crash the parser', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.jsonValue().map((v) => JSON.stringify(v)),
          fc.jsonValue().map((v) => `servers:\n  - ${JSON.stringify(v)}\n`),
        ),
        (text) => {
          attempt(text)
        },
      ),
      { numRuns: 200 },
    )
  })
})

describe('plan and record input (property)', () => {
  it('random JSON is a valid plan or a usage error (exit 2)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        try {
          parsePlan(value, 'stdin')
        } catch (error) {
          expect(isProvError(error) && error.code).toBe(2)
        }
      }),
      { numRuns: 300 },
    )
  })

  it('random records are server records or a usage error (exit 2)', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.jsonValue(), fc.record({ schema: fc.constant('prov.server/v1'), name: fc.string() }))), (records) => {
        try {
          serversFromRecords(records)
        } catch (error) {
          expect(isProvError(error) && error.code).toBe(2)
        }
      }),
      { numRuns: 300 },
    )
  })
})
