// EC2 instances of the aws provider: found by the id prov stored or by its identity tags, mapped
// to server records, waited for, and started with RunInstances.
import type { Filter, Instance, RunInstancesCommandInput } from '@aws-sdk/client-ec2'
import { ExitCode, failedError, notFoundError, ProvError, type ServerRecord, type ServerStatus } from '@prov/core'
import { type AwsCtx as Ctx, type Ec2, faultCode, QUOTA_CODES } from './aws-api'
import { carriesIdentity, checkedAddress, cloudDefaults, IDENTITY, pollUntil, workspaceId } from './cloud/common'

/** Instance states that still hold the name (terminated ones are gone for good). */
const LIVE_STATES = ['pending', 'running', 'stopping', 'stopped', 'shutting-down']

function statusOf(state: string | undefined): ServerStatus {
  if (state === 'running') return 'running'
  if (state === 'stopped') return 'stopped'
  if (state === 'pending') return 'creating'
  return 'unknown'
}

export function recordOf(record: ServerRecord, instance: Instance): ServerRecord {
  return {
    ...record,
    status: statusOf(instance.State?.Name),
    ip_address: checkedAddress('aws', instance.PublicIpAddress ?? instance.PrivateIpAddress) || record.ip_address,
    plan: instance.InstanceType ?? record.plan,
    zone: instance.Placement?.AvailabilityZone ?? record.zone,
    image: record.image ?? instance.ImageId ?? null,
  }
}

export const tagFilters = (wsid: string, name?: string): Filter[] => [
  { Name: `tag:${IDENTITY.workspace}`, Values: [wsid] },
  ...(name ? [{ Name: `tag:${IDENTITY.server}`, Values: [name] }] : []),
  { Name: 'instance-state-name', Values: LIVE_STATES },
]

export async function instancesOf(api: Ec2, filters: Filter[], ids?: string[]): Promise<Instance[]> {
  const out: Instance[] = []
  let NextToken: string | undefined
  do {
    const page = await api.send<{ Reservations?: { Instances?: Instance[] }[]; NextToken?: string }>(
      'DescribeInstances',
      new api.sdk.DescribeInstancesCommand({ ...(ids ? { InstanceIds: ids } : { Filters: filters }), NextToken }),
    )
    for (const reservation of page.Reservations ?? []) out.push(...(reservation.Instances ?? []))
    NextToken = page.NextToken
  } while (NextToken)
  return out
}

/** The instance prov made for `name`: by the id it stored, else by its tags (a create killed before the state write). */
export async function findInstance(ctx: Ctx, api: Ec2, name: string): Promise<Instance | undefined> {
  const wsid = workspaceId(ctx.workspace)
  const id = ctx.getData(name)?.instance_id
  if (typeof id === 'string') {
    try {
      const [instance] = await instancesOf(api, [], [id])
      if (instance && instance.State?.Name !== 'terminated' && isOurs(instance, wsid, name)) return instance
    } catch (error) {
      if (!(error instanceof ProvError && error.code === ExitCode.NOT_FOUND)) throw error
    }
  }
  return (await instancesOf(api, tagFilters(wsid, name))).find((instance) => isOurs(instance, wsid, name))
}

/**
 * Whether an instance carries this workspace's identity tags (and the server's name, when given),
 * checked again after the API's filter: an endpoint that ignored the filter, or a state file that
 * names another instance, cannot make prov adopt, stop or terminate someone else's machine.
 */
export function isOurs(instance: Instance, wsid: string, name?: string): boolean {
  return carriesIdentity(tagsOf(instance.Tags), wsid, name)
}

/** EC2 tags as a plain map (`Key` → `Value`). */
export function tagsOf(tags: readonly { Key?: string; Value?: string }[] | undefined): Record<string, string | undefined> {
  return Object.fromEntries((tags ?? []).map((t) => [t.Key ?? '', t.Value]))
}

export async function requireInstance(ctx: Ctx, api: Ec2, record: ServerRecord): Promise<Instance> {
  const instance = await findInstance(ctx, api, record.name)
  if (!instance?.InstanceId)
    throw notFoundError(`aws has no instance for '${record.name}'`, { hint: 'it was terminated outside prov: prov-server delete it, then create it again' })
  return instance
}

export async function waitForState(ctx: Ctx, api: Ec2, id: string, states: string[], what: string): Promise<Instance> {
  return pollUntil(
    what,
    async () => {
      const [instance] = await instancesOf(api, [], [id])
      return instance && states.includes(instance.State?.Name ?? '') ? instance : undefined
    },
    ctx.config.ready_timeout ?? cloudDefaults.ready_timeout,
  )
}

export const identityTags = (wsid: string, name?: string) => [
  { Key: IDENTITY.workspace, Value: wsid },
  ...(name ? [{ Key: IDENTITY.server, Value: name }] : []),
]

/**
 * RunInstances, repeated by prov rather than by the SDK: after a 5xx, a throttle or a lost answer
 * EC2 may have started the instance, so before asking again prov looks for it by its tags and
 * adopts what it finds. The ClientToken covers an instance EC2 does not list yet.
 */
export async function runInstance(ctx: Ctx, api: Ec2, name: string, input: RunInstancesCommandInput): Promise<Instance> {
  const retries = ctx.config.retries ?? cloudDefaults.retries
  for (let attempt = 0; ; attempt++) {
    try {
      const run = await api.sendOnce<{ Instances?: Instance[] }>('RunInstances', new api.sdk.RunInstancesCommand(input))
      const instance = run.Instances?.[0]
      if (!instance?.InstanceId) throw failedError(`aws RunInstances returned no instance for ${name}`)
      return instance
    } catch (error) {
      // Refusals (auth, validation, quota) are final; what may have acted is failed (1) without a 4xx kind.
      const unsure = error instanceof ProvError && error.code === ExitCode.FAILED && !QUOTA_CODES.has(faultCode(error))
      if (!unsure || attempt >= retries) throw error
      const made = await findInstance(ctx, api, name)
      if (made) return made
      await new Promise((resolve) => setTimeout(resolve, Math.min(500 * 2 ** attempt, 20_000)))
    }
  }
}
