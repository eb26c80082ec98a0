import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parse as parseYaml } from 'yaml'
import { runCli, runProcess, tempWorkspace } from '../../../tests/helpers/cli'

// Day zero: Butane -> Ignition as coreos/butane translates it, provision: -> Ignition and
// cloud-init. Every document is checked by the real validators (Debian's ignition-validate and
// cloud-init schema).

type Ws = Awaited<ReturnType<typeof tempWorkspace>>
let ws: Ws
const server = (args: string[], options: { input?: string; env?: Record<string, string> } = {}) =>
  runCli('prov-server', args, { env: { ...ws.env, ...options.env }, cwd: ws.path, input: options.input })

/** Decodes an Ignition data URL (and its gzip) to the bytes the machine gets. */
function decodeSource(source: string, compression?: string): string {
  const match = /^data:([^,]*),(.*)$/s.exec(source)
  if (!match) throw new Error(`not a data URL: ${source}`)
  let bytes = match[1].endsWith(';base64') ? Buffer.from(match[2], 'base64') : Buffer.from(decodeURIComponent(match[2]), 'utf8')
  if (compression === 'gzip') bytes = gunzipSync(bytes)
  return bytes.toString('utf8')
}

async function ignitionValidate(document: string): Promise<void> {
  // Debian's validator (Ignition 2.14) knows spec 3.4 as 3.4.0-experimental; the fields are the same.
  const file = join(ws.root, `check-${Math.random().toString(36).slice(2)}.ign`)
  writeFileSync(file, document.replace('"version":"3.4.0"', '"version":"3.4.0-experimental"'))
  const result = await runProcess('ignition-validate', [file])
  expect(result.stderr + result.stdout).toBe('')
  expect(result.code).toBe(0)
}

async function cloudInitSchema(document: string): Promise<void> {
  const file = join(ws.root, `check-${Math.random().toString(36).slice(2)}.yaml`)
  writeFileSync(file, document)
  const result = await runProcess('cloud-init', ['schema', '-c', file])
  expect(result.stdout + result.stderr).toMatch(/Valid (cloud-config|schema)/)
  expect(result.code).toBe(0)
}

async function butane(text: string, args: string[] = []) {
  const file = join(ws.path, 'in.bu')
  writeFileSync(file, text)
  return server(['butane', file, '--files-dir', join(ws.path, 'bu-files'), ...args])
}

beforeAll(async () => {
  ws = await tempWorkspace('dayzero')
  mkdirSync(join(ws.path, 'bu-files', 'sub'), { recursive: true })
  writeFileSync(join(ws.path, 'bu-files', 'file-1'), 'file contents\n')
  writeFileSync(join(ws.path, 'bu-files', 'zzz'), 'z'.repeat(4096))
  writeFileSync(join(ws.path, 'bu-files', 'keys'), 'ssh-ed25519 AAAAfromfile one\n\nssh-ed25519 AAAAfromfile two\n')
  writeFileSync(join(ws.path, 'bu-files', 'app.service'), '[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n')
  writeFileSync(join(ws.root, 'outside'), 'secret of the host\n')
})

afterAll(() => ws?.cleanup())

