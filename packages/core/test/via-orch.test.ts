import { describe, expect, it } from 'vitest'
import { stepArgv, viaOrchArgs } from '../src/via-orch'

// The end-to-end hand-off against a real prov-orch serve is in packages/orch/test/via-orch.test.ts.
describe('via-orch: the argv of the orchestrator step', () => {
  it('drops --via-orch, adds --direct (no recursion) and the resolved --out', () => {
    expect(stepArgv(['apply', 'plan.json', '--via-orch', '--yes'], 'table')).toEqual(['apply', 'plan.json', '--yes', '--direct', '--out', 'table'])
  })

  it('keeps a given --out / -o and puts --direct before a literal --', () => {
    expect(stepArgv(['exec', 'web', '-o', 'ndjson', '--', 'ls', '--via-orch'], 'json')).toEqual([
      'exec',
      'web',
      '-o',
      'ndjson',
      '--direct',
      '--',
      'ls',
      '--via-orch',
    ])
    expect(stepArgv(['apply', '--out=yaml'], 'json')).toEqual(['apply', '--out=yaml', '--direct'])
  })

  it('declares both flags', () => {
    expect(Object.keys(viaOrchArgs)).toEqual(['via-orch', 'direct'])
  })
})
