import { createHash } from 'node:crypto'
import type { Instance, RunInstancesCommandInput } from '@aws-sdk/client-ec2'
import { forgetHostKey, usageError } from '@prov/core'
import { type AwsConfig, awsConfigProblems, ec2 } from './aws-api'
import { checkChoices, imageOf, instanceTypes, planOf, resolveImage, zoneNames } from './aws-catalog'
import { findInstance, identityTags, instancesOf, isOurs, recordOf, requireInstance, runInstance, tagFilters, waitForState } from './aws-instances'
import { keyPairName, removeSharedWhenUnused, securityGroupId } from './aws-shared'
import { cloudDefaults, cloudSpecProblems, IDENTITY, listedRecord, waitForSsh, workspaceId } from './cloud/common'
import type { CreateOptions, Provider, ProviderPlan } from './types'

export { type AwsConfig, awsError } from './aws-api'

/** EC2 refuses user data over 16 KiB (before base64). */
const MAX_USER_DATA = 16 * 1024

/** `aws`: EC2 instances through @aws-sdk/client-ec2 (docs/providers.md#aws). */
export const awsProvider: Provider<AwsConfig> = {
  name: 'aws',
  capabilities: { start_stop: true, keep_storage: false, plans: true, zones: true, price: false, root: false },

  validateConfig(config) {
    return awsConfigProblems(config)
  },

  validateSpec(spec, config) {
    return cloudSpecProblems('aws', spec, [
      { field: 'plan', value: planOf(spec, config), example: 'instance type such as t3.micro' },
      { field: 'image', value: imageOf(spec, config), example: 'AMI id or name' },
    ])
  },

  async checkSpecs(ctx, specs) {
    await checkChoices(ctx, await ec2(ctx), specs)
  },

  async list(ctx, records) {
    if (!records.length) return records
    const api = await ec2(ctx)
    const wsid = workspaceId(ctx.workspace)
    const instances = (await instancesOf(api, tagFilters(wsid))).filter((instance) => isOurs(instance, wsid))
    // Indexed once: a plan lists every server of the workspace, a lookup per record would be quadratic.
    const byId = new Map(instances.map((i) => [i.InstanceId, i]))
    const byName = new Map<string, Instance>()
    for (const instance of instances) {
      const name = instance.Tags?.find((t) => t.Key === IDENTITY.server)?.Value
      if (name !== undefined && !byName.has(name)) byName.set(name, instance)
    }
    return records.map((record) => {
      const stored = byId.get(ctx.getData(record.name)?.instance_id as string | undefined)
      const instance = stored && isOurs(stored, wsid, record.name) ? stored : byName.get(record.name)
      return listedRecord(record, instance, recordOf)
    })
  },

  async create(ctx, spec, record, options?: CreateOptions) {
    const api = await ec2(ctx)
    const wsid = workspaceId(ctx.workspace)
    let instance = await findInstance(ctx, api, spec.name)
    if (instance) {
      ctx.log.info(`aws: ${spec.name} already exists (${instance.InstanceId}, tagged by this workspace): adopting it`)
    } else {
      const plan = planOf(spec, ctx.config) as string
      const zone = spec.zone ?? ctx.config.zone ?? null
      const userDataBytes = Buffer.byteLength(options?.userData ?? '')
      if (userDataBytes > MAX_USER_DATA) {
        throw usageError(`server '${spec.name}': its first-boot document is ${userDataBytes} bytes; EC2 takes at most ${MAX_USER_DATA} bytes of user data`, {
          hint: 'move large files out of provision: (fetch them from a URL, or install them with a taskserv)',
        })
      }
      await checkChoices(ctx, api, [spec])
      const imageId = await resolveImage(ctx, api, imageOf(spec, ctx.config) as string, spec.name)
      const keyName = await keyPairName(ctx, api, wsid)
      const groupId = await securityGroupId(ctx, api, wsid, spec.ssh.port)
      const tags = [...Object.entries(spec.labels).map(([Key, Value]) => ({ Key, Value })), ...identityTags(wsid, spec.name), { Key: 'Name', Value: spec.name }]
      instance = await runInstance(ctx, api, spec.name, {
        ImageId: imageId,
        InstanceType: plan as RunInstancesCommandInput['InstanceType'],
        MinCount: 1,
        MaxCount: 1,
        KeyName: keyName,
        SecurityGroupIds: [groupId],
        ...(zone ? { Placement: { AvailabilityZone: zone } } : {}),
        ...(options?.userData ? { UserData: Buffer.from(options.userData).toString('base64') } : {}),
        TagSpecifications: [
          { ResourceType: 'instance', Tags: tags },
          { ResourceType: 'volume', Tags: identityTags(wsid, spec.name) },
        ],
        // A repeated request with the same token starts one instance only (EC2's idempotency).
        ClientToken: createHash('sha256').update(`${wsid}/${spec.name}/${record.created_at}`).digest('hex').slice(0, 64),
      })
      // Still `creating` until ready: a create killed from here on is finished by the next plan.
      await ctx.save({ ...recordOf(record, instance), status: 'creating' }, { instance_id: instance.InstanceId })
    }
    const id = instance.InstanceId as string
    const running = await waitForState(ctx, api, id, ['running'], `aws instance ${spec.name} to run`)
    const next = recordOf(record, running)
    if ((ctx.config.ready ?? cloudDefaults.ready) === 'ssh') await waitForSsh(ctx, spec.name, next.ip_address, spec.ssh.port)
    await ctx.save(next, { instance_id: id })
    return next
  },

  async delete(ctx, record) {
    const api = await ec2(ctx)
    const wsid = workspaceId(ctx.workspace)
    const instance = await findInstance(ctx, api, record.name)
    // Every live instance tagged with this workspace and name goes: two applies of one plan racing
    // can both have started one, and the twin the state does not name must not run on unseen.
    const tagged = (await instancesOf(api, tagFilters(wsid, record.name))).filter((i) => isOurs(i, wsid, record.name))
    const ids = [...new Set([instance?.InstanceId, ...tagged.map((i) => i.InstanceId)].filter((id): id is string => typeof id === 'string'))]
    if (ids.length > 1) ctx.log.warn(`aws: ${ids.length} instances are tagged for '${record.name}' (${ids.join(', ')}): terminating them all`)
    if (ids.length) {
      await api.send('TerminateInstances', new api.sdk.TerminateInstancesCommand({ InstanceIds: ids }))
      for (const id of ids) await waitForState(ctx, api, id, ['terminated'], `aws instance ${record.name} (${id}) to terminate`)
    }
    if (record.ip_address) await forgetHostKey(ctx.workspace, record.ip_address, record.ssh.port)
    await removeSharedWhenUnused(ctx, api, wsid, record.name, ids)
  },

  async start(ctx, record) {
    const api = await ec2(ctx)
    const instance = await requireInstance(ctx, api, record)
    const id = instance.InstanceId as string
    if (instance.State?.Name !== 'running') await api.send('StartInstances', new api.sdk.StartInstancesCommand({ InstanceIds: [id] }))
    const next = recordOf(record, await waitForState(ctx, api, id, ['running'], `aws instance ${record.name} to start`))
    await ctx.save(next)
    return next
  },

  async stop(ctx, record) {
    const api = await ec2(ctx)
    const instance = await requireInstance(ctx, api, record)
    const id = instance.InstanceId as string
    if (instance.State?.Name !== 'stopped') await api.send('StopInstances', new api.sdk.StopInstancesCommand({ InstanceIds: [id] }))
    const next = recordOf(record, await waitForState(ctx, api, id, ['stopped'], `aws instance ${record.name} to stop`))
    await ctx.save(next)
    return next
  },

  async info(ctx, record) {
    const api = await ec2(ctx)
    const instance = await requireInstance(ctx, api, record)
    return {
      instance_id: instance.InstanceId,
      state: instance.State?.Name,
      instance_type: instance.InstanceType,
      availability_zone: instance.Placement?.AvailabilityZone,
      image_id: instance.ImageId,
      public_ip: instance.PublicIpAddress ?? null,
      private_ip: instance.PrivateIpAddress ?? null,
      key_name: instance.KeyName,
      security_groups: (instance.SecurityGroups ?? []).map((g) => g.GroupName),
      tags: Object.fromEntries((instance.Tags ?? []).map((t) => [t.Key, t.Value])),
    }
  },

  async plans(ctx) {
    const api = await ec2(ctx)
    return (await instanceTypes(api))
      .filter((t) => t.InstanceType)
      .map(
        (t): ProviderPlan => ({
          name: t.InstanceType as string,
          cores: t.VCpuInfo?.DefaultVCpus ?? null,
          memory_mb: t.MemoryInfo?.SizeInMiB ?? null,
          disk_gb: null,
        }),
      )
      .sort((a, b) => a.name.localeCompare(b.name))
  },

  async zones(ctx) {
    return zoneNames(await ec2(ctx))
  },

  async price() {
    // EC2 has no price call; the Pricing API is a separate service and account setting.
    return null
  },
}

export default awsProvider
