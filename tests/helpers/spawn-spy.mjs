// Loaded with `node --import` into a prov binary under test: every child process it (or a node
// child of it, which inherits NODE_OPTIONS) starts is appended to $PROV_SPAWN_LOG, so a test can
// prove that a command started none.
import childProcess from 'node:child_process'
import { appendFileSync } from 'node:fs'
import { syncBuiltinESMExports } from 'node:module'

const log = process.env.PROV_SPAWN_LOG
if (log) {
  for (const name of ['spawn', 'spawnSync', 'execFile', 'execFileSync', 'exec', 'execSync', 'fork']) {
    const original = childProcess[name]
    childProcess[name] = function spied(...args) {
      appendFileSync(log, `${process.pid} ${name} ${JSON.stringify(args[0])} ${JSON.stringify(Array.isArray(args[1]) ? args[1] : [])}\n`)
      return original.apply(this, args)
    }
  }
  syncBuiltinESMExports()
}
