import { accessSync, constants, readFileSync } from 'node:fs'
import { join } from 'node:path'

/**
 * Which cgroup controllers this host lets prov use to make a sandbox's declared cores and memory
 * real. Hosts differ: the unified hierarchy (v2) with its controllers at /sys/fs/cgroup, the
 * legacy v1 controllers each mounted on their own (/sys/fs/cgroup/{cpu,memory,cpuset}), or a
 * hybrid where an empty v2 sits next to the v1 controllers. A controller is taken from v2 when the
 * unified hierarchy offers it, else from its v1 mount.
 */
export type CgroupController = 'cpu' | 'memory' | 'cpuset'

export const cgroupControllerNames: readonly CgroupController[] = ['cpu', 'memory', 'cpuset']

export interface CgroupControllerMount {
  controller: CgroupController
  version: 1 | 2
  /** Where the hierarchy is mounted (the parent of prov's own cgroups). */
  path: string
  /** prov can create cgroups there (mounted read-write and writable by this process). */
  writable: boolean
  /** Why it is not writable. */
  reason?: string
}

export interface CgroupReport {
  controllers: Record<CgroupController, CgroupControllerMount | null>
  /** The unified (v2) mount and the controllers it offers, when there is one. */
  unified: { path: string; controllers: string[] } | null
}

interface MountLine {
  root: string
  mountPoint: string
  options: string[]
  fsType: string
  superOptions: string[]
}

/** `\040` and friends in /proc/self/mountinfo paths. */
const unescapeMountField = (field: string) => field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)))

export function parseMountInfo(text: string): MountLine[] {
  const lines: MountLine[] = []
  for (const line of text.split('\n')) {
    const fields = line.split(' ')
    const separator = fields.indexOf('-')
    if (separator < 6 || fields.length < separator + 3) continue
    lines.push({
      root: unescapeMountField(fields[3]),
      mountPoint: unescapeMountField(fields[4]),
      options: fields[5].split(','),
      fsType: fields[separator + 1],
      superOptions: fields[separator + 3]?.split(',') ?? [],
    })
  }
  return lines
}

function writability(mount: MountLine): { writable: boolean; reason?: string } {
  if (mount.options.includes('ro')) return { writable: false, reason: `${mount.mountPoint} is mounted read-only` }
  try {
    accessSync(mount.mountPoint, constants.W_OK)
    return { writable: true }
  } catch {
    return { writable: false, reason: `${mount.mountPoint} is not writable by this user` }
  }
}

/** Reads the host's cgroup mounts (from /proc/self/mountinfo unless given). */
export function detectCgroups(mountInfo?: string, readControllers: (file: string) => string = (file) => readFileSync(file, 'utf8')): CgroupReport {
  let text = mountInfo
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/mountinfo', 'utf8')
    } catch {
      text = ''
    }
  }
  const mounts = parseMountInfo(text)
  const controllers: Record<CgroupController, CgroupControllerMount | null> = { cpu: null, memory: null, cpuset: null }
  let unified: CgroupReport['unified'] = null
  const v2 = mounts.find((m) => m.fsType === 'cgroup2' && m.root === '/')
  if (v2) {
    let offered: string[] = []
    try {
      offered = readControllers(join(v2.mountPoint, 'cgroup.controllers')).trim().split(/\s+/).filter(Boolean)
    } catch {
      offered = []
    }
    unified = { path: v2.mountPoint, controllers: offered }
    for (const controller of cgroupControllerNames) {
      if (offered.includes(controller)) controllers[controller] = { controller, version: 2, path: v2.mountPoint, ...writability(v2) }
    }
  }
  for (const controller of cgroupControllerNames) {
    if (controllers[controller]) continue
    const v1 = mounts.find((m) => m.fsType === 'cgroup' && m.root === '/' && m.superOptions.includes(controller))
    if (v1) controllers[controller] = { controller, version: 1, path: v1.mountPoint, ...writability(v1) }
  }
  return { controllers, unified }
}
