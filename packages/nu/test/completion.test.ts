import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { binDir, runCli, tempWorkspace } from '../../../tests/helpers/cli'
import { NU_VERSIONS } from '../../../tests/helpers/tools'
import { runNu } from './helpers'

type Ws = Awaited<ReturnType<typeof tempWorkspace>>
let ws: Ws
const scripts: Record<string, string> = {}

/** The shells come from Debian (scripts/setup.sh); a missing one fails the run in CI. */
function shell(name: 'bash' | 'zsh' | 'fish'): string {
  const found = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).stdout.trim()
  if (!found) throw new Error(`${name} is not installed: run scripts/setup.sh`)
  return found
}

beforeAll(async () => {
  ws = await tempWorkspace('compws', 'minimal')
  // Two servers in the workspace state (what `prov-server create` records).
  mkdirSync(join(ws.path, '.prov'), { recursive: true })
  const server = (name: string) => ({ schema: 'prov.server/v1', name, provider: 'ssh', status: 'running', hostname: name, ip_address: '10.0.0.1' })
  writeFileSync(
    join(ws.path, '.prov/servers.json'),
    JSON.stringify({ version: 1, servers: { 'web-01': server('web-01'), 'db-01': server('db-01') }, provider_data: {} }),
  )
  for (const kind of ['bash', 'zsh', 'fish', 'nu']) {
    const r = await runCli('prov', ['completion', kind], { env: ws.env, cwd: ws.path })
    expect(r.code, r.stderr).toBe(0)
    scripts[kind] = join(ws.root, `prov.${kind}`)
    writeFileSync(scripts[kind], r.stdout)
  }
})
afterAll(() => ws?.cleanup())

const env = () => ({ ...process.env, ...ws.env, PATH: `${binDir}:${process.env.PATH}` }) as NodeJS.ProcessEnv

function run(program: string, args: string[]): string {
  const r = spawnSync(program, args, { env: env(), cwd: ws.path, encoding: 'utf8' })
  expect(r.status, r.stderr).toBe(0)
  return r.stdout
}

describe('bash', () => {
  it('registers the completion for prov and every tool', () => {
    const out = run(shell('bash'), ['-c', `source <(prov completion bash); complete -p prov prov-server prov-taskserv prov-kms prov-oci prov-orch`])
    for (const program of ['prov', 'prov-server', 'prov-taskserv', 'prov-kms', 'prov-oci', 'prov-orch']) {
      expect(out).toContain(`complete -o default -F _prov_complete ${program}\n`)
    }
  })

  /** What bash would offer for a command line ending in the last word. */
  const complete = (...words: string[]) => {
    const script = `source ${scripts.bash}; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _prov_complete; printf '%s\\n' "\${COMPREPLY[@]}"`
    return run(shell('bash'), ['-c', script]).split('\n').filter(Boolean)
  }

  it('completes subcommands, flags and their values from the command definitions', () => {
    expect(complete('prov', '')).toEqual(expect.arrayContaining(['workspace', 'config', 'deps', 'completion', 'server', 'taskserv', 'kms', 'oci', 'orch']))
    expect(complete('prov', 'server', '')).toEqual(expect.arrayContaining(['plan', 'apply', 'list', 'delete', 'exec']))
    expect(complete('prov-server', 'li')).toEqual(['list'])
    expect(complete('prov-server', 'list', '--pr')).toEqual(['--provider'])
    expect(complete('prov', 'kms', 'secret', '')).toEqual(['set', 'get', 'list', 'rm'])
    expect(complete('prov', 'server', 'list', '--out', '')).toEqual(['json', 'ndjson', 'yaml', 'table', 'wide'])
    expect(complete('prov', 'completion', '')).toEqual(['bash', 'zsh', 'fish', 'nu'])
    // A flag's value is not mistaken for a subcommand.
    expect(complete('prov', '-w', 'compws', 'server', 'list', '--w')).toEqual(['--workspace'])
  })

  it('completes names from the workspace: servers, taskservs, workspaces', () => {
    expect(complete('prov', 'server', 'info', '')).toEqual(['db-01', 'web-01'])
    expect(complete('prov-server', 'delete', 'w')).toEqual(['web-01'])
    expect(complete('prov', 'taskserv', 'install', 're')).toEqual(['redis'])
    expect(complete('prov', 'workspace', 'use', '')).toEqual(['compws'])
    expect(complete('prov', 'server', 'list', '--workspace', '')).toEqual(['compws'])
    // Before the subcommand too: global options go anywhere.
    expect(complete('prov', '-w', '')).toEqual(['compws'])
    expect(complete('prov', 'server', '--workspace', '')).toEqual(['compws'])
    expect(complete('prov', '-w', 'compws', 'server', '')).toEqual(expect.arrayContaining(['plan', 'list']))
  })
})

