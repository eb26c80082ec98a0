import { describe, expect, it } from 'vitest'
import { formatOutput, terminalLayout } from '../src/output'
import { age, columnsOf, renderRecord, renderRecords, summarise } from '../src/table'

const now = Date.parse('2026-11-30T12:00:00Z')

const servers = [
  {
    schema: 'prov.server/v1',
    name: 'web-01',
    provider: 'local',
    status: 'running',
    hostname: 'web-01',
    ip_address: '10.213.0.11',
    ssh: { user: 'root', port: 22 },
    labels: { role: 'web', zone: 'a' },
    infra: 'demo',
    cores: 1,
    memory_mb: 512,
    disk_gb: 5,
    zone: null,
    plan: null,
    image: 'debian-12',
    created_at: '2026-11-30T11:55:00Z',
  },
  { schema: 'prov.server/v1', name: 'db-01', provider: 'local', status: 'stopped', ip_address: '10.213.0.12', labels: {}, ssh: { user: 'root', port: 22 } },
]

describe('human tables', () => {
  it('shows the columns that matter per schema, nested values summarised', () => {
    const lines = renderRecords(servers, { now }).trimEnd().split('\n')
    expect(lines).toEqual([
      'NAME     PROVIDER   STATUS    IP            LABELS',
      'web-01   local      running   10.213.0.11   role=web,zone=a',
      'db-01    local      stopped   10.213.0.12   -',
    ])
  })

  it('wide shows every field, the schema columns first, without JSON', () => {
    const header = renderRecords(servers, { wide: true, now }).split('\n')[0]
    expect(header).toMatch(/^NAME\s+PROVIDER\s+STATUS\s+IP\s+LABELS\s+HOSTNAME\s+SSH\s+INFRA\s+CORES\s+MEMORY_MB/)
    expect(renderRecords(servers, { wide: true, now })).toContain('user=root,port=22')
    expect(renderRecords(servers, { wide: true, now })).not.toMatch(/[{}"]/)
  })

  it('workflows show steps done/total and age', () => {
    const workflows = [
      {
        schema: 'prov.orch.workflow/v1',
        id: 'wf-1',
        name: 'deploy',
        status: 'running',
        steps_total: 4,
        counts: { succeeded: 3, running: 1 },
        created_at: '2026-11-30T11:48:00Z',
      },
    ]
    expect(renderRecords(workflows, { now }).split('\n')[1]).toBe('wf-1   deploy   running     3/4   12m')
  })

  it('fits the terminal width: long values are cut with …, then columns from the right are left out', () => {
    const long = servers.map((s) => ({ ...s, labels: { d: 'x'.repeat(50) } }))
    for (const width of [80, 60, 40, 20]) {
      const lines = renderRecords(long, { width, now }).trimEnd().split('\n')
      for (const line of lines) expect(line.length, `${width}: ${line}`).toBeLessThanOrEqual(width)
      expect(lines[1].startsWith('web-01')).toBe(true)
    }
    expect(renderRecords(long, { width: 60, now })).toContain('…')
    expect(renderRecords(long, { width: 20, now }).split('\n')[0]).toBe('NAME     PROVIDER')
  })

  it('never cuts an identifier: the workflows of prov-orch list keep their whole id, other columns go first', () => {
    const workflows = [
      {
        schema: 'prov.orch.workflow.status/v1',
        id: 'wf-mx3ozuzh-81f2c9d4e5a6b7c8',
        name: 'deploy-everything-in-the-fleet',
        status: 'running',
        phase: 'main',
        error: null,
        parallel_limit: 4,
        steps_total: 8,
        counts: { succeeded: 5, running: 1 },
        created_at: '2026-11-30T11:48:00Z',
      },
    ]
    expect(renderRecords(workflows, { now }).split('\n')[0]).toMatch(/^ID\s+NAME\s+STATUS\s+STEPS\s+AGE$/)
    expect(renderRecords(workflows, { now }).split('\n')[1]).toMatch(/^wf-mx3ozuzh-81f2c9d4e5a6b7c8\s+deploy-everything-in-the-fleet\s+running\s+5\/8\s+12m$/)
    for (const width of [80, 60, 40, 30]) {
      const row = renderRecords(workflows, { width, now }).split('\n')[1]
      expect(row, `${width}`).toContain('wf-mx3ozuzh-81f2c9d4e5a6b7c8')
      expect(row, `${width}`).not.toContain('…')
    }
    expect(renderRecords(workflows, { width: 70, now }).split('\n')[0]).toMatch(/^ID\s+NAME$/)
    expect(renderRecords(workflows, { wide: true, now }).split('\n')[0]).toMatch(/PHASE\s+ERROR\s+PARALLEL_LIMIT/)
  })

  it('keeps the id of one record whole on a narrow terminal, cutting other values', () => {
    const record = { schema: 'prov.orch.workflow.status/v1', id: 'wf-mx3ozuzh-81f2c9d4e5a6b7c8', error: 'x'.repeat(80) }
    const lines = renderRecord(record, { width: 24, now }).trimEnd().split('\n')
    expect(lines[0]).toBe('id     wf-mx3ozuzh-81f2c9d4e5a6b7c8')
    expect(lines[1]).toMatch(/^error  x+…$/)
  })

  it('summarises labels as k=v,k=v, cut with … when long', () => {
    const labeled = [{ ...servers[0], labels: { role: 'web', zone: 'eu-central-1a', team: 'platform-infrastructure', tier: 'frontend-public' } }]
    const cell = renderRecords(labeled, { now }).split('\n')[1]
    expect(cell).toContain('role=web,zone=eu-central-1a,team=')
    expect(cell).toContain('…')
    expect(cell).not.toMatch(/\d+ fields/)
    expect(summarise({ a: 1, b: 2, c: 3 })).toBe('a=1,b=2,c=3')
  })

  it('falls back to plain key=value lines on dumb or zero-width terminals', () => {
    expect(terminalLayout({ isTTY: true, columns: 120 }, {})).toEqual({ width: 120 })
    expect(terminalLayout({ isTTY: true, columns: 120 }, { TERM: 'dumb' })).toEqual({ plain: true })
    expect(terminalLayout({ isTTY: true, columns: 0 }, {})).toEqual({ plain: true })
    expect(terminalLayout({ isTTY: true }, {})).toEqual({ plain: true })
    expect(terminalLayout({ isTTY: false }, { COLUMNS: '0' })).toEqual({ plain: true })
    expect(terminalLayout({ isTTY: false }, { COLUMNS: '72' })).toEqual({ width: 72 })
    expect(terminalLayout({ isTTY: false }, {})).toEqual({ width: undefined })
    expect(renderRecords(servers, { plain: true, now }).split('\n')[0]).toBe('name=web-01 provider=local status=running ip=10.213.0.11 labels=role=web,zone=a')
  })

  it('shows one record as key/value lines with dotted keys and its record lists as tables', () => {
    const status = {
      schema: 'prov.orch.workflow.status/v1',
      id: 'wf-1',
      debug: { enabled: false },
      steps: [
        { id: 'a', status: 'succeeded', attempts: 1 },
        { id: 'b', status: 'running', attempts: 1 },
      ],
    }
    expect(renderRecord(status, { now })).toBe(
      'id             wf-1\ndebug.enabled  false\n\nsteps:\nID   STATUS      ATTEMPTS\na    succeeded   1\nb    running     1\n',
    )
  })

  it('summarises values for cells', () => {
    expect(summarise(null)).toBe('-')
    expect(summarise(['a', 'b'])).toBe('a, b')
    expect(
      summarise(
        Array.from({ length: 40 }, (_, i) => `item-${i}`),
        30,
      ),
    ).toMatch(/^item-0, item-1, item-2, item-3, \+36$/)
    expect(summarise([{ a: 1 }, { a: 2 }])).toBe('2 items')
    expect(summarise([['a', 'b'], ['c']])).toBe('a,b | c')
    expect(summarise({ deep: { x: 1 } })).toBe('1 field')
    expect(age('2026-11-30T11:59:30Z', now)).toBe('30s')
    expect(age('2026-11-28T12:00:00Z', now)).toBe('2d')
  })

  it('keeps JSON, NDJSON and YAML unchanged', () => {
    expect(JSON.parse(formatOutput(servers, 'json'))).toEqual(servers)
    expect(
      formatOutput(servers, 'ndjson')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l)),
    ).toEqual(servers)
    expect(formatOutput(servers, 'yaml')).toContain('- schema: prov.server/v1')
    expect(columnsOf([{ schema: 'prov.unknown/v1', zeta: 1, name: 'n', blob: { a: 1 } }]).map((c) => c.header)).toEqual(['NAME', 'ZETA'])
  })
})

