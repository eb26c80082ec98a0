import { describe, expect, it } from 'vitest'
import { presentableError } from '../src/cli/main'
import { formatOutput } from '../src/output'
import { MIN_REDACTED_SECRET_LENGTH, REDACTED, redactKnownSecrets, redactString, redactValue, registerSecretValue } from '../src/redact'

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

  it('message fields of result records are redacted like log lines; data fields stay whole', () => {
    registerSecretValue('hctok-RECORDSECRET-1234')
    const records = [
      { name: 'web-01', status: 'error', error: 'hcloud API answered 403 forbidden: token hctok-RECORDSECRET-1234 is read-only' },
      { name: 'db/password', value: 'hctok-RECORDSECRET-1234', problems: ['echoed hctok-RECORDSECRET-1234'] },
    ]
    for (const format of ['json', 'ndjson', 'yaml', 'table', 'wide'] as const) {
      const text = formatOutput(records, format)
      expect(text, format).not.toContain('echoed hctok-RECORDSECRET-1234')
      expect(text, format).not.toMatch(/token hctok-RECORDSECRET/)
    }
    const json = JSON.parse(formatOutput(records, 'json'))
    expect(json[0].error).toContain(REDACTED)
    expect(json[1].value).toBe('hctok-RECORDSECRET-1234')
    expect(records[0].error).toContain('hctok-RECORDSECRET-1234')
  })

  it('a human view shows control characters and direction overrides escaped, never raw', () => {
    const records = [{ name: 'web\u001b]0;pwned\u0007', tags: 'hi\u001b[31mRED\u009b2J', note: 'abc\u202eevil' }]
    for (const format of ['table', 'wide'] as const) {
      const text = formatOutput(records, format)
      expect(text, format).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e]/)
      expect(text, format).toContain('web\\u001b]0;pwned\\u0007')
    }
    expect(formatOutput(records[0], 'table')).toContain('\\u202e')
  })

  it('an error line shows the control characters of the message it quotes escaped', () => {
    const shown = presentableError(new Error('API answered 400 invalid\u001b[2J: bad\u001b]0;pwned\u0007'))
    expect(shown.toLine()).toContain('invalid\\u001b[2J: bad\\u001b]0;pwned\\u0007')
    expect(shown.toLine()).not.toMatch(/[\u0000-\u001f]/)
  })
})

describe('registered secrets are redacted in the forms programs print them', () => {
  const quoted = `Quo"te\\Back-Slash-Secret`
  const apostrophe = "It's-a-Quoted-Secret"
  const accented = 'Café-Secret-Välue'
  registerSecretValue(quoted)
  registerSecretValue(apostrophe)
  registerSecretValue(accented)
  it.each([
    ['JSON (jq --arg, JSON.stringify)', JSON.stringify({ q: quoted })],
    ['JSON of the apostrophe one', JSON.stringify([apostrophe])],
    ['set -x quoting', `+ echo 'It'\\''s-a-Quoted-Secret'`],
    ['printf %q', `It\\'s-a-Quoted-Secret Quo\\"te\\\\Back-Slash-Secret`],
    ['"\'"\'" quoting', `'It'"'"'s-a-Quoted-Secret'`],
    ['JSON with \\u escapes (lower case)', '{"a":"Caf\\u00e9-Secret-V\\u00e4lue"}'],
    ['JSON with \\u escapes (upper case)', '{"a":"Caf\\u00E9-Secret-V\\u00E4lue"}'],
    ['raw', `${quoted} ${apostrophe} ${accented}`],
  ])('%s', (_, text) => {
    const out = redactKnownSecrets(text)
    expect(out).toContain('[redacted]')
    for (const piece of ['Back-Slash-Secret', 's-a-Quoted-Secret', 'Secret-V']) expect(out).not.toContain(piece)
  })
  it('values under the minimum length are not registered (documented; resolvers warn)', () => {
    registerSecretValue('abc')
    expect(redactKnownSecrets('abc abcd')).toBe('abc abcd')
    expect(MIN_REDACTED_SECRET_LENGTH).toBe(4)
  })
})
