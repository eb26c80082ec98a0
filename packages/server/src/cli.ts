import { runProvMain } from '@prov/core'
import { main } from './tree'

process.exitCode = await runProvMain(main)
