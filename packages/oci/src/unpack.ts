import { randomBytes } from 'node:crypto'
import { linkSync, lstatSync, readlinkSync, renameSync, symlinkSync } from 'node:fs'
import { open } from 'node:fs/promises'
import { join, posix } from 'node:path'
import { pipeline, Readable } from 'node:stream'
import { createGunzip } from 'node:zlib'
import { containedPath, failedError, mkdirContained, removeContained } from '@prov/core'
import { readTarStream, type TarCounts, type TarMember } from './tar-reader'
import { openBlob, type Target } from './target'
import type { ImageManifest } from './types'

/**
 * What the layers of one artifact may unpack to, together (`oci.max_unpacked_size`): every
 * decompressed byte counts, and a member announcing more than is left is refused before its
 * data is read. A decompression bomb is stopped at the limit, with memory flat.
 */
export class UnpackBudget {
  private used = 0
  readonly counts: TarCounts = { entries: 0 }

  constructor(
    readonly limit: number,
    /** The artifact, for the message. */
    readonly what: string,
  ) {}

  get unpacked(): number {
    return this.used
  }

  private exceeded(where: string) {
    return failedError(`${this.what} exceeds the unpacked size limit of ${this.limit} bytes (oci.max_unpacked_size): refused, nothing written`, {
      location: where,
      hint: 'raise oci.max_unpacked_size only for an artifact you trust',
    })
  }

  take(bytes: number, where: string): void {
    this.used += bytes
    if (this.used > this.limit) throw this.exceeded(where)
  }

  /** Refuses a member whose announced size alone goes past the limit. */
  announce(bytes: number, where: string): void {
    if (this.used + bytes > this.limit) throw this.exceeded(where)
  }
}

/** One layer: where it comes from, and a stream of its verified bytes. */
export interface LayerSource {
  where: string
  open(): Promise<Readable>
}

/** The layers of a manifest as sources for unpacking. */
export function layerSources(target: Target, manifest: ImageManifest, display: string): LayerSource[] {
  return manifest.layers.map((layer) => ({ where: `layer ${layer.digest.slice(0, 19)} of ${display}`, open: () => openBlob(target, layer) }))
}

/** The tar bytes of a layer: gunzipped when it is gzip (by its magic bytes), counted against the budget. */
async function* tarBytes(source: Readable, budget: UnpackBudget, where: string): AsyncGenerator<Buffer> {
  const input = source[Symbol.asyncIterator]() as AsyncIterator<Buffer>
  let head: Buffer = Buffer.alloc(0)
  while (head.length < 2) {
    const next = await input.next()
    if (next.done) break
    head = head.length ? Buffer.concat([head, next.value]) : next.value
  }
  const raw = Readable.from(
    (async function* () {
      if (head.length) yield head
      for (let next = await input.next(); !next.done; next = await input.next()) yield next.value
    })(),
  )
  const decompressed = head[0] === 0x1f && head[1] === 0x8b ? pipeline(raw, createGunzip({ chunkSize: 64 * 1024 }), () => {}) : raw
  try {
    for await (const chunk of decompressed as AsyncIterable<Buffer>) {
      budget.take(chunk.length, where)
      yield chunk
    }
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (typeof code === 'string' && code.startsWith('Z_')) {
      throw failedError(`layer is not a valid gzip stream: ${(error as Error).message}`, { location: where, cause: error })
    }
    throw error
  } finally {
    source.destroy()
  }
}

/** A member's path, normalised; absolute paths, `..` and NUL bytes are refused. */
export function safeMemberPath(raw: string, where: string): string {
  if (raw.includes('\0')) throw failedError('tar entry with a NUL byte in its path: refused', { location: where })
  if (raw.startsWith('/') || /^[A-Za-z]:[\\/]/.test(raw)) throw failedError(`tar entry '${raw}' has an absolute path: refused`, { location: where })
  const segments = raw.split(/[\\/]+/)
  if (segments.includes('..')) throw failedError(`tar entry '${raw}' contains '..': refused`, { location: where })
  return segments.filter((s) => s && s !== '.').join('/')
}

/** Checks a member on its own (path, link target); returns its normalised path. */
function checkMember(member: TarMember, where: string): string {
  const path = safeMemberPath(member.path, where)
  const link = member.linkname ?? ''
  if (member.type === 'symlink') {
    if (posix.isAbsolute(link)) throw failedError(`tar entry '${member.path}' is a link to the absolute path '${link}': refused`, { location: where })
    const resolved = posix.normalize(posix.join(posix.dirname(path), link))
    if (resolved === '..' || resolved.startsWith('../'))
      throw failedError(`tar entry '${member.path}' links outside the target ('${link}'): refused`, { location: where })
  }
  if (member.type === 'hardlink' && (posix.isAbsolute(link) || link.split('/').includes('..'))) {
    throw failedError(`tar entry '${member.path}' is a hard link outside the target ('${link}'): refused`, { location: where })
  }
  return path
}

