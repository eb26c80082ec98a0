import { defineProvCommand } from '@prov/core'
export default defineProvCommand({ meta: { name: 'bundle', description: 'todo' }, run() {} })
