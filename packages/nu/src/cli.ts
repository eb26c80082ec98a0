// nu_plugin_prov: Nushell starts it with --stdio and talks the plugin protocol on stdin/stdout.
import { Console } from 'node:console'
import { Plugin } from './plugin'
import { killAllChildren } from './runner'

// The protocol owns the real stdin/stdout; commands run in this process get stand-ins, and
// nothing else may print to the protocol channel.
const protocolIn = process.stdin
const protocolOut = process.stdout
const diagnostics = process.stderr
globalThis.console = new Console({ stdout: diagnostics, stderr: diagnostics })
const exit = process.exit.bind(process)

const args = process.argv.slice(2)
if (args[0] !== '--stdio' || args.length !== 1) {
  diagnostics.write(
    'nu_plugin_prov is a Nushell plugin: register it from Nushell with `plugin add <path>/bin/nu_plugin_prov` (then `plugin use prov`), or try it with `nu --plugins "[<path>/bin/nu_plugin_prov]"`\n',
  )
  exit(2)
}

const stop = (code: number) => {
  killAllChildren()
  exit(code)
}
for (const signal of ['SIGTERM', 'SIGHUP'] as const) process.on(signal, () => stop(0))
new Plugin(protocolIn, protocolOut, diagnostics, stop)
