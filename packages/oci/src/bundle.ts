import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { PROV_VERSION, type Workspace } from '@prov/core'
import { type BuiltArtifact, buildArtifact, createdTimestamp } from './artifact'
import { collectEntries, createTar, type TarEntry } from './tarball'
import { PROV_ARTIFACT, PROV_BUNDLE_CONFIG } from './types'

export interface BundleManifest {
  schema: 'prov.bundle/v1'
  workspace: string
  prov_version: string
  created: string
  bootstrap: 'bootstrap.sh'
  files: { path: string; size: number; digest: string }[]
  extensions: { kind: string; name: string }[]
  secrets: string[]
  skipped: { path: string; reason: string }[]
}

const ENCRYPTED_MARKERS = [
  /^-----BEGIN AGE ENCRYPTED FILE-----/m,
  /^age-encryption\.org\/v1/,
  /(^|\n)sops:\s*\n/,
  /"sops"\s*:\s*\{/,
  /^ENC\[/m,
  /ENC\[AES256_GCM,/,
]
const PRIVATE_KEY = [/-----BEGIN [A-Z ]*PRIVATE KEY-----/, /AGE-SECRET-KEY-1[0-9A-Z]+/]

/** A secrets file is taken only when it is encrypted (SOPS or age); decrypted ones never leave. */
export function isEncrypted(bytes: Buffer): boolean {
  const text = bytes.subarray(0, 1024 * 1024).toString('utf8')
  return ENCRYPTED_MARKERS.some((m) => m.test(text)) && !PRIVATE_KEY.some((m) => m.test(text))
}

function holdsPrivateKey(bytes: Buffer): boolean {
  const text = bytes.subarray(0, 1024 * 1024).toString('latin1')
  return PRIVATE_KEY.some((m) => m.test(text))
}

/** POSIX sh, run on the seeded host from the unpacked folder: no Node needed to run it. */
export const BOOTSTRAP = `#!/bin/sh
# prov spore bootstrap: makes the unpacked workspace usable by prov on this host.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
WS="$HERE/workspace"
PROV_BIN="\${PROV_BIN:-}"
[ -n "$PROV_BIN" ] || PROV_BIN=$(command -v prov 2>/dev/null || true)
if [ -z "$PROV_BIN" ] || [ ! -x "$PROV_BIN" ]; then
  echo '{"schema":"prov.oci.bootstrap/v1","ok":false,"error":"prov not found: install prov or set PROV_BIN"}'
  exit 3
fi
mkdir -p "$WS/.prov" "$HERE/bin"
chmod 700 "$WS/.prov"
# A prov on PATH that defaults to this workspace.
cat > "$HERE/bin/prov" <<EOS
#!/bin/sh
export PROV_WORKSPACE="\\\${PROV_WORKSPACE:-$WS}"
exec "$PROV_BIN" "\\$@"
EOS
chmod 755 "$HERE/bin/prov"
printf 'export PATH="%s/bin:$PATH"\\nexport PROV_WORKSPACE="%s"\\n' "$HERE" "$WS" > "$HERE/env.sh"
if [ "\${PROV_LINK:-0}" = 1 ] && [ -w /usr/local/bin ]; then ln -sf "$HERE/bin/prov" /usr/local/bin/prov; fi
if PROV_WORKSPACE="$WS" "$PROV_BIN" config show -o json >/dev/null 2>"$HERE/bootstrap.err"; then ok=true; else ok=false; fi
printf '{"schema":"prov.oci.bootstrap/v1","ok":%s,"workspace":"%s","prov":"%s","env":"%s/env.sh"}\\n' "$ok" "$WS" "$PROV_BIN" "$HERE"
[ "$ok" = true ]
`

export interface BuiltBundle extends BuiltArtifact {
  bundle: BundleManifest
}

/** Packs a workspace: config, infra, workspace extensions, encrypted secrets; never .prov/ or keys. */
export function buildBundle(workspace: Workspace, options: { created?: string } = {}): BuiltBundle {
  const root = workspace.path
  const skipped: BundleManifest['skipped'] = []
  const always = new Set(['.prov', '.git', 'node_modules'])
  const entries = collectEntries(root, {
    exclude: (path) => {
      const top = path.split('/')[0]
      if (always.has(top) || path.split('/').includes('.git') || path.split('/').includes('node_modules')) return true
      const isTopFile = !path.includes('/')
      if (isTopFile && !/^(prov\.config\.(ya?ml|toml|json|ts|js)|prov\.lock\.json|\.gitignore|README(\.md)?)$/.test(path)) {
        if (!['config', 'infra', 'extensions', 'secrets'].includes(path)) {
          skipped.push({ path, reason: 'not part of a workspace bundle' })
          return true
        }
      }
      return false
    },
  })
  const kept: TarEntry[] = []
  const secrets: string[] = []
  for (const entry of entries) {
    if (entry.type === 'file' && entry.data) {
      if (entry.path.startsWith('secrets/')) {
        if (!isEncrypted(entry.data)) {
          skipped.push({ path: entry.path, reason: 'secrets file is not encrypted (SOPS/age): never bundled' })
          continue
        }
        secrets.push(entry.path)
      } else if (holdsPrivateKey(entry.data)) {
        skipped.push({ path: entry.path, reason: 'holds a private key: never bundled' })
        continue
      }
    }
    kept.push({ ...entry, path: `workspace/${entry.path}` })
  }
  const extensions: BundleManifest['extensions'] = []
  for (const kind of ['providers', 'taskservs', 'clusters']) {
    const dir = join(root, 'extensions', kind)
    for (const e of kept) {
      const m = e.path.match(new RegExp(`^workspace/extensions/${kind}/([^/]+)/manifest\\.yaml$`))
      if (m && existsSync(join(dir, m[1]))) extensions.push({ kind: kind.slice(0, -1), name: m[1] })
    }
  }
  const bundle: BundleManifest = {
    schema: 'prov.bundle/v1',
    workspace: workspace.name,
    prov_version: PROV_VERSION,
    created: createdTimestamp(options.created),
    bootstrap: 'bootstrap.sh',
    files: kept
      .filter((e) => e.type === 'file')
      .map((e) => ({
        path: e.path,
        size: e.data?.length ?? 0,
        digest: `sha256:${createHash('sha256')
          .update(e.data ?? Buffer.alloc(0))
          .digest('hex')}`,
      })),
    extensions,
    secrets,
    skipped,
  }
  const manifestEntry: TarEntry = { path: 'bundle.json', type: 'file', mode: 0o644, data: Buffer.from(`${JSON.stringify(bundle, null, 2)}\n`) }
  const bootstrap: TarEntry = { path: 'bootstrap.sh', type: 'file', mode: 0o755, data: Buffer.from(BOOTSTRAP) }
  const artifact = buildArtifact({
    artifactType: PROV_ARTIFACT.bundle,
    configMediaType: PROV_BUNDLE_CONFIG,
    config: bundle,
    layers: [{ entries: [manifestEntry, bootstrap, { path: 'workspace', type: 'dir', mode: 0o755 }, ...kept], title: `${workspace.name}-bundle.tar.gz` }],
    annotations: {
      'org.opencontainers.image.title': `${workspace.name} workspace bundle`,
      'org.opencontainers.image.version': PROV_VERSION,
      'org.opencontainers.image.source': `prov:workspace/${workspace.name}`,
      'org.opencontainers.image.created': bundle.created,
      'dev.prov.kind': 'bundle',
      'dev.prov.name': workspace.name,
    },
  })
  return { ...artifact, bundle }
}

/** An OCI image layout as one tar (the oci-archive format skopeo reads), holding one tagged artifact. */
export function layoutArchive(artifact: BuiltArtifact, tag: string): Buffer {
  const index = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [{ ...artifact.descriptor, annotations: { 'org.opencontainers.image.ref.name': tag } }],
  }
  const blobs = [...artifact.blobs, { descriptor: artifact.descriptor, bytes: artifact.manifestBytes }]
  const seen = new Set<string>()
  const entries: TarEntry[] = [
    { path: 'oci-layout', type: 'file', mode: 0o644, data: Buffer.from('{"imageLayoutVersion":"1.0.0"}') },
    { path: 'index.json', type: 'file', mode: 0o644, data: Buffer.from(JSON.stringify(index)) },
    { path: 'blobs', type: 'dir', mode: 0o755 },
    { path: 'blobs/sha256', type: 'dir', mode: 0o755 },
  ]
  for (const blob of blobs) {
    if (seen.has(blob.descriptor.digest)) continue
    seen.add(blob.descriptor.digest)
    entries.push({ path: `blobs/sha256/${blob.descriptor.digest.slice(7)}`, type: 'file', mode: 0o644, data: blob.bytes })
  }
  return createTar(entries)
}
