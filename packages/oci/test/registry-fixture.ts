import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from '../../../tests/helpers/net'

export { freePort }

export interface RunningRegistry {
  host: string
  port: number
  dir: string
  stop(): Promise<void>
  /** Starts it again on the same port and storage (after stop()). */
  start(): Promise<void>
}

/** The real Debian docker-registry (CNCF distribution) on 127.0.0.1, optional htpasswd auth. */
export async function startRegistry(options: { auth?: { user: string; password: string } } = {}): Promise<RunningRegistry> {
  const dir = mkdtempSync(join(tmpdir(), 'prov-registry-'))
  const port = await freePort()
  mkdirSync(join(dir, 'data'))
  let auth = ''
  if (options.auth) {
    const line = execFileSync('htpasswd', ['-Bbn', options.auth.user, options.auth.password], { encoding: 'utf8' }).trim()
    writeFileSync(join(dir, 'htpasswd'), `${line}\n`)
    auth = `auth:\n  htpasswd:\n    realm: prov-test\n    path: ${join(dir, 'htpasswd')}\n`
  }
  writeFileSync(
    join(dir, 'config.yml'),
    `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${join(dir, 'data')}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:${port}\n${auth}`,
  )
  let child: ChildProcess | undefined
  const start = async () => {
    child = spawn('/usr/bin/docker-registry', ['serve', join(dir, 'config.yml')], { stdio: 'ignore' })
    for (let i = 0; i < 100; i++) {
      try {
        const response = await fetch(`http://127.0.0.1:${port}/v2/`)
        if (response.status === 200 || response.status === 401) return
      } catch {
        // not yet listening
      }
      await new Promise((r) => setTimeout(r, 100))
    }
    throw new Error('docker-registry did not start')
  }
  const stop = async () => {
    const c = child
    child = undefined
    if (!c || c.exitCode !== null) return
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve())
      c.kill('SIGTERM')
      setTimeout(() => c.kill('SIGKILL'), 3000)
    })
  }
  await start()
  return {
    host: `127.0.0.1:${port}`,
    port,
    dir,
    start,
    async stop() {
      await stop()
    },
  }
}

export async function removeRegistry(registry: RunningRegistry | undefined): Promise<void> {
  if (!registry) return
  await registry.stop()
  rmSync(registry.dir, { recursive: true, force: true })
}
