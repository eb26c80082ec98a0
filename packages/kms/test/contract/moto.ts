/**
 * moto_server (moto 5): an independent AWS emulator, so the AWS KMS backend is also tested
 * against someone else's reading of the KMS API, not only our own contract server. Started on a
 * free loopback port, reset with POST /moto-api/reset, stopped by its pid.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { freePort } from '../../../../tests/helpers/net'
import { TEST_CREDENTIALS } from './aws-kms-server'

/** The moto_server binary (pyenv installs it under ~/.pyenv/versions/<python>/bin); throws when there is none. */
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
      `moto_server is missing (looked in ${versions}/*/bin and $MOTO_SERVER): install moto 5 with its server (pip install 'moto[server]>=5') to test the AWS KMS backend against an independent emulator`,
    )
  }
  return found[0]
}

export interface MotoKms {
  url: string
  keyArn: string
  /** Forgets every key (POST /moto-api/reset) and creates alias/prov again. */
  reset(): Promise<void>
  close(): Promise<void>
}

async function createKey(url: string): Promise<string> {
  const { KMSClient, CreateKeyCommand, CreateAliasCommand } = await import('@aws-sdk/client-kms')
  const client = new KMSClient({ region: 'us-east-1', endpoint: url, credentials: TEST_CREDENTIALS })
  const key = await client.send(new CreateKeyCommand({ Description: 'prov-kms tests' }))
  const keyId = key.KeyMetadata?.KeyId as string
  await client.send(new CreateAliasCommand({ AliasName: 'alias/prov', TargetKeyId: keyId }))
  client.destroy()
  return key.KeyMetadata?.Arn as string
}

export async function startMoto(): Promise<MotoKms> {
  const binary = motoServerPath()
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const child: ChildProcess = spawn(binary, ['-H', '127.0.0.1', '-p', String(port)], { stdio: ['ignore', 'ignore', 'pipe'] })
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
    if (attempt > 200) {
      await stop()
      throw new Error(`moto_server did not start on ${url}: ${stderr}`)
    }
    await sleep(100)
  }
  let keyArn = await createKey(url)
  return {
    url,
    get keyArn() {
      return keyArn
    },
    async reset() {
      await fetch(`${url}/moto-api/reset`, { method: 'POST' })
      keyArn = await createKey(url)
    },
    close: stop,
  }
}
