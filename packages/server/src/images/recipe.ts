import { createHash } from 'node:crypto'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { posix } from 'node:path'
import { bundledExtensionsDir, configError, containedPath, didYouMean, notFoundError, readManifest } from '@prov/core'
import { parseYamlText } from '@prov/core/config'
import { z } from 'zod'
import { SANDBOX_ID_BASE, SANDBOX_ID_COUNT } from './idmap'

/**
 * An image recipe says how a root filesystem is made. A bootstrap recipe (the built-in
 * `debian-12`) is a Debian release installed with mmdebstrap; a derived recipe (a workspace's
 * `images.yaml`) adds packages and files on top of another image, as a layer of its own. The hash
 * of everything that shapes the result names the build, so a changed recipe means a new build and
 * an unchanged one is built once per machine.
 */
export interface ImageFile {
  /** Absolute path inside the image. */
  path: string
  mode: number
  content: Buffer
}

export interface ImageRecipe {
  name: string
  source: 'builtin' | 'workspace'
  /** The image this one is layered on (derived recipes). */
  from: ImageRecipe | null
  /** Debian release of a bootstrap recipe. */
  suite: string | null
  /** apt source lines (`deb URI SUITE COMPONENTS`) of a bootstrap recipe. */
  mirrors: string[]
  /** Installed in the image. */
  packages: string[]
  /** Downloaded only: their .debs stay in the image's apt archive, so sandboxes install them offline. */
  cache: string[]
  files: ImageFile[]
  /** Where the recipe is declared (`images.yaml:12`), for messages. */
  location: string | null
  /** sha256 of everything that shapes the build (the parent's hash included). */
  hash: string
}

export const DEFAULT_IMAGE = 'debian-12'
/** Bumped when the way prov builds or lays out images changes, so old builds are not reused. */
const BUILD_FORMAT = 'prov-image/2'
const MAX_LAYERS = 8
const MAX_FILE_BYTES = 16 << 20
const MAX_INLINE_BYTES = 1 << 20

export const imageNamePattern = /^[a-z0-9][a-z0-9._-]{0,62}$/
/** Debian package names (policy 5.6.1), optionally pinned to a version. */
const packagePattern = /^[a-z0-9][a-z0-9+.-]+(=[A-Za-z0-9.+~:-]+)?$/

/** What every image needs for prov to run it as a server, plus what the catalog's scripts use. */
// ignition: its files stage applies a server's day-zero document at the sandbox's first boot.
const basePackages = ['openssh-server', 'iproute2', 'python3', 'sudo', 'ca-certificates', 'curl', 'procps', 'ignition']

/** Paths an image file may not be written to: the sandbox mounts its own filesystems there. */
const reservedPrefixes = ['/proc', '/sys', '/dev', '/run', '/tmp']

function recipeHash(recipe: Omit<ImageRecipe, 'hash' | 'location' | 'source'>): string {
  const canonical = JSON.stringify({
    format: BUILD_FORMAT,
    ids: [SANDBOX_ID_BASE, SANDBOX_ID_COUNT],
    name: recipe.name,
    from: recipe.from?.hash ?? null,
    suite: recipe.suite,
    mirrors: recipe.mirrors,
    packages: [...recipe.packages].sort(),
    cache: [...recipe.cache].sort(),
    files: recipe.files.map((f) => [f.path, f.mode, createHash('sha256').update(f.content).digest('hex')]),
  })
  return createHash('sha256').update(canonical).digest('hex')
}

/** Packages the bundled taskserv catalog installs (manifest `packages:`), so sandboxes install them offline. */
export function catalogPackages(dir = `${bundledExtensionsDir()}/taskservs`): string[] {
  const out = new Set<string>()
  if (!existsSync(dir)) return []
  for (const entry of readdirSync(dir)) {
    if (!existsSync(`${dir}/${entry}/manifest.yaml`)) continue
    try {
      const packages = (readManifest(`${dir}/${entry}`) as Record<string, unknown>).packages
      if (Array.isArray(packages)) for (const p of packages) if (typeof p === 'string' && packagePattern.test(p)) out.add(p)
    } catch {
      // a broken manifest is reported by `prov ext`, not here
    }
  }
  return [...out].sort()
}

interface SourceEntry {
  uris: string[]
  suites: string[]
  components: string[]
}

