import { join } from 'node:path'
import { type CommandDef, confirmOrCancel, defineProvCommand, failedError, notFoundError, resolveWorkspace, usageError } from '@prov/core'
import { allRecipes, buildDirName, findRecipe, type ImageRecipe, imageNamePattern, imagesFileName } from '../images/recipe'
import {
  type BuildInfo,
  buildUsers,
  type CachedBuild,
  type CheckResult,
  cachedBuilds,
  checkBuild,
  ensureImage,
  IMAGE_SCHEMA,
  imageCacheDir,
  readBuildInfo,
  removeBuild,
} from '../images/store'
import { requireRoot } from '../providers/local/sandbox'

/** Recipes visible here: the built-in ones, plus the workspace's images.yaml when run inside one. */
function recipesHere(workspaceFlag?: string): Map<string, ImageRecipe> {
  return allRecipes(resolveWorkspace(workspaceFlag)?.path)
}

function parentInfo(recipe: ImageRecipe): BuildInfo | null {
  return recipe.from ? (readBuildInfo(join(imageCacheDir(), buildDirName(recipe.from))) ?? null) : null
}

function statusOf(recipe: ImageRecipe): CheckResult {
  const parent = parentInfo(recipe)
  if (recipe.from && !parent) return existsBuild(recipe) ? { state: 'outdated', problems: [`${recipe.from.name} is not built`] } : { state: 'missing' }
  return checkBuild(join(imageCacheDir(), buildDirName(recipe)), parent)
}

const existsBuild = (recipe: ImageRecipe) => cachedBuilds().some((b) => b.dir === join(imageCacheDir(), buildDirName(recipe)))

function record(recipe: ImageRecipe | null, build: CachedBuild | null, check: CheckResult, extra: Record<string, unknown> = {}) {
  const info = 'info' in check ? check.info : build?.info
  return {
    schema: IMAGE_SCHEMA,
    name: recipe?.name ?? build?.name,
    hash: (recipe?.hash ?? info?.hash ?? build?.hash12 ?? '').slice(0, 12),
    status: check.state,
    current: Boolean(recipe),
    source: recipe?.source ?? info?.source ?? null,
    from: recipe?.from?.name ?? info?.from?.name ?? null,
    path: recipe ? join(imageCacheDir(), buildDirName(recipe)) : (build?.dir ?? null),
    built_at: info?.built_at ?? null,
    build_seconds: info?.build_seconds ?? null,
    size_mb: info ? Math.round(info.bytes / 1e5) / 10 : null,
    entries: info?.entries ?? null,
    packages: recipe?.packages ?? info?.packages ?? [],
    cache: recipe?.cache ?? info?.cache ?? [],
    in_use: info ? buildUsers(info.build_id) : [],
    ...('problems' in check ? { problems: check.problems } : {}),
    ...extra,
  }
}

const list = defineProvCommand({
  meta: {
    name: 'list',
    description: `Images of local servers: built-in and ${imagesFileName} recipes, with their builds in the cache`,
    examples: ['prov-server image list', 'prov-server image list --out yaml'],
    mutating: false,
  },
  async run(ctx) {
    const recipes = recipesHere(ctx.common.workspace)
    const out = []
    const shown = new Set<string>()
    for (const recipe of recipes.values()) {
      shown.add(join(imageCacheDir(), buildDirName(recipe)))
      out.push(record(recipe, null, statusOf(recipe)))
    }
    // Builds of older recipes, or of other workspaces' recipes: still in the cache, not current here.
    for (const build of cachedBuilds()) {
      if (shown.has(build.dir)) continue
      out.push(record(null, build, checkBuild(build.dir, null)))
    }
    ctx.emit(out)
  },
})

function namesOrAll(positionals: string[], recipes: Map<string, ImageRecipe>, workspacePath?: string): ImageRecipe[] {
  if (!positionals.length) return [...recipes.values()]
  for (const name of positionals)
    if (!imageNamePattern.test(name)) throw usageError(`invalid image name '${name}'`, { hint: 'lower-case letters, digits, . _ -' })
  return [...new Set(positionals)].map((name) => findRecipe(name, workspacePath, recipes))
}

