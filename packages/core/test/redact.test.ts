import { describe, expect, it } from 'vitest'
import { formatOutput } from '../src/output'
import { REDACTED, redactKnownSecrets, redactString, redactValue, registerSecretValue } from '../src/redact'

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

  it('keeps error locations that name a file (secret.yaml: steps[0]) but still redacts dotted keys', () => {
    expect(redactString('bad value (at secret.yaml: steps[0].env.PW)')).toBe('bad value (at secret.yaml: steps[0].env.PW)')
    expect(redactString('cannot read secrets/token.json: ENOENT')).toBe('cannot read secrets/token.json: ENOENT')
    expect(redactString('vault.token: s.abcdef')).toBe(`vault.token: ${REDACTED}`)
    expect(redactString('db.password=hunter2')).toBe(`db.password=${REDACTED}`)
    expect(redactString('invalid workflow: steps[0].env.PW.secret: invalid secret name')).toBe('invalid workflow: steps[0].env.PW.secret: invalid secret name')
    expect(redactString('servers[1].ssh.password: Expected string')).toBe('servers[1].ssh.password: Expected string')
    expect(redactString('--api-key=abcdef password: hunter2')).toBe(`--api-key=${REDACTED} password: ${REDACTED}`)
  })

  it('keeps secret references and placeholders of hints readable', () => {
    const hint = 'hint: export UPCLOUD_USERNAME=... and UPCLOUD_PASSWORD=... (an API user), or set providers.upcloud.token: {secret: NAME}'
    expect(redactString(hint)).toBe(hint)
    expect(redactString('token: {secret:NAME} or HCLOUD_TOKEN=…')).toBe('token: {secret:NAME} or HCLOUD_TOKEN=…')
    // Values that only start like a reference or a placeholder are still values.
    expect(redactString('token: {secretish} password=....x')).toBe(`token: ${REDACTED}} password=${REDACTED}`)
  })

  it('redactKnownSecrets replaces registered values only', () => {
    registerSecretValue('registered-value-42')
    expect(redactKnownSecrets('{"password":"x","v":"registered-value-42"}')).toBe(`{"password":"x","v":"${REDACTED}"}`)
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
    const table = formatOutput(records, 'wide')
    expect(table.split('\n').slice(0, 3)).toEqual(['NAME   N   TAGS', 'a      1   x, y', 'b      2   -'])
    expect(table).not.toContain('schema')
  })
})
