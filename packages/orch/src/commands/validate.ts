import { defineProvCommand } from '@prov/core'
import { readWorkflowArg } from '../context'

export default defineProvCommand({
  meta: { name: 'validate', description: 'Check a workflow file (schema, references, cycles) and print its compiled steps' },
  async run({ positionals, emit, log }) {
    const workflow = await readWorkflowArg(positionals, 'validate')
    log.success(`workflow '${workflow.name}' is valid (${workflow.steps.length} steps)`)
    emit({ ...workflow, schema: 'prov.orch.workflow.compiled/v1' })
  },
})
