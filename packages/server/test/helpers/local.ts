import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect } from 'vitest'
import { runCli } from '../../../../tests/helpers/cli'
import { prerequisitesMet, sandboxPrerequisites } from '../../../../tests/helpers/prerequisites'

export { isRoot } from '../../../../tests/helpers/prerequisites'

/**
 * `describe` for tests that need real sandboxes: without the prerequisites the file is skipped
 * with the reason printed locally, and fails naming the reason when CI is set.
 */
export function describeSandbox(title: string, options: { timeout?: number }, body: () => void): void {
  if (prerequisitesMet(title, sandboxPrerequisites)) describe(title, options, body)
  else describe.skip(title, body)
}

/** Points a workspace's local provider at its own subnet and bridge (tests never share one). */
export function useSubnet(workspacePath: string, subnet: string, bridge: string, nat = true): void {
  const file = join(workspacePath, 'prov.config.yaml')
  const text = readFileSync(file, 'utf8')
  const local = `  local:\n    subnet: ${subnet}\n    bridge: ${bridge}\n    nat: ${nat}\n`
  let updated: string
  if (/subnet: /.test(text)) {
    updated = text
      .replace(/subnet: [\d./]+/, `subnet: ${subnet}`)
      .replace(/bridge: \S+/, `bridge: ${bridge}`)
      .replace(/nat: \S+/, `nat: ${nat}`)
  } else if (/^providers:\n/m.test(text)) updated = text.replace(/^providers:\n/m, `providers:\n${local}`)
  else updated = `${text}\nproviders:\n${local}`
  writeFileSync(file, updated)
}

/**
 * A workspace outside /tmp (under /var/lib), so a test can show that a sandbox does not see it:
 * `cleanup()` removes it. Registry and system config stay in the same private folder.
 */
export async function workspaceOutsideTmp(name: string) {
  mkdirSync('/var/lib/prov-e2e', { recursive: true, mode: 0o700 })
  const root = mkdtempSync('/var/lib/prov-e2e/ws-')
  const env: Record<string, string | undefined> = {
    XDG_CONFIG_HOME: join(root, 'xdg'),
    PROV_SYSTEM_CONFIG_DIR: join(root, 'etc'),
    PROV_ENV: undefined,
    PROV_WORKSPACE: undefined,
  }
  const path = join(root, name)
  const result = await runCli('prov', ['workspace', 'init', name, '--path', path, '-q'], { env, cwd: root })
  if (result.code !== 0) throw new Error(`workspace init failed: ${result.stderr}`)
  return {
    root,
    path,
    env: { ...env, PROV_WORKSPACE: path },
    cleanup: () => {
      rmSync(root, { recursive: true, force: true })
      try {
        rmdirSync('/var/lib/prov-e2e')
      } catch {
        // other runs still use it
      }
    },
  }
}

const run = (file: string, args: string[]) => spawnSync(file, args, { encoding: 'utf8' })

export const netnsWith = (prefix: string) =>
  run('ip', ['netns', 'list'])
    .stdout.split('\n')
    .map((l) => l.split(' ')[0])
    .filter((n) => n.startsWith(`${prefix}-`))

export const linksWith = (prefix: string) =>
  run('ip', ['-o', 'link', 'show'])
    .stdout.split('\n')
    .map((l) => l.split(': ')[1]?.split('@')[0])
    .filter((n): n is string => !!n && n.startsWith(prefix))

export const mountsUnder = (dir: string) =>
  readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .filter((l) => l.includes(dir))

/**
 * Processes of sandboxes whose disks live in `dir`: each sandbox's launcher has the layers under
 * `dir` bound in its mount table; the sandbox's processes are its descendants.
 */
export function processesRootedIn(dir: string): string[] {
  const parents = new Map<string, string>()
  const found = new Set<string>()
  for (const pid of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
      parents.set(pid, stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      if (readFileSync(`/proc/${pid}/mountinfo`, 'utf8').includes(` ${dir}/`)) found.add(pid)
    } catch {
      // exited or not ours to read
    }
  }
  for (let grew = true; grew; ) {
    grew = false
    for (const [pid, parent] of parents) {
      if (!found.has(pid) && found.has(parent)) {
        found.add(pid)
        grew = true
      }
    }
  }
  return [...found]
}

