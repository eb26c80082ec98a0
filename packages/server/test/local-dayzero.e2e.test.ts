// Day zero in local sandboxes: the real Ignition (files stage) applies each server's document on
// its own root at first boot, before sshd answers. Real sandboxes from the debian-12 image (root).
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ensureWorkspaceKey } from '@prov/core'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { runCli, tempWorkspace } from '../../../tests/helpers/cli'
import { cleanupPrefix, describeSandbox, systemSsh, tearDownSandboxes, useSubnet } from './helpers/local'

const SUBNET = '10.213.14.0/24'
const BRIDGE = 'provt14'

type Ws = Awaited<ReturnType<typeof tempWorkspace>>
let ws: Ws
const cli = (args: string[], env: Record<string, string> = {}, input?: string) =>
  runCli('prov-server', args, { env: { ...ws.env, ...env }, cwd: ws.path, timeoutMs: 900_000, input })
const ipOf = async (name: string) =>
  ((await cli(['list', '--out', 'json'])).json() as { name: string; ip_address: string }[]).find((s) => s.name === name)?.ip_address as string

describeSandbox('day zero in local sandboxes (root)', { timeout: 1_200_000 }, () => {
  beforeAll(async () => {
    cleanupPrefix(BRIDGE)
    ws = await tempWorkspace('dayzero-e2e')
    useSubnet(ws.path, SUBNET, BRIDGE, false)
    const key = await ensureWorkspaceKey(ws.path)
    mkdirSync(join(ws.path, 'infra', 'dz'), { recursive: true })
    writeFileSync(join(ws.path, 'infra', 'dz', 'motd'), 'from a butane file\n')
    writeFileSync(
      join(ws.path, 'infra', 'dz', 'bu-01.bu'),
      [
        'variant: fcos',
        'version: 1.4.0',
        'passwd:',
        '  users:',
        '    - name: core',
        '      groups: [sudo]',
        `      ssh_authorized_keys: ["${key.publicKey.trim()}"]`,
        'storage:',
        '  files:',
        '    - path: /etc/motd',
        '      mode: 0644',
        '      overwrite: true',
        '      contents: { local: motd }',
        '',
      ].join('\n'),
    )
    writeFileSync(
      join(ws.path, 'infra', 'dz', 'servers.yaml'),
      [
        'servers:',
        '  - name: dz-01',
        '    provider: local',
        '    provision:',
        '      users:',
        '        - name: deploy',
        '          groups: [sudo, app]',
        '          shell: /bin/bash',
        `          ssh_authorized_keys: ["${key.publicKey.trim()}"]`,
        '      groups:',
        '        - name: app',
        '      files:',
        '        - path: /etc/app/env',
        '          mode: 0640',
        '          owner: deploy',
        '          group: app',
        '          contents: { secret: app/token }',
        '      directories:',
        '        - path: /srv/app',
        '          owner: deploy',
        '          mode: 0750',
        '      links:',
        '        - path: /usr/local/bin/app-env',
        '          target: /etc/app/env',
        '      units:',
        '        - name: app.service',
        '          enabled: true',
        '          contents: "[Service]\\nExecStart=/bin/sleep infinity\\n[Install]\\nWantedBy=multi-user.target\\n"',
        '      commands:',
        '        - echo ran-once >> /var/log/first-boot-commands.log',
        // As in cloud-init's runcmd, a failing command does not stop the next; none runs again at the next boot.
        '        - "false"',
        '        - echo after-failure >> /var/log/first-boot-commands.log',
        '  - name: bu-01',
        '    provider: local',
        '    butane: infra/dz/bu-01.bu',
        '',
      ].join('\n'),
    )
  })

  afterAll(() => tearDownSandboxes(ws, BRIDGE))

  it('users, files from secrets, directories, links and units exist when the server first answers', async () => {
    const plan = await cli(['plan', '--infra', 'dz'], { PROV_SECRET_APP_TOKEN: 'tok-e2e-s3cr3t' })
    expect(plan.code).toBe(0)
    expect(plan.stdout).not.toContain('tok-e2e-s3cr3t')
    const apply = await cli(['apply', '--yes', '--out', 'json'], { PROV_SECRET_APP_TOKEN: 'tok-e2e-s3cr3t' }, plan.stdout)
    expect(apply.stderr).not.toMatch(/error/)
    expect(apply.code).toBe(0)
    const ip = await ipOf('dz-01')
    // The provisioned user logs in with its own key.
    const login = systemSsh(
      ws.path,
      ip,
      'id -un; id -Gn; stat -c "%a %U %G" /etc/app/env /srv/app; cat /etc/app/env; echo; readlink /usr/local/bin/app-env',
      22,
      'deploy',
    )
    expect(login.stderr).toBe('')
    const lines = login.stdout.trim().split('\n')
    expect(lines[0]).toBe('deploy')
    expect(lines[1].split(' ')).toEqual(expect.arrayContaining(['deploy', 'sudo', 'app']))
    expect(lines[2]).toBe('640 deploy app')
    expect(lines[3]).toBe('750 deploy root')
    expect(lines[4]).toBe('tok-e2e-s3cr3t')
    expect(lines[5]).toBe('/etc/app/env')
    const root = systemSsh(
      ws.path,
      ip,
      'cat /etc/systemd/system/app.service; cat /etc/systemd/system-preset/20-ignition.preset; cat /var/log/first-boot-commands.log; hostname; ls /etc/prov; test -e /var/lib/prov/first-boot.done && echo stamped',
    )
    expect(root.stdout).toContain('ExecStart=/bin/sleep infinity')
    expect(root.stdout).toMatch(/enable app\.service/)
    expect(root.stdout).toContain('ran-once')
    expect(root.stdout).toContain('after-failure')
    expect(root.stdout).toContain('stamped')
    expect(root.stdout).toContain('dz-01')
    // The document (it held the secret) is gone from the sandbox.
    expect(root.stdout).not.toContain('first-boot.ign')
    // State keeps the fingerprint, never the contents.
    const info = await cli(['info', 'dz-01', '--out', 'json'])
    expect(info.json().day_zero).toMatchObject({ format: 'ignition', source: 'provision' })
    expect(info.stdout).not.toContain('tok-e2e-s3cr3t')
  })

  it('a server from a Butane file: its user logs in, its file is there', async () => {
    const ip = await ipOf('bu-01')
    const login = systemSsh(ws.path, ip, 'id -un; cat /etc/motd', 22, 'core')
    expect(login.stdout.trim().split('\n')).toEqual(['core', 'from a butane file'])
  })

  it('first boot only: a restart does not apply the document again; a changed document is reported', async () => {
    const ip = await ipOf('dz-01')
    expect(systemSsh(ws.path, ip, 'echo changed-by-hand > /etc/app/env').status).toBe(0)
    const restart = await cli(['restart', 'dz-01', '--yes'])
    expect(restart.code).toBe(0)
    const after = systemSsh(ws.path, ip, 'cat /etc/app/env; cat /var/log/first-boot-commands.log')
    expect(after.stdout.trim().split('\n')).toEqual(['changed-by-hand', 'ran-once', 'after-failure'])
    writeFileSync(join(ws.path, 'infra', 'dz', 'motd'), 'changed\n')
    const plan = await cli(['plan', '--infra', 'dz'], { PROV_SECRET_APP_TOKEN: 'tok-e2e-s3cr3t' })
    const bu = plan.json().actions.find((a: { server: string }) => a.server === 'bu-01')
    expect(bu.day_zero).toMatchObject({ needs_recreation: true })
    expect(bu.reason).toMatch(/day-zero document changed/)
  })
})
