import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { type CgroupController, type CgroupControllerMount, detectCgroups } from '@prov/core'

/**
 * A sandbox's declared `cores` and `memory_mb` as cgroup limits: a memory ceiling (the kernel's
 * OOM killer ends the biggest process of the sandbox when it is reached, swap included), a CPU
 * bandwidth quota of `cores` CPUs, and — where the cpuset controller is there — `cores` CPUs of
 * its own, so `nproc` inside says what was declared. v2 (unified) or v1 per controller, whatever
 * the host has (see detectCgroups in core).
 */
export const CGROUP_PARENT = 'prov'
const PERIOD_US = 100_000

export interface SandboxLimits {
  cores: number | null
  memory_mb: number | null
  disk_gb: number | null
}

export interface AppliedLimits {
  /** cgroup directories the sandbox joins (one per hierarchy). */
  cgroups: string[]
  cores: number | null
  memory_mb: number | null
  disk_gb: number | null
  /** CPUs the sandbox may run on (cpuset), e.g. "1" or "0-1". */
  cpus: string | null
  /** CPU quota per period, e.g. "100000/100000". */
  cpu_quota: string | null
  enforced: { cores: boolean; memory: boolean; disk: false }
  /** Why something declared is not enforced (also logged as a warning). */
  warnings: string[]
}

function write(file: string, value: string): void {
  writeFileSync(file, value)
}

function readTrim(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim()
  } catch {
    return ''
  }
}

/** "0-3,6" -> [0,1,2,3,6] */
export function parseCpuList(list: string): number[] {
  const out: number[] = []
  for (const part of list
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const [a, b] = part.split('-').map(Number)
    if (!Number.isInteger(a)) continue
    for (let n = a; n <= (Number.isInteger(b) ? b : a); n++) out.push(n)
  }
  return out
}

/** `cores` CPUs of the host's, starting at a place derived from the sandbox id so sandboxes spread out. */
export function chooseCpus(available: number[], cores: number, id: string): number[] {
  if (cores >= available.length) return available
  const start = createHash('sha1').update(id).digest().readUInt32BE(0) % available.length
  return Array.from({ length: cores }, (_, i) => available[(start + i) % available.length]).sort((x, y) => x - y)
}

const cpuList = (cpus: number[]) => cpus.join(',')

function ensureParent(mount: CgroupControllerMount): string {
  const parent = join(mount.path, CGROUP_PARENT)
  if (!existsSync(parent)) mkdirSync(parent)
  if (mount.version === 2) {
    // Controllers must be enabled from the root down to the sandbox's parent.
    for (const dir of [mount.path, parent]) {
      const enabled = readTrim(join(dir, 'cgroup.subtree_control')).split(/\s+/)
      if (!enabled.includes(mount.controller)) write(join(dir, 'cgroup.subtree_control'), `+${mount.controller}`)
    }
  } else if (mount.controller === 'cpuset') {
    // A v1 cpuset child starts with no CPUs and no memory nodes: copy the root's to the parent.
    if (!readTrim(join(parent, 'cpuset.cpus'))) write(join(parent, 'cpuset.cpus'), readTrim(join(mount.path, 'cpuset.cpus')))
    if (!readTrim(join(parent, 'cpuset.mems'))) write(join(parent, 'cpuset.mems'), readTrim(join(mount.path, 'cpuset.mems')))
  }
  return parent
}

