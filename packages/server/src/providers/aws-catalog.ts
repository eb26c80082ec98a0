// What EC2 offers to create servers from (instance types, availability zones, images) and the
// read-only checks of declared servers against it.
import { ExitCode, ProvError } from '@prov/core'
import { type AwsConfig, awsCalls, type AwsCtx as Ctx, type Ec2 } from './aws-api'
import { requireChoice } from './cloud/common'
import type { ServerSpec } from './types'

/** Checks instance type, zone and image of servers against what EC2 offers: exit 2 listing the valid ones. */
export async function checkChoices(ctx: Ctx, api: Ec2, specs: ServerSpec[]): Promise<void> {
  const known = await knownTypes(api, [...new Set(specs.map((spec) => planOf(spec, ctx.config) as string))])
  const zones = specs.some((s) => s.zone ?? ctx.config.zone) ? (await zoneNames(api)).map((z) => z.name) : []
  for (const spec of specs) {
    const plan = planOf(spec, ctx.config) as string
    if (!known.has(plan)) {
      const all = (await instanceTypes(api)).map((t) => t.InstanceType ?? '').filter(Boolean)
      requireChoice('aws', 'instance type (plan)', plan, all.sort(), spec.name)
    }
    const zone = spec.zone ?? ctx.config.zone
    if (zone) requireChoice('aws', 'availability zone (zone)', zone, zones, spec.name)
    await resolveImage(ctx, api, imageOf(spec, ctx.config) as string, spec.name)
  }
}

/**
 * Owners whose AMIs a name may pick when providers.aws.image_owners is not set: this account,
 * Amazon, Debian and Canonical. A name alone would also match anyone's public AMI of that name.
 */
const DEFAULT_IMAGE_OWNERS = ['self', 'amazon', '136693071363', '099720109477']

/**
 * An AMI id as it is (when EC2 knows it), else the newest available AMI of that name (wildcards
 * allowed) among `image_owners`; an unknown one exits 2 listing some that are there.
 */
export function resolveImage(ctx: Ctx, api: Ec2, image: string, server?: string): Promise<string> {
  const owners = ctx.config.image_owners ?? DEFAULT_IMAGE_OWNERS
  return awsCalls.get(`${api.endpoint}\0image\0${owners.join(',')}\0${image}`, () => findImage(api, image, owners, server))
}

async function findImage(api: Ec2, image: string, owners: string[], server?: string): Promise<string> {
  const byId = /^ami-[0-9a-f]+$/.test(image)
  type Images = { Images?: { ImageId?: string; Name?: string; CreationDate?: string }[] }
  let found: Images = {}
  try {
    found = await api.send<Images>(
      'DescribeImages',
      new api.sdk.DescribeImagesCommand(
        byId
          ? { ImageIds: [image] }
          : {
              Owners: owners,
              Filters: [
                { Name: 'name', Values: [image] },
                { Name: 'state', Values: ['available'] },
              ],
            },
      ),
    )
  } catch (error) {
    // An id EC2 does not know is a NotFound (or malformed) answer: it is listed below like a name.
    if (!(error instanceof ProvError && (error.code === ExitCode.NOT_FOUND || error.code === ExitCode.USAGE))) throw error
  }
  const images = (found.Images ?? []).sort((a, b) => String(b.CreationDate).localeCompare(String(a.CreationDate)))
  if (images[0]?.ImageId) return images[0].ImageId
  const some = await api.send<Images>('DescribeImages', new api.sdk.DescribeImagesCommand({ Owners: owners, MaxResults: 100 }))
  requireChoice(
    'aws',
    byId ? 'image' : `image named (owners ${owners.join(', ')})`,
    image,
    (some.Images ?? [])
      .map((i) => (byId ? i.ImageId : i.Name) ?? '')
      .filter(Boolean)
      .sort(),
    server,
  )
  return image
}

export type InstanceTypeInfo = { InstanceType?: string; VCpuInfo?: { DefaultVCpus?: number }; MemoryInfo?: { SizeInMiB?: number } }

/**
 * Which of `wanted` EC2 offers, asking for those types only: the whole catalog is over a thousand
 * types (one call of several seconds on a slow endpoint), needed only to list the valid ones
 * when a type is unknown.
 */
function knownTypes(api: Ec2, wanted: string[]): Promise<Set<string>> {
  const sorted = [...wanted].sort()
  return awsCalls.get(`${api.endpoint}\0known\0${sorted.join(',')}`, async () => {
    const found = new Set<string>()
    try {
      // EC2 takes at most 100 names per call.
      for (let i = 0; i < sorted.length; i += 100) {
        const page = await api.send<{ InstanceTypes?: InstanceTypeInfo[] }>(
          'DescribeInstanceTypes',
          new api.sdk.DescribeInstanceTypesCommand({ InstanceTypes: sorted.slice(i, i + 100) as never }),
        )
        for (const type of page.InstanceTypes ?? []) if (type.InstanceType) found.add(type.InstanceType)
      }
    } catch (error) {
      // An unknown name fails the whole call (InvalidInstanceType): ask for the catalog instead.
      if (!(error instanceof ProvError && error.code === ExitCode.USAGE)) throw error
      for (const type of await instanceTypes(api)) if (type.InstanceType && sorted.includes(type.InstanceType)) found.add(type.InstanceType)
    }
    return found
  })
}

export function instanceTypes(api: Ec2): Promise<InstanceTypeInfo[]> {
  return awsCalls.get(`${api.endpoint}\0types`, () => describeInstanceTypes(api))
}

async function describeInstanceTypes(api: Ec2): Promise<InstanceTypeInfo[]> {
  const out: InstanceTypeInfo[] = []
  let NextToken: string | undefined
  do {
    const page = await api.send<{ InstanceTypes?: typeof out; NextToken?: string }>(
      'DescribeInstanceTypes',
      new api.sdk.DescribeInstanceTypesCommand({ NextToken }),
    )
    out.push(...(page.InstanceTypes ?? []))
    NextToken = page.NextToken
  } while (NextToken)
  return out
}

export function zoneNames(api: Ec2): Promise<{ name: string; description?: string }[]> {
  return awsCalls.get(`${api.endpoint}\0zones`, () => describeZones(api))
}

async function describeZones(api: Ec2): Promise<{ name: string; description?: string }[]> {
  const found = await api.send<{ AvailabilityZones?: { ZoneName?: string; RegionName?: string; State?: string }[] }>(
    'DescribeAvailabilityZones',
    new api.sdk.DescribeAvailabilityZonesCommand({}),
  )
  return (found.AvailabilityZones ?? [])
    .filter((z) => z.ZoneName)
    .map((z) => ({ name: z.ZoneName as string, description: `${z.RegionName ?? ''} ${z.State ?? ''}`.trim() }))
}

export const planOf = (spec: ServerSpec, config: AwsConfig) => spec.plan ?? config.plan
export const imageOf = (spec: ServerSpec, config: AwsConfig) => spec.image ?? config.image