describe('prov-server butane', () => {
  // Expected outputs follow coreos/butane's own translation tests (base/v0_N/translate_test.go)
  // and its data URL rules (base/util/url.go): the shortest of URL-escaped, base64 and gzip+base64.
  it('translates files the way butane does: inline, local, declared compression, append, owners, mode', async () => {
    const r = await butane(
      [
        'variant: fcos',
        'version: 1.5.0',
        'storage:',
        '  files:',
        '    - path: /foo',
        '      mode: 0644',
        '      overwrite: true',
        '      user: { name: bazquux }',
        '      group: { id: 1 }',
        '      contents:',
        '        source: http://example/com',
        '        compression: gzip',
        '        http_headers: [{ name: Header, value: "not validated" }]',
        `        verification: { hash: "sha512-${'0'.repeat(128)}" }`,
        '      append:',
        '        - inline: hello',
        '          compression: gzip',
        '        - local: file-1',
        '    - path: /xyzzy',
        '      contents: { inline: xyzzy }',
        '    - path: /zzz',
        '      contents: { local: zzz }',
      ].join('\n'),
    )
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    const config = r.json()
    expect(config.ignition).toEqual({ version: '3.4.0' })
    const [foo, xyzzy, zzz] = config.storage.files
    expect(foo).toEqual({
      path: '/foo',
      mode: 420,
      overwrite: true,
      user: { name: 'bazquux' },
      group: { id: 1 },
      contents: {
        source: 'http://example/com',
        compression: 'gzip',
        httpHeaders: [{ name: 'Header', value: 'not validated' }],
        verification: { hash: `sha512-${'0'.repeat(128)}` },
      },
      // A declared compression means the author's bytes are already compressed: escaped, not recompressed.
      append: [
        { source: 'data:,hello', compression: 'gzip' },
        { source: 'data:,file%20contents%0A', compression: '' },
      ],
    })
    expect(xyzzy.contents).toEqual({ source: 'data:,xyzzy', compression: '' })
    expect(zzz.contents.compression).toBe('gzip')
    expect(zzz.contents.source.startsWith('data:;base64,')).toBe(true)
    expect(decodeSource(zzz.contents.source, 'gzip')).toBe('z'.repeat(4096))
    await ignitionValidate(r.stdout.replace(/"http_headers"/, '"httpHeaders"'))
  })

  it('maps every supported variant and version to its Ignition spec', async () => {
    const cases: [string, string, string][] = [
      ['fcos', '1.0.0', '3.0.0'],
      ['fcos', '1.1.0', '3.1.0'],
      ['fcos', '1.2.0', '3.2.0'],
      ['fcos', '1.3.0', '3.2.0'],
      ['fcos', '1.4.0', '3.3.0'],
      ['fcos', '1.5.0', '3.4.0'],
      ['flatcar', '1.0.0', '3.3.0'],
      ['flatcar', '1.1.0', '3.4.0'],
    ]
    for (const [variant, version, ignition] of cases) {
      const r = await butane(
        `variant: ${variant}\nversion: ${version}\nstorage:\n  files:\n    - path: /etc/motd\n      mode: 0644\n      contents:\n        inline: "hi there\\n"\n`,
      )
      expect(r.stderr).toBe('')
      const config = r.json()
      expect(config.ignition.version).toBe(ignition)
      const contents = config.storage.files[0].contents
      // The first spec knew only URL-escaped inline text and no compression field.
      if (ignition === '3.0.0') expect(contents).toEqual({ source: 'data:,hi%20there%0A' })
      else expect(contents).toEqual({ source: 'data:,hi%20there%0A', compression: '' })
      await ignitionValidate(r.stdout)
    }
  })

  it('translates users, groups, directories, links, units with drop-ins and *_local fields', async () => {
    const r = await butane(
      [
        'variant: fcos',
        'version: 1.5.0',
        'passwd:',
        '  users:',
        '    - name: core',
        '      groups: [wheel]',
        '      home_dir: /home/core',
        '      ssh_authorized_keys: [ssh-ed25519 AAAAinline]',
        '      ssh_authorized_keys_local: [keys]',
        '  groups:',
        '    - name: wheel',
        '      gid: 10',
        'storage:',
        '  directories:',
        '    - path: /srv/app',
        '      mode: 0750',
        '  links:',
        '    - path: /usr/local/bin/app',
        '      target: /srv/app/bin/app',
        '      hard: false',
        'systemd:',
        '  units:',
        '    - name: app.service',
        '      enabled: true',
        '      contents_local: app.service',
        '      dropins:',
        '        - name: 10-env.conf',
        '          contents: "[Service]\\nEnvironment=A=1\\n"',
        '    - name: old.service',
        '      mask: true',
      ].join('\n'),
    )
    expect(r.stderr).toBe('')
    const config = r.json()
    expect(config.passwd).toEqual({
      users: [
        {
          name: 'core',
          groups: ['wheel'],
          homeDir: '/home/core',
          sshAuthorizedKeys: ['ssh-ed25519 AAAAinline', 'ssh-ed25519 AAAAfromfile one', 'ssh-ed25519 AAAAfromfile two'],
        },
      ],
      groups: [{ name: 'wheel', gid: 10 }],
    })
    expect(config.storage.directories).toEqual([{ path: '/srv/app', mode: 0o750 }])
    expect(config.storage.links).toEqual([{ path: '/usr/local/bin/app', target: '/srv/app/bin/app', hard: false }])
    expect(config.systemd.units).toEqual([
      {
        name: 'app.service',
        enabled: true,
        contents: '[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n',
        dropins: [{ name: '10-env.conf', contents: '[Service]\nEnvironment=A=1\n' }],
      },
      { name: 'old.service', mask: true },
    ])
    await ignitionValidate(r.stdout)
  })

  it('warns about a mode written in decimal; --strict makes it an error', async () => {
    const text = 'variant: fcos\nversion: 1.4.0\nstorage:\n  files:\n    - path: /a\n      mode: 644\n'
    const warned = await butane(text)
    expect(warned.code).toBe(0)
    expect(warned.stderr).toMatch(/\$\.storage\.files\[0\]\.mode: unreasonable mode would be reasonable if specified in octal/)
    expect(warned.json().storage.files[0].mode).toBe(644)
    const strict = await butane(text, ['--strict'])
    expect(strict.code).toBe(2)
    expect(strict.stdout).toBe('')
    expect(strict.stderr).toMatch(/unreasonable mode .* at \$\.storage\.files\[0\]\.mode \(at .*in\.bu:6\)/)
  })

  it('bad input: exit 2, one line naming the field, nothing printed', async () => {
    const cases: [string, RegExp][] = [
      ['variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n    - paht: /a\n', /unknown key 'paht' at \$\.storage\.files\[0\]\.paht \(at .*in\.bu:5\)/],
      ['variant: fcos\nversion: 1.6.0\n', /Butane fcos 1\.6\.0 is not supported .*hint: supported: fcos 1\.0\.0/],
      ['variant: openshift\nversion: 4.14.0\n', /Butane openshift 4\.14\.0 is not supported/],
      ['version: 1.5.0\n', /error parsing variant; must be specified/],
      ['variant: fcos\nversion: 1.5\n', /error parsing version; must be a valid semver/],
      ['variant: fcos\nversion: 1.5.0\nstorage:\n  disks:\n    - device: /dev/vda\n', /unsupported field 'disks' at \$\.storage\.disks/],
      ['variant: fcos\nversion: 1.5.0\nboot_device:\n  layout: x86_64\n', /unsupported field 'boot_device'/],
      [
        'variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n    - path: /a\n      contents: { inline: a, local: file-1 }\n',
        /only one of the following can be set: inline, local, source/,
      ],
      [
        'variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n    - path: /a\n      contents: { local: ../../outside }\n',
        /local file path traverses outside the files directory/,
      ],
      ['variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n    - path: relative/a\n', /path not absolute at \$\.storage\.files\[0\]\.path/],
      [
        'variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n    - path: /etc/../a\n',
        /path is not fully simplified at \$\.storage\.files\[0\]\.path.*hint: write it like \/a\n/,
      ],
      [
        'variant: fcos\nversion: 1.5.0\nstorage:\n  directories:\n    - path: /srv//app/\n',
        /path is not fully simplified at \$\.storage\.directories\[0\]\.path.*write it like \/srv\/app\n/,
      ],
      [
        'variant: fcos\nversion: 1.5.0\nstorage:\n  links:\n    - path: /a/./b\n      target: /c\n',
        /path is not fully simplified at \$\.storage\.links\[0\]\.path/,
      ],
      ['variant: fcos\nversion: 1.4.0\nsystemd:\n  units:\n    - name: a.service\n      contents_local: app.service\n', /unknown key 'contents_local'/],
      ['variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n    - path: /a\n      mode: "0644"\n', /expected an integer, got string/],
      ['variant: fcos\nversion: 1.5.0\nstorage: [\n', /malformed YAML/],
      [
        'variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n    - path: /a\n      user: { id: 1, name: a }\n',
        /cannot set both id and name at \$\.storage\.files\[0\]\.user/,
      ],
      [
        'variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n    - path: /a\n      contents: { source: "https://x", verification: { hash: sha512-00 } }\n',
        /incorrect size for hash sum/,
      ],
      ['variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n    - path: /a\n  directories:\n    - path: /a\n', /duplicate path \/a/],
      ['variant: fcos\nversion: 1.5.0\nstorage:\n  links:\n    - path: /l\n      target: "/x\\0y"\n', /target contains a NUL byte/],
      [`variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n    - path: /${'n'.repeat(256)}\n`, /path has a name longer than 255 bytes/],
      ['variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n    - path: /a\n      contents: { local: "" }\n', /a local file path is empty/],
    ]
    for (const [text, message] of cases) {
      const r = await butane(text)
      expect(r.stdout, text).toBe('')
      expect(r.code, text).toBe(2)
      expect(r.stderr.trim().split('\n'), text).toHaveLength(1)
      expect(r.stderr, text).toMatch(message)
    }
    // Hostile sizes and shapes: deep nesting, an alias bomb, one file or the whole config too big.
    const deep = `variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n    - path: /a\n      x: ${'['.repeat(200)}${']'.repeat(200)}\n`
    const bomb = `variant: fcos\nversion: 1.5.0\na: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n`
    const big = (bytes: number) => `variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n    - path: /a\n      contents: { inline: ${'x'.repeat(bytes)} }\n`
    writeFileSync(join(ws.path, 'bu-files', 'quarter-mib'), 'y'.repeat(250 * 1024))
    const many = `variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n${Array.from({ length: 5 }, (_, i) => `    - path: /f${i}\n      contents: { local: quarter-mib }\n`).join('')}`
    for (const [text, message] of [
      [deep, /nest|deep/i],
      [bomb, /alias/i],
      [big(300 * 1024), /exceed the 262144-byte limit of one file/],
      [many, /more than 1048576 bytes of file contents/],
    ] as const) {
      const r = await butane(text)
      expect(r.stdout).toBe('')
      expect(r.code, r.stderr).toBe(2)
      expect(r.stderr.trim().split('\n')).toHaveLength(1)
      expect(r.stderr).toMatch(message)
    }
    const noDir = await server(['butane', join(ws.path, 'in.bu')], { input: '' })
    writeFileSync(join(ws.path, 'in.bu'), 'variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n    - path: /a\n      contents: { local: file-1 }\n')
    const withoutFilesDir = await server(['butane', join(ws.path, 'in.bu')])
    expect(withoutFilesDir.code).toBe(2)
    expect(withoutFilesDir.stderr).toMatch(/must be specified with --files-dir/)
    expect(noDir.code).toBe(2)
    const folder = await server(['butane', ws.path])
    expect(folder.code).toBe(2)
    expect(folder.stderr.trim().split('\n')).toHaveLength(1)
    expect(folder.stderr).toMatch(/is not a regular file/)
  }, 300_000)

  it("a local: file in a .prov/ or .git/ folder never goes to a machine, even with --files-dir at the workspace's root", async () => {
    mkdirSync(join(ws.path, '.prov', 'kms'), { recursive: true })
    writeFileSync(join(ws.path, '.prov', 'kms', 'identity-probe.txt'), 'AGE-SECRET-KEY-1NOTREAL\n')
    mkdirSync(join(ws.path, '.git'), { recursive: true })
    writeFileSync(join(ws.path, '.git', 'config'), '[core]\n')
    for (const [local, folder] of [
      ['.prov/kms/identity-probe.txt', '.prov'],
      ['.git/config', '.git'],
    ]) {
      writeFileSync(join(ws.path, 'root.bu'), `variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n    - path: /etc/x\n      contents: { local: ${local} }\n`)
      const r = await server(['butane', join(ws.path, 'root.bu'), '--files-dir', ws.path])
      expect(r.code, local).toBe(2)
      expect(r.stdout).toBe('')
      expect(r.stderr.trim().split('\n')).toHaveLength(1)
      expect(r.stderr).toMatch(new RegExp(`is in a \\${folder}/ folder, which never goes to a machine`))
      expect(r.stderr).not.toContain('AGE-SECRET-KEY')
    }
  })

  it('reads stdin when no file is given', async () => {
    const r = await server(['butane', '--pretty'], { input: 'variant: flatcar\nversion: 1.0.0\n' })
    expect(r.code).toBe(0)
    expect(r.stdout).toBe('{\n  "ignition": {\n    "version": "3.3.0"\n  }\n}\n')
  })
})

