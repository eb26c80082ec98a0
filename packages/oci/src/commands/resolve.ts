import { defineProvCommand } from '@prov/core'
export const resolve = defineProvCommand({ meta: { name: 'resolve', description: 'todo' }, run() {} })
export const checkUpdates = resolve
