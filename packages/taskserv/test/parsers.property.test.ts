// Property tests of prov-taskserv's parsers: taskservs.yaml (random and truncated input), --set
// and --where words, and the remote result line. Bad input is a ProvError (exit 2/3), never a crash.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { isProvError } from '@prov/core'
import fc from 'fast-check'
import { afterAll, describe, expect, it } from 'vitest'
import { parseRemoteResult } from '../src/engine'
import { parseSettings } from '../src/lib/common'
import { parseWhere, readYamlFile, taskservsFileSchema } from '../src/lib/targets'

const dir = mkdtempSync(join(tmpdir(), 'prov-ts-prop-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const valid = `taskservs:
  - name: postgres
    servers: { where: { role: db } }
    settings: { db_name: app, db_password: { secret: app/db_password } }
  - name: webapp
    version: 1.0.0
    servers: [web-01, web-02]
    settings: { db_host: "{{host.postgres}}" }
  - name: haproxy
    servers: { where: { role: web }, count: 1 }
`

function parse(text: string): unknown {
  const file = join(dir, 'taskservs.yaml')
  writeFileSync(file, text)
  return readYamlFile(file, taskservsFileSchema, 'taskservs.yaml')
}

const expectProvError = (fn: () => unknown, codes: number[]) => {
  try {
    fn()
  } catch (error) {
    expect(isProvError(error), String(error)).toBe(true)
    if (isProvError(error)) expect(codes).toContain(error.code)
  }
}

describe('taskservs.yaml', () => {
  it('the valid file parses', () => {
    expect(parse(valid)).toMatchObject({ taskservs: [{ name: 'postgres' }, { name: 'webapp', version: '1.0.0' }, { name: 'haproxy' }] })
  })

  it('every truncation is either valid or a configuration error with file:line', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: valid.length }), (cut) => {
        try {
          parse(valid.slice(0, cut))
        } catch (error) {
          expect(isProvError(error), String(error)).toBe(true)
          if (isProvError(error)) {
            expect(error.code).toBe(3)
            expect(error.location).toMatch(/taskservs\.yaml:\d+$/)
          }
        }
      }),
      { numRuns: 150 },
    )
  })

  it('random text and random mutations never crash the parser', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (text) => expectProvError(() => parse(text), [3])),
      { numRuns: 150 },
    )
    fc.assert(
      fc.property(fc.integer({ min: 0, max: valid.length - 1 }), fc.constantFrom(':', '{', '[', '-', ' ', '\n', '"', '\t'), (at, ch) =>
        expectProvError(() => parse(valid.slice(0, at) + ch + valid.slice(at + 1)), [3]),
      ),
      { numRuns: 150 },
    )
  })
})

describe('flags and result lines', () => {
  it('--set and --where: key=value words parse, anything else is a usage error', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), (word) => {
        expectProvError(() => parseSettings(word), [2])
        expectProvError(() => parseWhere(word), [2])
      }),
      { numRuns: 200 },
    )
    expect(parseSettings('port=6380,bind=127.0.0.1')).toEqual({ port: 6380, bind: '127.0.0.1' })
    expect(parseWhere('role=db,zone=a')).toEqual({ role: 'db', zone: 'a' })
  })

  it('parseRemoteResult never throws and only accepts known statuses', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 120 }), (text) => {
        const parsed = parseRemoteResult(`@@PROV_RESULT@@ ${text}`)
        // Either refused (undefined) or one of the known statuses: asserted on every input.
        expect(parsed === undefined || parsed === null || ['ok', 'changed', 'failed', 'skipped'].includes(parsed.status)).toBe(true)
      }),
      { numRuns: 300 },
    )
  })
})