const provisionBlock = `
defaults:
  provision:
    users:
      - name: ops
        groups: [sudo]
        ssh_authorized_keys: [ssh-ed25519 AAAAdefaultkey ops@example]
    files:
      - path: /etc/motd
        contents: "managed by prov\\n"
servers:
  - name: web-01
    provision:
      users:
        - name: deploy
          groups: [sudo, app]
          shell: /bin/bash
          sudo: true
          ssh_authorized_keys: [ssh-ed25519 AAAAdeploykey deploy@example]
      groups:
        - name: app
      files:
        - path: /etc/app/env
          mode: 0600
          owner: deploy
          group: app
          contents: { secret: app/token }
        - path: /etc/app/banner
          source: files/banner.txt
        - path: /etc/motd
          contents: "web-01 by prov\\n"
      directories:
        - path: /srv/app
          owner: deploy
          mode: 0750
      links:
        - path: /usr/local/bin/app
          target: /srv/app/bin/app
      units:
        - name: app.service
          enabled: true
          contents: |
            [Unit]
            Description=app
            [Service]
            EnvironmentFile=/etc/app/env
            ExecStart=/bin/sleep infinity
            [Install]
            WantedBy=multi-user.target
          dropins:
            - name: 10-limits.conf
              contents: "[Service]\\nLimitNOFILE=4096\\n"
      commands:
        - echo first boot > /var/log/first-boot.log
  - name: cache-01
    provision:
      packages: [redis-server]
`