/** cgroup folders of sandboxes on a bridge (netns names start with the bridge), in every hierarchy. */
export function cgroupsWith(prefix: string): string[] {
  const found: string[] = []
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const fields = line.split(' ')
    const fsType = fields[fields.indexOf('-') + 1]
    if (fsType !== 'cgroup' && fsType !== 'cgroup2') continue
    const parent = join(fields[4], 'prov')
    if (!existsSync(parent)) continue
    for (const entry of readdirSync(parent)) if (entry.startsWith(`${prefix}-`)) found.push(join(parent, entry))
  }
  return found
}

/**
 * The end of a sandbox suite, also after a failed test: deletes the workspace's servers through
 * prov-server, runs `also` (e.g. removing images the suite built); with `verify` (the default)
 * nothing of the servers may be left (namespaces, processes, cgroups); the bridge's leftovers and
 * the workspace are removed whatever happened.
 */
export async function tearDownSandboxes(
  ws: { path: string; env: Record<string, string | undefined>; cleanup: () => void } | undefined,
  bridge: string,
  options: { verify?: boolean; also?: () => Promise<unknown> } = {},
): Promise<void> {
  if (!ws) return
  try {
    const deleted = runCli('prov-server', ['delete', '--all', '--yes', '-q'], { env: ws.env, cwd: ws.path, timeoutMs: 300_000 })
    await (options.verify === false ? deleted.catch(() => undefined) : deleted)
    await options.also?.()
    if (options.verify !== false) {
      expect(netnsWith(bridge)).toEqual([])
      expect(processesRootedIn(ws.path)).toEqual([])
      expect(cgroupsWith(bridge)).toEqual([])
    }
  } finally {
    cleanupPrefix(bridge)
    ws.cleanup()
  }
}

/**
 * Safety net: removes every namespace, link, cgroup and NAT rule with the prefix, even after a
 * failed test. Processes inside the namespaces are killed first.
 */
export function cleanupPrefix(bridge: string): void {
  for (const ns of netnsWith(bridge)) {
    const pids = run('ip', ['netns', 'pids', ns]).stdout.split(/\s+/).filter(Boolean)
    for (const pid of pids) {
      try {
        process.kill(Number(pid), 'SIGKILL')
      } catch {
        // gone
      }
    }
    run('ip', ['netns', 'del', ns])
  }
  for (const link of linksWith(bridge)) run('ip', ['link', 'del', link])
  for (const dir of cgroupsWith(bridge)) {
    for (let i = 0; i < 50 && existsSync(dir); i++) {
      try {
        rmdirSync(dir)
      } catch {
        spawnSync('sleep', ['0.05'])
      }
    }
  }
  for (const table of [['-t', 'nat'], []]) {
    const rules = run('iptables', ['-w', ...table, '-S']).stdout.split('\n')
    for (const rule of rules.filter((r) => r.includes(`prov:${bridge}`) && r.startsWith('-A '))) {
      const args =
        rule
          .slice(3)
          .match(/"[^"]*"|\S+/g)
          ?.map((a) => a.replace(/^"|"$/g, '')) ?? []
      run('iptables', ['-w', ...table, '-D', ...args])
    }
  }
}

export function systemSsh(workspacePath: string, ip: string, command: string, port = 22, user = 'root') {
  return spawnSync(
    'ssh',
    [
      '-i',
      join(workspacePath, '.prov/ssh/id_ed25519'),
      '-p',
      String(port),
      '-o',
      'StrictHostKeyChecking=yes',
      '-o',
      `UserKnownHostsFile=${join(workspacePath, '.prov/known_hosts')}`,
      '-o',
      'BatchMode=yes',
      '-o',
      'ConnectTimeout=10',
      `${user}@${ip}`,
      command,
    ],
    { encoding: 'utf8', timeout: 60_000 },
  )
}

export const sh = (command: string) => execFileSync('sh', ['-c', command], { encoding: 'utf8' })
