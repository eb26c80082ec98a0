import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { freePort } from '../../../../tests/helpers/net'

export { freePort }

export interface LoopbackSshd {
  port: number
  dir: string
  hostPublicKey: string
  stop(): Promise<void>
}

/** A real sshd on 127.0.0.1:<free port> with its own host key, trusting `authorizedKey`. */
export async function startLoopbackSshd(authorizedKey: string): Promise<LoopbackSshd> {
  const dir = mkdtempSync(join(tmpdir(), 'prov-sshd-'))
  chmodSync(dir, 0o755)
  const hostKey = join(dir, 'ssh_host_ed25519_key')
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hostKey])
  writeFileSync(join(dir, 'authorized_keys'), `${authorizedKey}\n`, { mode: 0o600 })
  const port = await freePort()
  const config = join(dir, 'sshd_config')
  writeFileSync(
    config,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${hostKey}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      'Subsystem sftp internal-sftp',
      '',
    ].join('\n'),
  )
  execFileSync('mkdir', ['-p', '/run/sshd'])
  const child: ChildProcess = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString()
  })
  const deadline = Date.now() + 10_000
  while (!stderr.includes('Server listening')) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`sshd did not start: ${stderr}`)
    await sleep(50)
  }
  return {
    port,
    dir,
    hostPublicKey: readFileSync(`${hostKey}.pub`, 'utf8').trim(),
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM')
        await new Promise((resolve) => child.once('exit', resolve))
      }
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