describe('prov-server userdata (provision:)', () => {
  beforeAll(() => {
    mkdirSync(join(ws.path, 'infra', 'dz'), { recursive: true })
    mkdirSync(join(ws.path, 'files'), { recursive: true })
    writeFileSync(join(ws.path, 'files', 'banner.txt'), 'welcome\n')
    writeFileSync(join(ws.path, 'infra', 'dz', 'servers.yaml'), provisionBlock)
  })

  it('renders Ignition that ignition-validate accepts; secrets masked; defaults merged by key', async () => {
    const r = await server(['userdata', 'web-01', '--infra', 'dz'], { env: { PROV_SECRET_APP_TOKEN: 'tok-s3cr3t' } })
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(r.stdout).not.toContain('tok-s3cr3t')
    const config = r.json()
    expect(config.ignition.version).toBe('3.3.0')
    expect(config.passwd.users.map((u: { name: string }) => u.name)).toEqual(['ops', 'deploy'])
    expect(config.passwd.groups).toEqual([{ name: 'app' }])
    const files = Object.fromEntries(config.storage.files.map((f: { path: string }) => [f.path, f]))
    expect(decodeSource(files['/etc/hostname'].contents.source, files['/etc/hostname'].contents.compression)).toBe('web-01\n')
    // The server's /etc/motd replaces the default's (merged by path).
    expect(decodeSource(files['/etc/motd'].contents.source)).toBe('web-01 by prov\n')
    expect(decodeSource(files['/etc/app/banner'].contents.source)).toBe('welcome\n')
    expect(decodeSource(files['/etc/app/env'].contents.source)).toBe('<secret app/token>')
    expect(files['/etc/app/env']).toMatchObject({ mode: 0o600, user: { name: 'deploy' }, group: { name: 'app' } })
    // 0600, 600, '0600' and 0o600 are one mode: YAML's own 0o literal is not read digit by digit.
    for (const written of ['600', "'0600'", '0o600']) {
      writeFileSync(join(ws.path, 'infra', 'dz', 'servers.yaml'), provisionBlock.replace('mode: 0600', `mode: ${written}`))
      const same = await server(['userdata', 'web-01', '--infra', 'dz'], { env: { PROV_SECRET_APP_TOKEN: 'tok-s3cr3t' } })
      expect(same.code, `${written}: ${same.stderr}`).toBe(0)
      expect(same.json().storage.files.find((f: { path: string }) => f.path === '/etc/app/env').mode, written).toBe(0o600)
    }
    writeFileSync(join(ws.path, 'infra', 'dz', 'servers.yaml'), provisionBlock)
    expect(decodeSource(files['/etc/sudoers.d/90-deploy'].contents.source)).toBe('deploy ALL=(ALL) NOPASSWD:ALL\n')
    expect(files['/etc/sudoers.d/90-deploy'].mode).toBe(0o440)
    const firstBootScript = decodeSource(files['/var/lib/prov/first-boot.sh'].contents.source, files['/var/lib/prov/first-boot.sh'].contents.compression)
    expect(firstBootScript).toContain('echo first boot > /var/log/first-boot.log')
    // Once, like cloud-init's runcmd: the stamp comes first, whatever the commands then do.
    expect(firstBootScript.startsWith('#!/bin/sh\ntouch /var/lib/prov/first-boot.done\n')).toBe(true)
    expect(config.systemd.units.map((u: { name: string }) => u.name)).toEqual(['app.service', 'prov-first-boot.service'])
    expect(config.storage.links).toEqual([{ path: '/usr/local/bin/app', target: '/srv/app/bin/app', overwrite: true }])
    await ignitionValidate(r.stdout)
  })

  it('plan records the fingerprint of each document and fails on a broken one before any machine boots', async () => {
    const env = { PROV_SECRET_APP_TOKEN: 'tok-s3cr3t' }
    const webOnly = provisionBlock.slice(0, provisionBlock.indexOf('  - name: cache-01'))
    writeFileSync(join(ws.path, 'infra', 'dz', 'servers.yaml'), webOnly)
    const plan = await server(['plan', '--infra', 'dz'], { env })
    expect(plan.code).toBe(0)
    expect(plan.stdout).not.toContain('tok-s3cr3t')
    const actions = plan.json().actions as { server: string; day_zero?: { format: string; fingerprint: string; source: string } }[]
    const web = actions.find((a) => a.server === 'web-01')?.day_zero
    expect(web).toMatchObject({ format: 'ignition', source: 'provision' })
    expect(web?.fingerprint).toMatch(/^sha256:[0-9a-f]{64}$/)
    // Secret values are not part of the fingerprint (a plan must not hash a secret).
    const again = await server(['plan', '--infra', 'dz'], { env: { PROV_SECRET_APP_TOKEN: 'other' } })
    expect(again.json().actions.find((a: { server: string }) => a.server === 'web-01').day_zero.fingerprint).toBe(web?.fingerprint)
    writeFileSync(join(ws.path, 'infra', 'dz', 'servers.yaml'), webOnly.replace('secret: app/token', 'secret: app/missing'))
    const missing = await server(['plan', '--infra', 'dz'], { env })
    expect(missing.code).toBe(5)
    expect(missing.stdout).toBe('')
    expect(missing.stderr).toMatch(/secret 'app\/missing' of \/etc\/app\/env does not exist/)
    writeFileSync(join(ws.path, 'infra', 'dz', 'servers.yaml'), provisionBlock)
  })

  it('--reveal puts secret values in only off a terminal, with a warning', async () => {
    const r = await server(['userdata', 'web-01', '--infra', 'dz', '--reveal'], { env: { PROV_SECRET_APP_TOKEN: 'tok-s3cr3t' } })
    expect(r.code).toBe(0)
    expect(r.stderr).toMatch(/holds secret values/)
    const files = Object.fromEntries(r.json().storage.files.map((f: { path: string }) => [f.path, f]))
    expect(decodeSource(files['/etc/app/env'].contents.source, files['/etc/app/env'].contents.compression)).toBe('tok-s3cr3t')
  })

  it('a binary secret reaches the file byte for byte, in Ignition and in cloud-init', async () => {
    // Not UTF-8 (0xff, 0xfe, a lone continuation byte), a NUL, no trailing newline.
    const blob = Buffer.from([0xff, 0xfe, 0x00, 0x80, 0xc3, 0x28, 0x41, 0x0a, 0x7f, 0xf0])
    expect((await runCli('prov-kms', ['keygen', '-q'], { env: ws.env, cwd: ws.path })).code).toBe(0)
    const stored = await runCli('prov-kms', ['secret', 'set', 'app/blob', '-q'], { env: ws.env, cwd: ws.path, input: blob })
    expect(stored.code, stored.stderr).toBe(0)
    writeFileSync(
      join(ws.path, 'infra', 'dz', 'servers.yaml'),
      provisionBlock.replace(
        '        - path: /etc/motd\n',
        '        - path: /etc/app/keytab\n          contents: { secret: app/blob }\n        - path: /etc/motd\n',
      ),
    )
    try {
      const ignition = await server(['userdata', 'web-01', '--infra', 'dz', '--reveal'], { env: { PROV_SECRET_APP_TOKEN: 'tok' } })
      expect(ignition.code, ignition.stderr).toBe(0)
      const file = ignition.json().storage.files.find((f: { path: string }) => f.path === '/etc/app/keytab')
      const match = /^data:([^,]*),(.*)$/s.exec(file.contents.source) as RegExpExecArray
      let bytes = match[1].endsWith(';base64') ? Buffer.from(match[2], 'base64') : Buffer.from(decodeURIComponent(match[2]), 'latin1')
      if (file.contents.compression === 'gzip') bytes = gunzipSync(bytes)
      expect(bytes.equals(blob), bytes.toString('hex')).toBe(true)
      await ignitionValidate(ignition.stdout)
      const cloud = await server(['userdata', 'web-01', '--infra', 'dz', '--reveal', '--format', 'cloud-init'], { env: { PROV_SECRET_APP_TOKEN: 'tok' } })
      expect(cloud.code, cloud.stderr).toBe(0)
      await cloudInitSchema(cloud.stdout)
      const written = (parseYaml(cloud.stdout).write_files as { path: string; encoding?: string; content: string }[]).find((f) => f.path === '/etc/app/keytab')
      expect(written?.encoding).toBe('b64')
      expect(Buffer.from(written?.content ?? '', 'base64').equals(blob)).toBe(true)
    } finally {
      writeFileSync(join(ws.path, 'infra', 'dz', 'servers.yaml'), provisionBlock)
    }
  }, 300_000)

  it('contents YAML cannot carry exactly (DEL, C1 controls, NEL, LS, PS) go base64 in cloud-config', async () => {
    writeFileSync(
      join(ws.path, 'infra', 'dz', 'servers.yaml'),
      provisionBlock.replace('contents: "web-01 by prov\\n"', 'contents: "del\\x7f nel\\x85 ls\\u2028 ps\\u2029 end\\n"'),
    )
    try {
      const cloud = await server(['userdata', 'web-01', '--infra', 'dz', '--format', 'cloud-init'], { env: { PROV_SECRET_APP_TOKEN: 'tok' } })
      expect(cloud.code, cloud.stderr).toBe(0)
      await cloudInitSchema(cloud.stdout)
      const motd = (parseYaml(cloud.stdout, { version: '1.1' }).write_files as { path: string; encoding?: string; content: string }[]).find(
        (f) => f.path === '/etc/motd',
      )
      expect(motd?.encoding).toBe('b64')
      expect(Buffer.from(motd?.content ?? '', 'base64').toString('utf8')).toBe('del\x7f nel\x85 ls\u2028 ps\u2029 end\n')
    } finally {
      writeFileSync(join(ws.path, 'infra', 'dz', 'servers.yaml'), provisionBlock)
    }
  })

  it('--out yaml and ndjson give the same data; a table is refused; no --out is the document itself', async () => {
    const env = { PROV_SECRET_APP_TOKEN: 'tok' }
    const plain = await server(['userdata', 'web-01', '--infra', 'dz'], { env })
    const asYaml = await server(['userdata', 'web-01', '--infra', 'dz', '--out', 'yaml'], { env })
    const asNdjson = await server(['userdata', 'web-01', '--infra', 'dz', '--out', 'ndjson'], { env })
    expect(asYaml.code, asYaml.stderr).toBe(0)
    expect(parseYaml(asYaml.stdout)).toEqual(plain.json())
    expect(asNdjson.stdout.trim().split('\n')).toHaveLength(1)
    expect(JSON.parse(asNdjson.stdout)).toEqual(plain.json())
    const cloud = await server(['userdata', 'web-01', '--infra', 'dz', '--format', 'cloud-init'], { env })
    const cloudYaml = await server(['userdata', 'web-01', '--infra', 'dz', '--format', 'cloud-init', '--out', 'yaml'], { env })
    expect(cloudYaml.stdout).toBe(cloud.stdout)
    const cloudJson = await server(['userdata', 'web-01', '--infra', 'dz', '--format', 'cloud-init', '--out', 'json'], { env })
    expect(cloudJson.json()).toEqual(parseYaml(cloud.stdout, { version: '1.1' }))
    const table = await server(['userdata', 'web-01', '--infra', 'dz', '--out', 'table'], { env })
    expect(table.code).toBe(2)
    expect(table.stdout).toBe('')
    expect(table.stderr.trim().split('\n')).toHaveLength(1)
    expect(table.stderr).toMatch(/a first-boot document has no table view/)
    const bu = 'variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n    - path: /a\n      contents: { inline: hello }\n'
    const buJson = await butane(bu)
    const buYaml = await butane(bu, ['--out', 'yaml'])
    expect(parseYaml(buYaml.stdout)).toEqual(buJson.json())
    expect((await butane(bu, ['--out', 'wide'])).code).toBe(2)
  }, 300_000)

  it('renders cloud-config that cloud-init schema accepts, for every Ignition version too', async () => {
    for (const name of ['web-01', 'cache-01']) {
      const r = await server(['userdata', name, '--infra', 'dz', '--format', 'cloud-init'], { env: { PROV_SECRET_APP_TOKEN: 'tok' } })
      expect(r.stderr).toBe('')
      expect(r.stdout.startsWith('#cloud-config\n')).toBe(true)
      await cloudInitSchema(r.stdout)
    }
    const cache = await server(['userdata', 'cache-01', '--infra', 'dz', '--format', 'cloud-init'])
    expect(cache.stdout).toMatch(/packages:\n\s*- redis-server/)
    const web = await server(['userdata', 'web-01', '--infra', 'dz', '--format', 'cloud-init'], { env: { PROV_SECRET_APP_TOKEN: 'tok' } })
    expect(web.stdout).toMatch(/- name: deploy/)
    expect(web.stdout).toMatch(/sudo: ALL=\(ALL\) NOPASSWD:ALL/)
    expect(web.stdout).toMatch(/permissions: "0600"/)
    expect(web.stdout).toMatch(/- - systemctl\n\s+- enable\n\s+- --now\n\s+- app.service/)
    for (const version of ['3.0.0', '3.1.0', '3.2.0', '3.4.0']) {
      writeFileSync(
        join(ws.path, 'infra', 'dz', 'servers.yaml'),
        provisionBlock.replace('  - name: web-01\n    provision:\n', `  - name: web-01\n    provision:\n      ignition_version: "${version}"\n`),
      )
      const r = await server(['userdata', 'web-01', '--infra', 'dz'], { env: { PROV_SECRET_APP_TOKEN: 'tok' } })
      expect(r.json().ignition.version).toBe(version)
      await ignitionValidate(r.stdout)
    }
    writeFileSync(join(ws.path, 'infra', 'dz', 'servers.yaml'), provisionBlock)
  })

  it('bad provision input: the exit code, one line naming the field, nothing printed', async () => {
    const cases: [string, string, number, RegExp][] = [
      [
        'group that does not exist',
        provisionBlock.replace('groups: [sudo, app]', 'groups: [sudo, nosuchgroup]'),
        3,
        /group 'nosuchgroup' of user 'deploy' does not exist .*provision\.users\.\d\.groups\.1/,
      ],
      [
        'source outside the workspace',
        provisionBlock.replace('source: files/banner.txt', 'source: /etc/passwd'),
        3,
        /file source '\/etc\/passwd' is outside the workspace/,
      ],
      ['source escaping with ..', provisionBlock.replace('source: files/banner.txt', 'source: ../outside'), 3, /outside the workspace/],
      [
        "the workspace's own state (.prov/, e.g. the KMS identity)",
        provisionBlock.replace('source: files/banner.txt', 'source: .prov/private-probe.txt'),
        3,
        /is in the workspace's \.prov\/ folder, which never goes to a machine/,
      ],
      ['a link into .prov/', provisionBlock.replace('source: files/banner.txt', 'source: files/id-link'), 3, /workspace's \.prov\/ folder/],
      ['relative file path', provisionBlock.replace('path: /etc/app/banner', 'path: etc/app/banner'), 3, /provision\.files\.1\.path.*an absolute path/],
      ...(['/etc/../app/banner', '/etc/./app/banner', '/etc//app/banner', '/etc/app/banner/'].map((path) => [
        `a path not in its simplest form (${path})`,
        provisionBlock.replace('path: /etc/app/banner', `path: ${path}`),
        3,
        /provision\.files\.1\.path.*no \. or \.\. parts/,
      ]) as [string, string, number, RegExp][]),
      [
        'a path with a control character',
        provisionBlock.replace('path: /etc/app/banner', 'path: "/etc/app/ban\\tner"'),
        3,
        /provision\.files\.1\.path.*without control characters/,
      ],
      [
        'a path with a name over 255 bytes',
        provisionBlock.replace('path: /etc/app/banner', `path: /etc/app/${'b'.repeat(256)}`),
        3,
        /provision\.files\.1\.path.*at most 255 bytes/,
      ],
      [
        'a link target that looks like an option is still a link (cloud-init gets ln --)',
        provisionBlock.replace('target: /srv/app/bin/app', 'target: -rf'),
        0,
        /^$/,
      ],
      ['a file where prov writes its own', provisionBlock.replace('path: /etc/app/banner', 'path: /etc/hostname'), 3, /\/etc\/hostname is given twice/],
      ['a link where a file is', provisionBlock.replace('path: /usr/local/bin/app\n', 'path: /etc/app/banner\n'), 3, /\/etc\/app\/banner is given twice/],
      ['unknown field', provisionBlock.replace('      directories:\n', '      directorys:\n'), 3, /unknown field|directorys/],
      ['mode that is not octal', provisionBlock.replace('mode: 0600', 'mode: 0689'), 3, /not octal|octal mode/],
      ['packages with Ignition', provisionBlock, 3, /provision\.packages is not supported with Ignition/],
      [
        'cloud-init on a local sandbox',
        provisionBlock.replace('  - name: web-01\n    provision:\n', '  - name: web-01\n    provision:\n      format: cloud-init\n'),
        3,
        /local sandbox, which applies Ignition at first boot, not cloud-init/,
      ],
      [
        'a source file over the per-file limit',
        provisionBlock.replace('source: files/banner.txt', 'source: files/huge.bin'),
        3,
        /more than the 262144-byte limit of one file/,
      ],
      [
        'contents over the per-file limit',
        provisionBlock.replace('source: files/banner.txt', `contents: ${'z'.repeat(300 * 1024)}`),
        3,
        /provision\.files\.\d\.contents/,
      ],
      [
        'secret that does not exist',
        provisionBlock.replace('secret: app/token', 'secret: app/missing'),
        5,
        /secret 'app\/missing' of \/etc\/app\/env does not exist/,
      ],
    ]
    writeFileSync(join(ws.path, 'files', 'huge.bin'), Buffer.alloc(300 * 1024, 1))
    mkdirSync(join(ws.path, '.prov'), { recursive: true })
    writeFileSync(join(ws.path, '.prov', 'private-probe.txt'), 'AGE-SECRET-KEY-1NOTREAL\n')
    symlinkSync('../.prov/private-probe.txt', join(ws.path, 'files', 'id-link'))
    for (const [what, text, code, message] of cases) {
      writeFileSync(join(ws.path, 'infra', 'dz', 'servers.yaml'), text)
      const name = what === 'packages with Ignition' ? 'cache-01' : 'web-01'
      if (code === 0) {
        const r = await server(['userdata', name, '--infra', 'dz', '--format', 'cloud-init'], { env: { PROV_SECRET_APP_TOKEN: 'tok' } })
        expect(r.code, r.stderr).toBe(0)
        expect(parseYaml(r.stdout, { version: '1.1' }).runcmd, what).toContainEqual(['ln', '-sfn', '--', '-rf', '/usr/local/bin/app'])
        continue
      }
      const r = await server(['userdata', name, '--infra', 'dz'], { env: { PROV_SECRET_APP_TOKEN: 'tok' } })
      expect(r.stdout, what).toBe('')
      expect(r.stderr.trim().split('\n'), what).toHaveLength(1)
      expect(r.stderr, what).toMatch(message)
      expect(r.code, what).toBe(code)
    }
    // The location is the line of the field itself, not the server's.
    const badGroup = provisionBlock.replace('groups: [sudo, app]', 'groups: [sudo, nosuchgroup]')
    writeFileSync(join(ws.path, 'infra', 'dz', 'servers.yaml'), badGroup)
    const located = await server(['userdata', 'web-01', '--infra', 'dz'])
    const line = badGroup.split('\n').findIndex((l) => l.includes('nosuchgroup')) + 1
    expect(located.stderr).toContain(`(at infra/dz/servers.yaml:${line} (provision.users.`)
    writeFileSync(
      join(ws.path, 'infra', 'dz', 'servers.yaml'),
      provisionBlock.replace('          source: files/banner.txt', '          source: files/none.txt'),
    )
    const missingSource = await server(['userdata', 'web-01', '--infra', 'dz'], { env: { PROV_SECRET_APP_TOKEN: 'tok' } })
    const sourceLine = provisionBlock.split('\n').findIndex((l) => l.includes('source: files/banner.txt')) + 1
    expect(missingSource.stderr).toContain(`(at infra/dz/servers.yaml:${sourceLine} (provision.files.1.source))`)
    writeFileSync(join(ws.path, 'infra', 'dz', 'servers.yaml'), provisionBlock)
    const tty = await server(['userdata', 'nosuch', '--infra', 'dz'])
    expect(tty.code).toBe(5)
    expect(tty.stderr).toMatch(/server 'nosuch' is not declared/)
  }, 300_000)

  it('a server described by a Butane file renders it; both provision: and butane: is refused', async () => {
    writeFileSync(
      join(ws.path, 'infra', 'dz', 'web.bu'),
      'variant: fcos\nversion: 1.4.0\nstorage:\n  files:\n    - path: /etc/motd\n      contents: { local: motd }\n',
    )
    writeFileSync(join(ws.path, 'infra', 'dz', 'motd'), 'from butane\n')
    writeFileSync(join(ws.path, 'infra', 'dz', 'servers.yaml'), 'servers:\n  - name: bu-01\n    butane: infra/dz/web.bu\n')
    const r = await server(['userdata', 'bu-01', '--infra', 'dz'])
    expect(r.stderr).toBe('')
    expect(decodeSource(r.json().storage.files[0].contents.source)).toBe('from butane\n')
    await ignitionValidate(r.stdout)
    const asCloud = await server(['userdata', 'bu-01', '--infra', 'dz', '--format', 'cloud-init'])
    expect(asCloud.code).toBe(2)
    expect(asCloud.stderr).toMatch(/renders to Ignition only/)
    writeFileSync(join(ws.path, 'infra', 'dz', 'servers.yaml'), 'servers:\n  - name: bu-01\n    butane: infra/dz/web.bu\n    provision: { hostname: x }\n')
    const both = await server(['userdata', 'bu-01', '--infra', 'dz'])
    expect(both.code).toBe(3)
    expect(both.stderr).toMatch(/both provision: and butane:/)
    writeFileSync(join(ws.path, 'infra', 'dz', 'servers.yaml'), provisionBlock)
  })
})
