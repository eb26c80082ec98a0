// The cross-provider batch of docs/prov-orch.md, taken from the page itself: the workflow is valid
// for prov-orch (validate, run --check), every provider step is named after a provider
// prov-server has and creates a server the page's servers.yaml declares on that provider, and
// the service steps wait for the servers they install on.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { runCli, tempWorkspace } from '../../../tests/helpers/cli'
import { devEnv, repoRoot } from './helpers'

interface DeclaredServer {
  name: string
  provider: string
  labels?: Record<string, string>
}
interface CompiledStep {
  id: string
  run: { argv?: string[] }
  deps: string[]
  rollback?: { argv?: string[] }
}

const SECTION = '## Example: a batch across providers'
const INFRA = 'multi-cloud'

/** The YAML blocks of the page's section, in order. */
function exampleBlocks(): string[] {
  const page = readFileSync(join(repoRoot, 'docs', 'prov-orch.md'), 'utf8')
  const start = page.indexOf(SECTION)
  if (start < 0) throw new Error(`docs/prov-orch.md has no section '${SECTION}'`)
  const end = page.indexOf('\n## ', start + SECTION.length)
  const section = page.slice(start, end < 0 ? undefined : end)
  return [...section.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1])
}

let ws: Awaited<ReturnType<typeof tempWorkspace>>
let servers: DeclaredServer[]
let workflowFile: string
const orch = (args: string[]) => runCli('prov-orch', args, { env: { ...ws.env, ...devEnv }, cwd: ws.path })

beforeAll(async () => {
  const [serversYaml, workflowYaml] = exampleBlocks()
  ws = await tempWorkspace('multi-cloud', 'minimal')
  mkdirSync(join(ws.path, 'infra', INFRA), { recursive: true })
  writeFileSync(join(ws.path, 'infra', INFRA, 'servers.yaml'), serversYaml)
  servers = (parse(serversYaml) as { servers: DeclaredServer[] }).servers
  workflowFile = join(ws.path, 'multi-cloud.yaml')
  writeFileSync(workflowFile, workflowYaml)
})

afterAll(() => ws?.cleanup())

describe('the cross-provider batch example of docs/prov-orch.md', () => {
  it('validates; each provider step creates the page servers of that provider and deletes them on rollback', async () => {
    const validated = await orch(['validate', workflowFile])
    expect(validated.code, validated.stderr).toBe(0)
    const steps = validated.json<{ steps: CompiledStep[] }>().steps
    const known = await runCli('prov-server', ['providers'], { env: ws.env, cwd: ws.path })
    expect(known.code, known.stderr).toBe(0)
    const providerNames = known.json<{ name: string }[]>().map((p) => p.name)

    const creating = steps.filter((s) => s.run.argv?.[0] === 'prov-server' && s.run.argv[1] === 'create')
    expect(creating.map((s) => s.id).sort()).toEqual(['aws', 'hcloud', 'local', 'upcloud'])
    for (const step of creating) {
      expect(providerNames).toContain(step.id)
      const argv = step.run.argv as string[]
      expect(argv.slice(-2)).toEqual(['--infra', INFRA])
      const names = argv.slice(2, -2)
      expect(names.length, step.id).toBeGreaterThan(0)
      for (const name of names) expect(servers.find((s) => s.name === name)?.provider, `${step.id}: ${name}`).toBe(step.id)
      // Every server of that provider is made by its step, and the rollback deletes exactly those.
      expect(servers.filter((s) => s.provider === step.id).map((s) => s.name)).toEqual(names)
      expect(step.rollback?.argv).toEqual(['prov-server', 'delete', ...names, '--yes'])
      expect(step.deps).toEqual([])
    }
  })

  it('service steps wait for every step that makes a server they install on', async () => {
    const steps = (await orch(['validate', workflowFile])).json<{ steps: CompiledStep[] }>().steps
    const creatorOf = (name: string) => steps.find((s) => s.run.argv?.[1] === 'create' && s.run.argv.includes(name))?.id
    const services = steps.filter((s) => s.run.argv?.[0] === 'prov-taskserv')
    expect(services.map((s) => s.id)).toEqual(['database', 'web'])
    for (const step of services) {
      const argv = step.run.argv as string[]
      const where = argv.indexOf('--where')
      const named = argv.indexOf('--servers')
      const targets =
        where >= 0
          ? servers.filter((s) => {
              const [key, value] = argv[where + 1].split('=')
              return s.labels?.[key] === value
            })
          : servers.filter((s) => argv[named + 1].split(',').includes(s.name))
      expect(targets.length, step.id).toBeGreaterThan(0)
      for (const target of targets) expect(step.deps, `${step.id} -> ${target.name}`).toContain(creatorOf(target.name))
    }
  })

  it('run --check previews it and starts nothing', async () => {
    const checked = await orch(['run', workflowFile, '--check'])
    expect(checked.code, checked.stderr).toBe(0)
    expect(checked.stderr).toMatch(/--check: workflow 'multi_cloud_deployment' \(6 steps\) would run; nothing was started/)
    expect(existsSync(join(ws.path, '.prov', 'orch.db'))).toBe(false)
    expect(existsSync(join(ws.path, '.prov', 'servers.json'))).toBe(false)
  })
})
