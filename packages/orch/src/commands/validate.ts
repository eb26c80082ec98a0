import { defineProvCommand } from '@prov/core'
import { compiledRecord, readWorkflowArg, workflowFileArg } from '../context'

export default defineProvCommand({
  meta: {
    name: 'validate',
    description: 'Check a workflow file (schema, references, cycles) and print its compiled steps',
    examples: ['prov-orch validate deploy.yaml', 'cat deploy.yaml | prov-orch validate -'],
    mutating: false,
  },
  args: { file: workflowFileArg },
  async run({ positionals, emit, log }) {
    const workflow = await readWorkflowArg(positionals, 'validate')
    log.success(`workflow '${workflow.name}' is valid (${workflow.steps.length} steps)`)
    emit(compiledRecord(workflow))
  },
})
