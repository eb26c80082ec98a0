import { readFileSync } from 'node:fs'

/**
 * Process identity on Linux. A pid alone is reused by the kernel; a pid plus its start time
 * (field 22 of /proc/PID/stat, clock ticks since boot) names one process for the life of the host.
 */

/** The fields of /proc/PID/stat after the command name (which may itself hold spaces and parentheses). */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  } catch {
    return undefined
  }
}

/** Start time of a process (field 22 of /proc/PID/stat), or undefined when it does not exist. */
export function processStartTime(pid: number): string | undefined {
  return statFields(pid)?.[19]
}

/** Parent pid of a process (field 4 of /proc/PID/stat), or undefined when it does not exist. */
export function parentPidOf(pid: number): number | undefined {
  const ppid = statFields(pid)?.[1]
  return ppid === undefined ? undefined : Number(ppid)
}

/** True while a process with this pid exists (one of another user counts: it is alive, just not ours). */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** True when `pid` still is the process that had `startTime` (not a later one that reused the pid). */
export function isSameProcess(pid: number, startTime: string | undefined): boolean {
  return startTime !== undefined && processStartTime(pid) === startTime
}
