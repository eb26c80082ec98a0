import { isProvError } from '@prov/core'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { compileWorkflow, loadWorkflowFile } from '../src/workflow'

const valid = `schema: prov.orch.workflow/v1
name: multi_cloud_deployment
parallel_limit: 5
rollback_enabled: true
steps:
  - id: servers
    run: [prov-server, apply, --yes]
    expect_json: true
    retries: {max: 2, backoff: 5s}
  - id: services
    run: prov-taskserv install redis
    input: {from: steps.servers.output}
    depends_on: [servers]
    when: steps.servers.output.count > 0
`

/** Either a compiled workflow or a usage error (exit 2) with one line: never a crash. */
function accepts(run: () => unknown) {
  try {
    run()
  } catch (error) {
    expect(isProvError(error), String(error)).toBe(true)
    expect((error as { code: number }).code).toBe(2)
    expect((error as Error).message).not.toContain('\n')
  }
}

describe('workflow parser (property)', () => {
  it('the reference workflow compiles', () => {
    expect(loadWorkflowFile('-', valid).steps.map((s) => s.id)).toEqual(['servers', 'services'])
  })

  it('truncated workflow files: compiled or exit 2, never a crash', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: valid.length }), (n) => accepts(() => loadWorkflowFile('-', valid.slice(0, n)))),
      { numRuns: 200 },
    )
  })

  it('random values and random JSON text: compiled or exit 2', () => {
    fc.assert(
      fc.property(fc.anything(), (value) => accepts(() => compileWorkflow(value))),
      { numRuns: 300 },
    )
    fc.assert(
      fc.property(fc.string(), (text) => accepts(() => loadWorkflowFile('-', text))),
      { numRuns: 300 },
    )
  })

  it('random steps with random dependencies: compiled (acyclic) or a cycle/unknown-step error', () => {
    const step = fc.record({
      id: fc.constantFrom('a', 'b', 'c', 'd', 'e'),
      run: fc.constant('true'),
      depends_on: fc.array(fc.constantFrom('a', 'b', 'c', 'd', 'e', 'x'), { maxLength: 3 }),
    })
    fc.assert(
      fc.property(fc.array(step, { minLength: 1, maxLength: 6 }), (steps) => accepts(() => compileWorkflow({ name: 'p', steps }))),
      { numRuns: 300 },
    )
  })
})