function parseSources(text: string, deb822: boolean): SourceEntry[] {
  const entries: SourceEntry[] = []
  if (deb822) {
    for (const stanza of text.split(/\n\s*\n/)) {
      const fields = new Map<string, string>()
      let last = ''
      for (const line of stanza.split('\n')) {
        if (/^\s*#/.test(line)) continue
        const field = /^([A-Za-z-]+):\s*(.*)$/.exec(line)
        if (field) {
          last = field[1].toLowerCase()
          fields.set(last, field[2])
        } else if (/^\s+\S/.test(line) && last) fields.set(last, `${fields.get(last)} ${line.trim()}`)
      }
      if (!(fields.get('types') ?? '').split(/\s+/).includes('deb') || fields.get('enabled') === 'no') continue
      entries.push({
        uris: (fields.get('uris') ?? '').split(/\s+/).filter(Boolean),
        suites: (fields.get('suites') ?? '').split(/\s+/).filter(Boolean),
        components: (fields.get('components') ?? '').split(/\s+/).filter(Boolean),
      })
    }
    return entries
  }
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim()
    const match = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s+(.+)$/.exec(line)
    if (match) entries.push({ uris: [match[1]], suites: [match[2]], components: match[3].split(/\s+/) })
  }
  return entries
}

/**
 * The host's configured Debian mirror(s) for `suite` (its -updates and -security suites too), as
 * one-line apt sources. Falls back to deb.debian.org when the host has none for that release.
 */
export function hostMirrors(suite: string, aptDir = '/etc/apt'): string[] {
  const files: [string, boolean][] = []
  if (existsSync(`${aptDir}/sources.list`)) files.push([`${aptDir}/sources.list`, false])
  const dir = `${aptDir}/sources.list.d`
  if (existsSync(dir)) {
    for (const entry of readdirSync(dir).sort()) {
      if (entry.endsWith('.list')) files.push([`${dir}/${entry}`, false])
      else if (entry.endsWith('.sources')) files.push([`${dir}/${entry}`, true])
    }
  }
  const wanted = new Set([suite, `${suite}-updates`, `${suite}-security`])
  const lines: string[] = []
  for (const [file, deb822] of files) {
    let text = ''
    try {
      text = readFileSync(file, 'utf8')
    } catch {
      continue
    }
    for (const entry of parseSources(text, deb822)) {
      const components = entry.components.filter((c) => /^[a-z0-9-]+$/.test(c))
      if (!components.includes('main')) continue
      for (const uri of entry.uris.filter((u) => /^(https?|file):\/\/[^\s\]]+$/.test(u))) {
        for (const s of entry.suites.filter((x) => wanted.has(x))) {
          const line = `deb ${uri} ${s} ${components.join(' ')}`
          if (!lines.includes(line)) lines.push(line)
        }
      }
    }
  }
  if (lines.length) return lines
  return [
    `deb http://deb.debian.org/debian ${suite} main`,
    `deb http://deb.debian.org/debian ${suite}-updates main`,
    `deb http://deb.debian.org/debian-security ${suite}-security main`,
  ]
}

function finish(recipe: Omit<ImageRecipe, 'hash'>): ImageRecipe {
  return { ...recipe, hash: recipeHash(recipe) }
}

/**
 * The built-in recipe, made once per process: it reads the host's apt sources and every manifest of
 * the bundled catalog, and a parallel create asks for it once per server.
 */
let builtinDefault: ImageRecipe | undefined

/** Built-in recipes (bootstrap images). */
export function builtinRecipes(): Map<string, ImageRecipe> {
  builtinDefault ??= Object.freeze(
    finish({
      name: DEFAULT_IMAGE,
      source: 'builtin',
      from: null,
      suite: 'bookworm',
      mirrors: hostMirrors('bookworm'),
      packages: basePackages,
      cache: catalogPackages(),
      files: [],
      location: null,
    }),
  )
  return new Map([[DEFAULT_IMAGE, builtinDefault]])
}

const fileSchema = z
  .strictObject({
    path: z.string().min(2).max(4096),
    content: z.string().max(MAX_INLINE_BYTES).optional(),
    source: z.string().min(1).max(4096).optional(),
    mode: z.union([z.number().int(), z.string().regex(/^0?[0-7]{3,4}$/, 'an octal mode such as "0644"')]).optional(),
  })
  .refine((f) => (f.content === undefined) !== (f.source === undefined), 'give exactly one of content or source')

const recipeSchema = z.strictObject({
  from: z.string().regex(imageNamePattern, 'an image name').optional(),
  packages: z.array(z.string().regex(packagePattern, 'a Debian package name (optionally =version)')).max(500).optional(),
  cache: z.array(z.string().regex(packagePattern, 'a Debian package name (optionally =version)')).max(500).optional(),
  files: z.array(fileSchema).max(200).optional(),
})

const imagesFileSchema = z.strictObject({
  images: z.record(z.string().regex(imageNamePattern, 'an image name: lower-case letters, digits, . _ -'), recipeSchema),
})

export const imagesFileName = 'images.yaml'