/** Creates the sandbox's cgroups and writes its limits. Never throws for a host that cannot: it warns. */
export function applyLimits(id: string, limits: SandboxLimits): AppliedLimits {
  const applied: AppliedLimits = {
    cgroups: [],
    cores: limits.cores,
    memory_mb: limits.memory_mb,
    disk_gb: limits.disk_gb,
    cpus: null,
    cpu_quota: null,
    enforced: { cores: false, memory: false, disk: false },
    warnings: [],
  }
  if (limits.disk_gb) applied.warnings.push(`disk_gb ${limits.disk_gb} is not enforced: the sandbox's disk is a directory of the workspace filesystem`)
  if (!limits.cores && !limits.memory_mb) return applied
  const report = detectCgroups()
  const usable = (controller: CgroupController): CgroupControllerMount | undefined => {
    const mount = report.controllers[controller]
    return mount?.writable ? mount : undefined
  }
  const dirFor = (mount: CgroupControllerMount): string => {
    const dir = join(ensureParent(mount), id)
    if (!existsSync(dir)) mkdirSync(dir)
    if (!applied.cgroups.includes(dir)) applied.cgroups.push(dir)
    return dir
  }
  const unusable = (controller: CgroupController) => {
    const mount = report.controllers[controller]
    return mount ? (mount.reason ?? 'not writable') : 'not available on this host'
  }
  if (limits.memory_mb) {
    const mount = usable('memory')
    if (!mount) applied.warnings.push(`memory_mb ${limits.memory_mb} is not enforced: the memory cgroup controller is ${unusable('memory')}`)
    else {
      try {
        const dir = dirFor(mount)
        const bytes = String(limits.memory_mb * 1024 * 1024)
        if (mount.version === 2) {
          write(join(dir, 'memory.max'), bytes)
          if (existsSync(join(dir, 'memory.swap.max'))) write(join(dir, 'memory.swap.max'), '0')
        } else {
          // memsw (memory + swap) must never be below the memory limit: lower it last, raise it first.
          const memsw = join(dir, 'memory.memsw.limit_in_bytes')
          if (existsSync(memsw)) {
            write(memsw, '-1')
            write(join(dir, 'memory.limit_in_bytes'), bytes)
            write(memsw, bytes)
          } else write(join(dir, 'memory.limit_in_bytes'), bytes)
        }
        applied.enforced.memory = true
      } catch (error) {
        applied.warnings.push(`memory_mb ${limits.memory_mb} is not enforced: ${(error as Error).message}`)
      }
    }
  }
  if (limits.cores) {
    const cpu = usable('cpu')
    const cpuset = usable('cpuset')
    if (!cpu && !cpuset) applied.warnings.push(`cores ${limits.cores} is not enforced: the cpu cgroup controller is ${unusable('cpu')}`)
    try {
      if (cpu) {
        const dir = dirFor(cpu)
        const quota = String(limits.cores * PERIOD_US)
        if (cpu.version === 2) write(join(dir, 'cpu.max'), `${quota} ${PERIOD_US}`)
        else {
          write(join(dir, 'cpu.cfs_period_us'), String(PERIOD_US))
          write(join(dir, 'cpu.cfs_quota_us'), quota)
        }
        applied.cpu_quota = `${quota}/${PERIOD_US}`
        applied.enforced.cores = true
      }
      if (cpuset) {
        const dir = dirFor(cpuset)
        const parent = join(cpuset.path, CGROUP_PARENT)
        const available = parseCpuList(readTrim(join(parent, cpuset.version === 2 ? 'cpuset.cpus.effective' : 'cpuset.cpus')))
        const chosen = chooseCpus(available, limits.cores, id)
        if (chosen.length) {
          if (cpuset.version === 1) write(join(dir, 'cpuset.mems'), readTrim(join(parent, 'cpuset.mems')))
          write(join(dir, 'cpuset.cpus'), cpuList(chosen))
          applied.cpus = cpuList(chosen)
          applied.enforced.cores = true
        }
      }
    } catch (error) {
      applied.warnings.push(`cores ${limits.cores} is not fully enforced: ${(error as Error).message}`)
    }
  }
  return applied
}

/** Removes a sandbox's cgroups once its processes are gone (a v1 cgroup is busy for a moment after). */
export async function removeCgroups(dirs: string[]): Promise<void> {
  for (const dir of dirs) {
    for (let attempt = 0; existsSync(dir); attempt++) {
      try {
        rmdirSync(dir)
      } catch (error) {
        if (attempt >= 50) throw error
        await sleep(20)
      }
    }
  }
}

/** Paths under prov's parent cgroup that belong to `id` (found without state: interrupted creates). */
export function cgroupsOf(id: string): string[] {
  const report = detectCgroups()
  const dirs = new Set<string>()
  for (const mount of Object.values(report.controllers)) {
    if (!mount) continue
    const dir = join(mount.path, CGROUP_PARENT, id)
    if (existsSync(dir)) dirs.add(dir)
  }
  return [...dirs]
}