describe('zsh', () => {
  it('parses, and offers subcommands, flags and names', () => {
    run(shell('zsh'), ['-n', scripts.zsh])
    // compadd and _describe exist only inside a completion widget: stand-ins print what they get.
    const probe = (words: string[]) =>
      run(shell('zsh'), [
        '-f',
        '-c',
        `source ${scripts.zsh}
_describe() { local arr=\${@[-1]}; print -l -- \${(P)arr%%:*} }
compadd() { [[ $1 == -a ]] && print -l -- \${(P)2} }
_files() { print -- _files }
words=(${words.map((w) => `'${w}'`).join(' ')}); CURRENT=${words.length}; _prov`,
      ])
        .split('\n')
        .filter(Boolean)
    expect(probe(['prov', 'server', ''])).toEqual(expect.arrayContaining(['plan', 'list', 'exec']))
    expect(probe(['prov-server', 'list', '--'])).toEqual(expect.arrayContaining(['--provider', '--workspace', '--out']))
    expect(probe(['prov', 'server', 'info', ''])).toEqual(['db-01', 'web-01'])
    expect(probe(['prov', 'server', 'list', '-o', ''])).toEqual(['json', 'ndjson', 'yaml', 'table', 'wide'])
    expect(probe(['prov', '-w', ''])).toEqual(['compws'])
  })
})

describe('fish', () => {
  it('parses, and offers subcommands, flags and names (prov-server as prov server)', () => {
    run(shell('fish'), ['-n', scripts.fish])
    const complete = (line: string) =>
      run(shell('fish'), ['-c', `source ${scripts.fish}; complete -C ${JSON.stringify(line)}`])
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split('\t')[0])
    expect(complete('prov server li')).toEqual(['list'])
    expect(complete('prov-server list --pr')).toEqual(['--provider'])
    expect(complete('prov-taskserv install re')).toEqual(['redis'])
    expect(complete('prov server info ')).toEqual(['db-01', 'web-01'])
    expect(complete('prov -w ')).toEqual(['compws'])
  })
})

describe.each(NU_VERSIONS)('Nushell %s externs', (version) => {
  it('give the plain binaries help and typed flags', async () => {
    const r = await runNu(version, `source ${scripts.nu}; help prov-server list`, { plugin: false, env: { ...ws.env, PATH: env().PATH }, cwd: ws.path })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/--provider <string>: Only servers of this provider/)
    expect(r.stdout).toMatch(/-w, --workspace <string>/)
    const names = await runNu(version, `source ${scripts.nu}; nu-complete prov servers | to json --raw`, {
      plugin: false,
      env: { ...ws.env, PATH: env().PATH },
      cwd: ws.path,
    })
    expect(JSON.parse(names.stdout)).toEqual(['db-01', 'web-01'])
  })

  it('leave the plugin its prov commands when both are loaded', async () => {
    expect(readFileSync(scripts.nu, 'utf8')).not.toMatch(/export extern "prov /)
    const both = await runNu(
      version,
      `source ${scripts.nu}; [(prov config show | describe) (help prov-server list | str contains '--provider')] | to json --raw`,
      {
        env: { ...ws.env, PATH: env().PATH },
        cwd: ws.path,
      },
    )
    expect(both.code, both.stderr).toBe(0)
    const [described, externHelp] = JSON.parse(both.stdout) as [string, boolean]
    expect(described).toMatch(/^record/)
    expect(externHelp).toBe(true)
  })
})