function lineOf(lines: Map<string, number>, path: (string | number)[]): number {
  for (let i = path.length; i > 0; i--) {
    const line = lines.get(path.slice(0, i).join('.'))
    if (line) return line
  }
  return 1
}

function fileMode(mode: number | string | undefined, at: string): number {
  const value = mode === undefined ? 0o644 : typeof mode === 'number' ? mode : Number.parseInt(mode, 8)
  // Set-id bits make no sense for files a recipe ships; everything else a file can have is fine.
  if (!Number.isInteger(value) || value < 0 || value > 0o1777)
    throw configError(`file mode ${String(mode)} is not allowed (0000-1777, no set-id bits)`, { location: at })
  return value
}

function imagePath(path: string, at: string): string {
  const normal = posix.normalize(path)
  if (!path.startsWith('/') || normal !== path || path.endsWith('/') || path.includes('\0')) {
    throw configError(`image file path '${path}' must be absolute and normalised (no .., //, trailing /)`, { location: at })
  }
  if (reservedPrefixes.some((p) => path === p || path.startsWith(`${p}/`))) {
    throw configError(`image file path '${path}' is under ${path.split('/').slice(0, 2).join('/')}, which each sandbox mounts itself`, { location: at })
  }
  return path
}

/** The recipes a workspace declares in images.yaml (none when the file does not exist). */
export function workspaceRecipes(workspacePath: string | undefined, builtins = builtinRecipes()): Map<string, ImageRecipe> {
  const recipes = new Map<string, ImageRecipe>()
  if (!workspacePath) return recipes
  const file = `${workspacePath}/${imagesFileName}`
  if (!existsSync(file)) return recipes
  const parsed = parseYamlText(readFileSync(file, 'utf8'), imagesFileName)
  const at = (path: (string | number)[]) => `${imagesFileName}:${lineOf(parsed.lines, path)}`
  const result = imagesFileSchema.safeParse(parsed.data)
  if (!result.success) {
    const issue = result.error.issues[0]
    const keys = issue.code === 'unrecognized_keys' ? issue.keys.map(String) : []
    const path = [...issue.path.map(String), ...keys.slice(0, 1)]
    const hint = keys.length ? didYouMean(keys[0], ['images', 'from', 'packages', 'cache', 'files', 'path', 'content', 'source', 'mode']) : undefined
    throw configError(
      `invalid ${imagesFileName}${path.length ? ` at '${path.join('.')}'` : ''}: ${keys.length ? `unknown field '${keys[0]}'` : issue.message}`,
      {
        location: at(path),
        hint: hint ?? (path.length ? undefined : "the file holds 'images:', a mapping of image name to recipe"),
      },
    )
  }
  const declared = result.data.images
  for (const name of Object.keys(declared)) {
    if (builtins.has(name)) {
      throw configError(`image '${name}' is built in; give your recipe another name`, { location: at(['images', name]), hint: `from: ${name}` })
    }
  }
  const resolving = new Set<string>()
  const resolve = (name: string): ImageRecipe => {
    const done = recipes.get(name)
    if (done) return done
    const spec = declared[name]
    const location = at(['images', name])
    if (resolving.has(name)) throw configError(`image '${name}' is layered on itself (${[...resolving, name].join(' -> ')})`, { location })
    resolving.add(name)
    const baseName = spec.from ?? DEFAULT_IMAGE
    const base = declared[baseName] ? resolve(baseName) : builtins.get(baseName)
    if (!base) {
      throw notFoundError(`image '${name}' is layered on unknown image '${baseName}'`, {
        location: at(['images', name, 'from']),
        hint: didYouMean(baseName, [...builtins.keys(), ...Object.keys(declared)]) ?? `images: ${[...builtins.keys(), ...Object.keys(declared)].join(', ')}`,
      })
    }
    let depth = 1
    for (let r: ImageRecipe | null = base; r; r = r.from) depth++
    if (depth > MAX_LAYERS) throw configError(`image '${name}' has more than ${MAX_LAYERS} layers`, { location })
    const files = (spec.files ?? []).map((f, index) => {
      const where = at(['images', name, 'files', index])
      const path = imagePath(f.path, where)
      let content: Buffer
      if (f.source !== undefined) {
        const source = containedPath(workspacePath, f.source, { what: 'the workspace' })
        let size = 0
        try {
          const st = statSync(source)
          if (!st.isFile()) throw new Error('not a regular file')
          size = st.size
        } catch (error) {
          throw notFoundError(`image file source '${f.source}' cannot be read: ${(error as Error).message}`, { location: where })
        }
        if (size > MAX_FILE_BYTES) throw configError(`image file source '${f.source}' is larger than ${MAX_FILE_BYTES >> 20} MiB`, { location: where })
        content = readFileSync(source)
      } else content = Buffer.from(f.content ?? '', 'utf8')
      return { path, mode: fileMode(f.mode, where), content }
    })
    const duplicate = files.find((f, i) => files.findIndex((g) => g.path === f.path) !== i)
    if (duplicate) throw configError(`image '${name}' lists ${duplicate.path} twice`, { location: at(['images', name, 'files']) })
    const recipe = finish({
      name,
      source: 'workspace',
      from: base,
      suite: null,
      mirrors: [],
      packages: [...new Set(spec.packages ?? [])],
      cache: [...new Set(spec.cache ?? [])],
      files,
      location,
    })
    resolving.delete(name)
    recipes.set(name, recipe)
    return recipe
  }
  for (const name of Object.keys(declared)) resolve(name)
  return recipes
}

