/**
 * moto_server (moto 5): an independent AWS emulator, so AWS code is tested against someone
 * else's reading of the APIs, not only ours. Started on a free loopback port, reset with
 * POST /moto-api/reset, stopped by its own pid. `scripts/setup.sh` checks it is there.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { freePort } from './net'

/** The moto_server binary: $MOTO_SERVER, else pyenv's ~/.pyenv/versions/<python>/bin; throws when there is none. */
export function motoServerPath(): string {
  const versions = join(homedir(), '.pyenv', 'versions')
  const found = existsSync(versions)
    ? readdirSync(versions)
        .map((version) => join(versions, version, 'bin', 'moto_server'))
        .filter((path) => existsSync(path))
    : []
  if (process.env.MOTO_SERVER && existsSync(process.env.MOTO_SERVER)) found.unshift(process.env.MOTO_SERVER)
  if (!found.length) {
    throw new Error(
      `moto_server is missing (looked in ${versions}/*/bin and $MOTO_SERVER): install moto 5 with its server (pip install 'moto[server]>=5'), or point MOTO_SERVER at it; the AWS tests run against it`,
    )
  }
  return found[0]
}

export interface Moto {
  url: string
  /** Forgets every resource (POST /moto-api/reset). */
  reset(): Promise<void>
  close(): Promise<void>
}

/** Starts moto_server on a free loopback port; `env` adds settings such as INITIAL_NO_AUTH_ACTION_COUNT. */
export async function startMoto(env: Record<string, string> = {}): Promise<Moto> {
  const binary = motoServerPath()
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const child: ChildProcess = spawn(binary, ['-H', '127.0.0.1', '-p', String(port)], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } })
  let stderr = ''
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = `${stderr}${chunk}`.slice(-2000)
  })
  const stop = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve()
      child.once('exit', () => resolve())
      child.kill('SIGTERM')
    })
  for (let attempt = 0; ; attempt++) {
    if (child.exitCode !== null) throw new Error(`moto_server exited (${child.exitCode}): ${stderr}`)
    try {
      const response = await fetch(`${url}/moto-api/`)
      if (response.status < 500) break
    } catch {
      // not listening yet
    }
    if (attempt > 300) {
      await stop()
      throw new Error(`moto_server did not start on ${url}: ${stderr}`)
    }
    await sleep(100)
  }
  return {
    url,
    async reset() {
      await fetch(`${url}/moto-api/reset`, { method: 'POST' })
    },
    close: stop,
  }
}