/** Reads every member of the layers through the checks and the budget, writing nothing. */
export async function scanLayers(layers: LayerSource[], budget: UnpackBudget): Promise<{ entries: number; files: number }> {
  let entries = 0
  let files = 0
  for (const layer of layers) {
    await readTarStream(tarBytes(await layer.open(), budget, layer.where), layer.where, budget.counts, async (member) => {
      checkMember(member, layer.where)
      budget.announce(member.size, layer.where)
      entries++
      if (member.type === 'file') files++
    })
  }
  return { entries, files }
}

/** The first component of `segments` (under `root`) that is a symbolic link, if any. */
function linkOnPath(root: string, segments: string[]): string | undefined {
  for (let i = 1; i <= segments.length; i++) {
    const prefix = segments.slice(0, i)
    try {
      if (lstatSync(join(root, ...prefix)).isSymbolicLink()) return prefix.join('/')
    } catch {
      return undefined
    }
  }
  return undefined
}

/**
 * Whether the link `target`, read from the folder `from` (components under `root`, no links on
 * it), stays under `root` when followed through the links already there: `..` is applied to the
 * real position, not to the text, so `a/b -> ..` then `x -> a/b/..` is seen for what it is.
 */
function linkStaysInside(root: string, from: string[], target: string): boolean {
  const position = [...from]
  const pending = target.split('/')
  for (let hops = 0; pending.length; ) {
    const part = pending.shift() as string
    if (!part || part === '.') continue
    if (part === '..') {
      if (!position.length) return false
      position.pop()
      continue
    }
    position.push(part)
    let link: string
    try {
      if (!lstatSync(join(root, ...position)).isSymbolicLink()) continue
      link = readlinkSync(join(root, ...position))
    } catch {
      continue
    }
    if (posix.isAbsolute(link) || ++hops > 40) return false
    position.pop()
    pending.unshift(...link.split('/'))
  }
  return true
}

/**
 * Unpacks the layers, in order, into `root/segments`: everything goes into a hidden sibling
 * folder first, every write is contained in it (nothing is written through a symbolic link of
 * the archive, and every link must stay inside once all are in place), and only a complete,
 * verified unpack is renamed into place. Anything refused or broken leaves the destination as it
 * was and nothing else behind. Returns the number of members.
 */
export async function unpackLayers(layers: LayerSource[], dest: { root: string; segments: string[] }, budget: UnpackBudget): Promise<number> {
  const name = dest.segments.at(-1) as string
  const tempSegments = [...dest.segments.slice(0, -1), `.${name}.tmp-${randomBytes(4).toString('hex')}`]
  const what = `the unpack folder of ${budget.what}`
  const temp = mkdirContained(dest.root, tempSegments)
  const links: string[][] = []
  const refuse = (member: TarMember, why: string, where: string) => failedError(`tar entry '${member.path}' ${why}: refused`, { location: where })
  let entries = 0
  try {
    for (const layer of layers) {
      await readTarStream(tarBytes(await layer.open(), budget, layer.where), layer.where, budget.counts, async (member, body) => {
        const path = checkMember(member, layer.where)
        budget.announce(member.size, layer.where)
        entries++
        if (!path) return
        const segments = path.split('/')
        const through = linkOnPath(temp, segments.slice(0, -1))
        if (through) throw refuse(member, `lies under the symbolic link '${through}'`, layer.where)
        if (member.type === 'dir') {
          mkdirContained(temp, segments, { what, mode: 0o755 })
          return
        }
        mkdirContained(temp, segments.slice(0, -1), { what })
        // A later member replaces an earlier one of the same name; a link is removed, never followed.
        removeContained(temp, segments, { what })
        const target = containedPath(temp, segments, { what })
        if (member.type === 'symlink') {
          if (!linkStaysInside(temp, segments.slice(0, -1), member.linkname as string))
            throw refuse(member, `links outside the target through other links ('${member.linkname}')`, layer.where)
          symlinkSync(member.linkname as string, target)
          links.push(segments)
        } else if (member.type === 'hardlink') {
          const sourceSegments = safeMemberPath(member.linkname as string, layer.where).split('/')
          const source = containedPath(temp, sourceSegments, { what })
          if (linkOnPath(temp, sourceSegments) || !isFile(source)) {
            throw refuse(member, `links to '${member.linkname}', which is not a file of the archive`, layer.where)
          }
          linkSync(source, target)
        } else {
          const file = await open(target, 'wx', member.mode & 0o111 ? 0o755 : 0o644)
          try {
            for await (const chunk of body) {
              for (let offset = 0; offset < chunk.length; ) offset += (await file.write(chunk, offset)).bytesWritten
            }
          } finally {
            await file.close()
          }
        }
      })
    }
    // Links made before the links they pass through: checked again with everything in place.
    for (const segments of links) {
      const at = join(temp, ...segments)
      if (!isLink(at)) continue
      if (!linkStaysInside(temp, segments.slice(0, -1), readlinkSync(at)))
        throw failedError(`tar entry '${segments.join('/')}' links outside the target through other links: refused`, { location: budget.what })
    }
    removeContained(dest.root, dest.segments)
    renameSync(temp, containedPath(dest.root, dest.segments))
    return entries
  } catch (error) {
    removeContained(dest.root, tempSegments)
    throw error
  }
}

function isFile(path: string): boolean {
  try {
    return lstatSync(path).isFile()
  } catch {
    return false
  }
}

function isLink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink()
  } catch {
    return false
  }
}