describe('--out table and --out wide on a binary', () => {
  it('fits $COLUMNS, falls back to plain lines on a dumb terminal, and leaves JSON alone', async () => {
    const { runCli } = await import('../../../tests/helpers/cli')
    const table = await runCli('prov', ['ext', 'list', '--out', 'table'], { env: { COLUMNS: '50' } })
    expect(table.code, table.stderr).toBe(0)
    const lines = table.stdout.trimEnd().split('\n')
    expect(lines[0]).toMatch(/^NAME\s+KIND\s+VERSION/)
    for (const line of lines) expect(line.length, line).toBeLessThanOrEqual(50)
    const wide = await runCli('prov', ['ext', 'list', '--out', 'wide'], { env: { COLUMNS: undefined } })
    expect(wide.stdout.split('\n')[0]).toMatch(/REQUIRES\s+PATH$/)
    const dumb = await runCli('prov', ['ext', 'list', '--out', 'table'], { env: { TERM: 'dumb' } })
    expect(dumb.stdout.split('\n')[0]).toMatch(/^name=\S+ kind=(provider|taskserv|cluster) version=/)
    const json = await runCli('prov', ['ext', 'list'])
    expect(json.json()[0]).toMatchObject({ schema: 'prov.extension/v1' })
    const bad = await runCli('prov', ['ext', 'list', '--out', 'wid'])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/wide/)
  })
})