const build = defineProvCommand({
  meta: {
    name: 'build',
    description: 'Build images (all visible recipes when none is named); a healthy build is kept unless --force',
    examples: ['prov-server image build debian-12', 'prov-server image build --check', 'prov-server image build debian-12 --force'],
    mutating: true,
    usage: '[NAME...]',
  },
  args: {
    names: { type: 'positional', required: false, description: 'Image names (default: every recipe visible here)', valueHint: 'NAME...' },
    force: { type: 'boolean', description: 'Rebuild even when the build is healthy' },
    full: { type: 'boolean', description: 'Check every file hash of existing builds (not only their stat data)' },
  },
  async run(ctx) {
    const workspacePath = resolveWorkspace(ctx.common.workspace)?.path
    const recipes = allRecipes(workspacePath)
    const targets = namesOrAll(ctx.positionals, recipes, workspacePath)
    if (ctx.common.check) {
      ctx.emit(
        targets.map((recipe) => {
          const check = statusOf(recipe)
          const action = ctx.args.force || check.state !== 'ready' ? (check.state === 'missing' ? 'build' : 'rebuild') : 'keep'
          return record(recipe, null, check, { action })
        }),
      )
      return
    }
    requireRoot()
    const writer = ctx.writer()
    let failed = 0
    for (const recipe of targets) {
      const before = statusOf(recipe)
      try {
        const ready = await ensureImage(recipe, {
          force: Boolean(ctx.args.force),
          full: Boolean(ctx.args.full),
          onBuild: (r, reason) => ctx.log.info(`building image ${r.name} (${reason})${r.from ? '' : '; a Debian bootstrap takes a few minutes'}`),
        })
        const action = ready.built ? (before.state === 'missing' ? 'built' : 'rebuilt') : 'kept'
        writer.write(record(recipe, null, { state: 'ready', info: ready.info }, { action }))
      } catch (error) {
        failed++
        if (targets.length === 1) throw error
        writer.write(record(recipe, null, statusOf(recipe), { action: 'failed', error: (error as Error).message }))
      }
    }
    writer.end()
    return failed ? (failed === targets.length ? 1 : 6) : 0
  },
})

const rm = defineProvCommand({
  meta: {
    name: 'rm',
    description: 'Remove every build of the named images from the cache (refused while a running server uses one)',
    examples: ['prov-server image rm debian-12 --check', 'prov-server image rm debian-12 --yes'],
    mutating: true,
    destructive: true,
    confirms: true,
    usage: 'NAME...',
  },
  args: { names: { type: 'positional', required: true, description: 'Image names', valueHint: 'NAME...' } },
  async run(ctx) {
    if (!ctx.positionals.length) throw usageError('rm needs image names', { hint: 'prov-server image rm debian-12 --yes' })
    const recipes = recipesHere(ctx.common.workspace)
    const builds = cachedBuilds()
    const plan: { name: string; builds: CachedBuild[] }[] = []
    for (const name of [...new Set(ctx.positionals)]) {
      if (!imageNamePattern.test(name)) throw usageError(`invalid image name '${name}'`, { hint: 'lower-case letters, digits, . _ -' })
      const found = builds.filter((b) => b.name === name)
      if (!found.length && !recipes.has(name)) {
        const known = [...new Set([...recipes.keys(), ...builds.map((b) => b.name)])]
        throw notFoundError(`unknown image '${name}'`, { hint: `images: ${known.join(', ') || 'none'}` })
      }
      plan.push({ name, builds: found })
    }
    const inUse = plan.flatMap((p) => p.builds.flatMap((b) => (b.info ? buildUsers(b.info.build_id).map((netns) => `${p.name} by ${netns}`) : [])))
    interface Preview {
      schema: string
      name: string
      hash: string | null
      path: string | null
      action: 'remove' | 'none'
      reason?: string
    }
    const preview: Preview[] = plan.flatMap((p): Preview[] =>
      p.builds.length
        ? p.builds.map((b) => ({ schema: IMAGE_SCHEMA, name: p.name, hash: b.hash12, path: b.dir, action: 'remove' }))
        : [{ schema: IMAGE_SCHEMA, name: p.name, hash: null, path: null, action: 'none', reason: 'not built' }],
    )
    // Like `docker rmi`: naming only images that have no build is an error, not a silent no-op.
    if (!preview.some((p) => p.action === 'remove')) {
      throw notFoundError(`no build of ${plan.map((p) => `'${p.name}'`).join(', ')} in the image cache`, {
        hint: 'prov-server image list shows the builds there are',
      })
    }
    if (ctx.common.check) {
      ctx.emit(preview)
      return
    }
    // Asked first: without --yes off a terminal the answer is the same whatever the cache holds.
    const removing = preview.filter((p) => p.action === 'remove').map((p) => `${p.name}-${p.hash}`)
    await confirmOrCancel({ yes: ctx.common.yes, what: 'remove images', question: `remove ${removing.join(', ')}?` })
    if (inUse.length) {
      throw failedError(`image in use by running servers: ${inUse.join(', ')}`, { hint: 'stop or delete those servers first (prov-server stop NAME)' })
    }
    requireRoot()
    const out = []
    for (const p of plan) {
      if (!p.builds.length) out.push({ schema: IMAGE_SCHEMA, name: p.name, hash: null, path: null, removed: false, reason: 'not built' })
      for (const b of p.builds) {
        const users = await removeBuild(b)
        if (users.length) throw failedError(`image ${p.name} became in use by ${users.join(', ')} while removing`, { hint: 'stop those servers and retry' })
        out.push({ schema: IMAGE_SCHEMA, name: p.name, hash: b.hash12, path: b.dir, removed: true })
      }
    }
    ctx.emit(out)
  },
})

export default {
  meta: { name: 'image', description: 'Root filesystem images of local servers (debian-12 built in; your own in images.yaml): list, build, rm' },
  subCommands: { list, build, rm },
} satisfies CommandDef
