import { describe, expect, it } from 'vitest'
import { detectCgroups, parseMountInfo } from '../src/util/cgroups'

// mountinfo lines as the kernel writes them (fields: id parent dev root mountpoint options ... - fstype source superoptions).
const hybridV1 = [
  '25 30 0:22 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
  '26 25 0:23 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu',
  '27 25 0:24 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct',
  '28 25 0:25 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset',
  '29 25 0:26 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory',
  '35 25 0:32 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw',
].join('\n')

const unified = ['30 1 0:27 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot'].join('\n')

describe('cgroup controller detection', () => {
  it('takes v1 controllers when the unified hierarchy offers none (hybrid hosts)', () => {
    const report = detectCgroups(hybridV1, () => '')
    expect(report.unified).toEqual({ path: '/sys/fs/cgroup/unified', controllers: [] })
    expect(report.controllers.memory).toMatchObject({ version: 1, path: '/sys/fs/cgroup/memory' })
    expect(report.controllers.cpu).toMatchObject({ version: 1, path: '/sys/fs/cgroup/cpu' })
    expect(report.controllers.cpuset).toMatchObject({ version: 1, path: '/sys/fs/cgroup/cpuset' })
  })

  it('takes v2 controllers from the unified hierarchy when it has them', () => {
    const report = detectCgroups(unified, (file) => (file === '/sys/fs/cgroup/cgroup.controllers' ? 'cpuset cpu io memory pids\n' : ''))
    expect(report.controllers.memory).toMatchObject({ version: 2, path: '/sys/fs/cgroup' })
    expect(report.controllers.cpu).toMatchObject({ version: 2, path: '/sys/fs/cgroup' })
    expect(report.controllers.cpuset).toMatchObject({ version: 2 })
  })

  it('a read-only mount is reported as not writable, with the reason', () => {
    const report = detectCgroups(hybridV1.replace('/sys/fs/cgroup/memory rw,relatime', '/sys/fs/cgroup/memory ro,relatime'), () => '')
    expect(report.controllers.memory).toMatchObject({ writable: false, reason: '/sys/fs/cgroup/memory is mounted read-only' })
  })

  it('no cgroup mounts at all: nothing usable, no crash', () => {
    const report = detectCgroups('22 1 0:5 / / rw - ext4 /dev/vda rw\n', () => {
      throw new Error('no such file')
    })
    expect(report).toEqual({ controllers: { cpu: null, memory: null, cpuset: null }, unified: null })
  })

  it('escaped mount points are unescaped; malformed lines are skipped', () => {
    const lines = parseMountInfo('40 1 0:50 / /mnt/with\\040space rw - tmpfs tmpfs rw\nnot a mountinfo line\n')
    expect(lines).toHaveLength(1)
    expect(lines[0].mountPoint).toBe('/mnt/with space')
  })
})
