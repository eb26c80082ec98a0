import { spawnSync } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { binDir, repoRoot, runCli, tempEnv } from './helpers/cli'
import { nuPath } from './helpers/tools'

/*
 * Every shell block in README.md and docs/*.md runs, in a prepared workspace, exactly as written
 * (bash -euo pipefail) — or it is marked illustrative with a reason: in the page itself with
 * `<!-- illustrative: REASON -->` right before the block, or below for pages other lanes keep.
 * A block is a fence tagged bash, sh, shell or console.
 */

/** Blocks of pages kept by other lanes that cannot run here, by page and first line, with the reason. */
const illustrativeElsewhere: Record<string, string> = {
  "docs/nushell.md: nu -n --plugins '[/path/to/prov/bin/nu_plugin_prov]' -c 'prov config show | get debug.enabled'":
    'the path of your checkout (/path/to/prov) is a placeholder',
  'docs/prov-kms.md: prov-kms keygen': 'placeholders ($TOKEN, age1..., pw.txt) and a Vault/SOPS setup',
  'docs/prov-kms.md: prov-kms secret set db/password -': 'the first line reads the value from a terminal or a pipe',
  'docs/prov-oci.md: openssl genpkey -algorithm ed25519 -out sign.pem && openssl pkey -in sign.pem -pubout -out sign.pub':
    'needs a registry on 127.0.0.1:5000 holding the artifact',
  'docs/prov-oci.md: prov-oci package extensions/taskservs/redis': 'needs a registry on 127.0.0.1:5000 and a local sandbox server (root)',
  'docs/prov-orch-api.md: curl -s --unix-socket .prov/orch.sock -XPOST http://localhost/v1/workflows \\':
    'needs a running prov-orch serve and its workflow ids',
  'docs/prov-orch.md: prov-orch run deploy.yaml                    # in process, no server: scripts and CI; exit code of the workflow':
    'an overview with placeholders (wf-..., a PostgreSQL URL)',
  'docs/prov-orch.md: prov-orch serve &                                   # in the workspace: .prov/orch.sock + 127.0.0.1:9090':
    'needs a running orchestrator and local sandbox servers (root)',
  'docs/prov-server.md: prov-server list --status running | prov-server exec -- uptime': 'needs running servers',
  'docs/prov-server.md: # Create, check, and fan out.': 'creates local sandbox servers (root)',
  'docs/prov-taskserv.md: prov-server list | prov-taskserv install redis          # every listed server gets a running redis':
    'installs on running servers over SSH',
  'docs/prov-taskserv.md: # Install redis where the servers run, keep only the failures': 'installs on running servers over SSH',
  'docs/taskserv-authoring.md: . "$PROV_LIB/service.sh"': 'lines of a taskserv script: they run on a server, inside install.sh',
}

interface Block {
  page: string
  line: number
  code: string
  illustrative?: string
}

function shellBlocks(page: string): Block[] {
  const text = readFileSync(join(repoRoot, page), 'utf8')
  const blocks: Block[] = []
  const fence = /```(bash|sh|shell|console)\n([\s\S]*?)```/g
  for (let match = fence.exec(text); match; match = fence.exec(text)) {
    const before = text.slice(0, match.index)
    const marker = /<!--\s*illustrative:\s*([^>]*?)\s*-->\s*$/.exec(before)
    const code = match[2]
    const first = code
      .split('\n')[0]
      .replace(/\s+#.*$/, '')
      .trim()
    const elsewhere = Object.entries(illustrativeElsewhere).find(
      ([key]) => key === `${page}: ${first}` || key.replace(/\s+#.*$/, '').trim() === `${page}: ${first}`,
    )
    blocks.push({ page, line: before.split('\n').length, code, illustrative: marker?.[1] ?? elsewhere?.[1] })
  }
  return blocks
}

const pages = [
  'README.md',
  ...readdirSync(join(repoRoot, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .sort()
    .map((f) => `docs/${f}`),
]
const blocks = pages.flatMap(shellBlocks)

describe('docs: every shell block runs or says why it cannot', () => {
  it('finds the blocks', () => {
    expect(blocks.length).toBeGreaterThan(10)
  })

  for (const block of blocks) {
    const name = `${block.page}:${block.line}`
    if (block.illustrative) {
      it(`${name} is illustrative: ${block.illustrative}`, () => {
        expect(block.illustrative?.length).toBeGreaterThan(5)
      })
      continue
    }
    it(`${name} runs as written`, async () => {
      const t = tempEnv('prov-docs-')
      try {
        // The prepared workspace: the full template (infra demo, environments), a key, a secret.
        const ws = join(t.root, 'demo')
        const init = await runCli('prov', ['workspace', 'init', 'demo', '--template', 'full', '--path', ws, '-q'], { env: t.env })
        expect(init.code, init.stderr).toBe(0)
        expect((await runCli('prov-kms', ['keygen', '-q'], { env: t.env, cwd: ws })).code).toBe(0)
        const cwd = block.code.includes('prov workspace init') ? join(t.root, 'elsewhere') : ws
        mkdirSync(cwd, { recursive: true })
        const result = spawnSync('bash', ['-euo', 'pipefail', '-c', block.code], {
          cwd,
          env: {
            ...process.env,
            ...Object.fromEntries(Object.entries(t.env).filter(([, v]) => v !== undefined)),
            PATH: `${binDir}:${dirname(nuPath())}:${process.env.PATH}`,
            NO_COLOR: '1',
          },
          encoding: 'utf8',
          input: '',
          timeout: 120_000,
        })
        expect(result.status, `${name} failed:\n${block.code}\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}`).toBe(0)
      } finally {
        t.cleanup()
      }
    })
  }
})

describe('docs: pages link only what exists', () => {
  it('no references to documents outside the repository', () => {
    for (const page of pages) {
      const text = readFileSync(join(repoRoot, page), 'utf8')
      expect(text, page).not.toMatch(/PRODUCT\.md|the seed('s)?\b|\bseed example\b/)
    }
  })

  it('no pipeline reads and writes the same file (the shell truncates it first)', () => {
    for (const block of blocks) {
      for (const line of block.code.split('\n')) {
        const input = /<\s*(\S+)/.exec(line)?.[1]
        const output = />\s*(\S+)\s*(#.*)?$/.exec(line)?.[1]
        if (input && output) expect(output, `${block.page}:${block.line}: ${line}`).not.toBe(input)
      }
    }
  })
})