/** Every recipe visible from a workspace (built-in first). */
export function allRecipes(workspacePath?: string): Map<string, ImageRecipe> {
  const builtins = builtinRecipes()
  return new Map([...builtins, ...workspaceRecipes(workspacePath, builtins)])
}

/** One recipe by name; an unknown name exits 5 with the names there are. */
export function findRecipe(name: string, workspacePath?: string, recipes = allRecipes(workspacePath)): ImageRecipe {
  const recipe = recipes.get(name)
  if (recipe) return recipe
  const names = [...recipes.keys()]
  throw notFoundError(`unknown image '${name}'`, {
    hint: `${didYouMean(name, names) ?? ''}${didYouMean(name, names) ? '; ' : ''}images: ${names.join(', ')} (declare your own in ${imagesFileName})`,
  })
}

/** Directory name of a build: `<name>-<first 12 hex of the recipe hash>`. */
export const buildDirName = (recipe: ImageRecipe) => `${recipe.name}-${recipe.hash.slice(0, 12)}`

/** The chain of recipes from the bootstrap image up to `recipe`. */
export function recipeChain(recipe: ImageRecipe): ImageRecipe[] {
  const chain: ImageRecipe[] = []
  for (let r: ImageRecipe | null = recipe; r; r = r.from) chain.unshift(r)
  return chain
}

/** A recipe as stored next to a server (so a stopped server finds its own image again). */
export interface StoredRecipe {
  name: string
  source: 'builtin' | 'workspace'
  suite: string | null
  mirrors: string[]
  packages: string[]
  cache: string[]
  files: { path: string; mode: number; content_base64: string }[]
  hash: string
  from: StoredRecipe | null
}

export function storeRecipe(recipe: ImageRecipe): StoredRecipe {
  return {
    name: recipe.name,
    source: recipe.source,
    suite: recipe.suite,
    mirrors: recipe.mirrors,
    packages: recipe.packages,
    cache: recipe.cache,
    files: recipe.files.map((f) => ({ path: f.path, mode: f.mode, content_base64: f.content.toString('base64') })),
    hash: recipe.hash,
    from: recipe.from ? storeRecipe(recipe.from) : null,
  }
}

/** Reads a stored recipe back; its hash is recomputed, so a tampered copy cannot pose as another build. */
export function loadStoredRecipe(stored: StoredRecipe, depth = 0): ImageRecipe {
  if (depth > MAX_LAYERS || !stored || typeof stored !== 'object' || !imageNamePattern.test(String(stored.name))) {
    throw configError('the recorded image recipe of this server is unreadable', { hint: 'delete and create the server again' })
  }
  const from = stored.from ? loadStoredRecipe(stored.from, depth + 1) : null
  const strings = (v: unknown) => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string' && packagePattern.test(x)) : [])
  const recipe = finish({
    name: stored.name,
    source: stored.source === 'builtin' ? 'builtin' : 'workspace',
    from,
    suite: typeof stored.suite === 'string' && /^[a-z]+$/.test(stored.suite) ? stored.suite : null,
    mirrors: Array.isArray(stored.mirrors)
      ? stored.mirrors.filter((m): m is string => typeof m === 'string' && /^deb (https?|file):\/\/\S+ [a-z0-9-]+( [a-z0-9-]+)+$/.test(m))
      : [],
    packages: strings(stored.packages),
    cache: strings(stored.cache),
    files: (Array.isArray(stored.files) ? stored.files : []).map((f) => ({
      path: imagePath(String(f.path), 'recorded recipe'),
      mode: fileMode(Number(f.mode), 'recorded recipe'),
      content: Buffer.from(String(f.content_base64), 'base64'),
    })),
    location: null,
  })
  if (!recipe.from && !recipe.suite) throw configError('the recorded image recipe of this server is unreadable', { hint: 'delete and create the server again' })
  return recipe
}