describe('prov completion values', () => {
  it('lists names one per line and refuses an unknown kind', async () => {
    const servers = await runCli('prov', ['completion', 'values', 'servers'], { env: ws.env, cwd: ws.path })
    expect(servers.stdout).toBe('db-01\nweb-01\n')
    // An explicit --out gives data; the configured output.format does not change the lines scripts read.
    const json = await runCli('prov', ['completion', 'values', 'servers', '--out', 'json'], { env: ws.env, cwd: ws.path })
    expect(json.json()).toEqual(['db-01', 'web-01'])
    const configured = await runCli('prov', ['completion', 'values', 'servers'], { env: { ...ws.env, PROV_OUTPUT__FORMAT: 'yaml' }, cwd: ws.path })
    expect(configured.stdout).toBe('db-01\nweb-01\n')
    const bad = await runCli('prov', ['completion', 'values', 'hosts'], { env: ws.env, cwd: ws.path })
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/unknown kind 'hosts'.*hint: use one of servers, taskservs/)
    const none = await runCli('prov', ['completion', 'fishy'], { env: ws.env })
    expect(none.code).toBe(2)
    expect(none.stderr).toMatch(/fish/)
  })
})

describe('hostile names in the workspace', () => {
  // Folder and state names nobody validated: command substitution, backticks, escapes, newlines.
  const hostileInfras = ['$(touch $HOME/inj-dollar)', '`touch $HOME/inj-tick`', 'red\x1b[31mink', 'two\nlines', 'var-$HOME']
  const hostileServers = ['$(touch $HOME/inj-server)', 'esc\x1b]0;title\x07', 'tab\there']
  let home: string

  beforeAll(() => {
    home = join(ws.root, 'home')
    mkdirSync(home, { recursive: true })
    for (const name of [...hostileInfras, 'edge']) mkdirSync(join(ws.path, 'infra', name), { recursive: true })
    const server = (name: string) => ({ schema: 'prov.server/v1', name, provider: 'ssh', status: 'running', hostname: 'h', ip_address: '10.0.0.1' })
    const names = ['web-01', 'db-01', ...hostileServers]
    writeFileSync(
      join(ws.path, '.prov/servers.json'),
      JSON.stringify({ version: 1, servers: Object.fromEntries(names.map((n) => [n, server(n)])), provider_data: {} }),
    )
  })

  const hostileEnv = () => ({ ...env(), HOME: home })
  const injected = () => ['inj-dollar', 'inj-tick', 'inj-server'].filter((f) => existsSync(join(home, f)))

  it('prov completion values keeps only valid names, as plain lines', async () => {
    const infras = await runCli('prov', ['completion', 'values', 'infras'], { env: { ...ws.env, HOME: home }, cwd: ws.path })
    expect(infras.code, infras.stderr).toBe(0)
    expect(infras.stdout.split('\n').filter(Boolean)).toContain('edge')
    expect(infras.stdout).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f$`]/)
    const servers = await runCli('prov', ['completion', 'values', 'servers'], { env: { ...ws.env, HOME: home }, cwd: ws.path })
    expect(servers.stdout).toBe('db-01\nweb-01\n')
  })

  it('no shell runs code from them while completing', () => {
    const bash = spawnSync(
      shell('bash'),
      [
        '-c',
        `source ${scripts.bash}; COMP_WORDS=(prov server plan --infra ""); COMP_CWORD=4; _prov_complete; printf '%s\\n' "\${COMPREPLY[@]}"; COMP_WORDS=(prov server info ""); COMP_CWORD=3; _prov_complete; printf '%s\\n' "\${COMPREPLY[@]}"`,
      ],
      { env: hostileEnv(), cwd: ws.path, encoding: 'utf8' },
    )
    expect(bash.status, bash.stderr).toBe(0)
    expect(bash.stdout.split('\n').filter(Boolean)).toEqual(expect.arrayContaining(['edge', 'db-01', 'web-01']))
    expect(bash.stdout).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f$`]/)
    const zsh = spawnSync(
      shell('zsh'),
      [
        '-f',
        '-c',
        `source ${scripts.zsh}
compadd() { [[ $1 == -a ]] && print -l -- \${(P)2} }
words=(prov server plan --infra ''); CURRENT=5; _prov`,
      ],
      { env: hostileEnv(), cwd: ws.path, encoding: 'utf8' },
    )
    expect(zsh.stdout.split('\n').filter(Boolean)).toContain('edge')
    expect(zsh.stdout).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f$`]/)
    const fish = spawnSync(shell('fish'), ['-c', `source ${scripts.fish}; complete -C 'prov server plan --infra '; complete -C 'prov server info '`], {
      env: hostileEnv(),
      cwd: ws.path,
      encoding: 'utf8',
    })
    expect(fish.stdout.split('\n').map((l) => l.split('\t')[0])).toEqual(expect.arrayContaining(['edge', 'db-01']))
    expect(fish.stdout).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f$`]/)
    expect(injected()).toEqual([])
  })
})
