import { describe, expect, it } from 'vitest'
import { formatOutput, renderTable } from '../src/output'
import { REDACTED, redactString, redactValue, registerSecretValue } from '../src/redact'

describe('redaction', () => {
  it('redacts secret-named fields and secret-looking values', () => {
    expect(redactValue({ user: 'a', password: 'hunter2', nested: { api_key: 'k', key_id: 'alias/x' }, token: '' })).toEqual({
      user: 'a',
      password: REDACTED,
      nested: { api_key: REDACTED, key_id: 'alias/x' },
      token: '',
    })
    expect(redactString('connect postgres://app:s3cret@db/app')).toBe(`connect postgres://app:${REDACTED}@db/app`)
    expect(redactString('id AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ end')).toBe(`id ${REDACTED} end`)
    expect(redactString('password=hunter2 user=x')).toBe(`password=${REDACTED} user=x`)
    expect(redactString('Authorization: Bearer abcdefghijklmnop')).toContain(`Bearer ${REDACTED}`)
    registerSecretValue('very-secret-value')
    expect(redactString('the value very-secret-value leaked')).toBe(`the value ${REDACTED} leaked`)
  })
})

describe('output formats', () => {
  const records = [
    { schema: 'prov.x/v1', name: 'a', n: 1, tags: ['x', 'y'] },
    { schema: 'prov.x/v1', name: 'b', n: 2 },
  ]
  it('prints json arrays, ndjson lines, yaml and tables', () => {
    expect(JSON.parse(formatOutput(records, 'json'))).toEqual(records)
    expect(
      formatOutput(records, 'ndjson')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l)),
    ).toEqual(records)
    expect(formatOutput(records, 'yaml')).toContain('- schema: prov.x/v1')
    const table = renderTable(records)
    expect(table).toContain('│ name │ n │ tags │')
    expect(table).not.toContain('schema')
  })
})
