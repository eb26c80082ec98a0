// The per-workspace resources aws servers share: the workspace key as an EC2 key pair and the
// security group opening SSH to providers.aws.ssh_cidr; made once, removed with the last server.
import type { SecurityGroup } from '@aws-sdk/client-ec2'
import { ExitCode, ensureWorkspaceKey, failedError, ProvError } from '@prov/core'
import { awsCalls, type AwsCtx as Ctx, type Ec2, faultCode, isDuplicate } from './aws-api'
import { identityTags, instancesOf, isOurs, tagFilters, tagsOf } from './aws-instances'
import { carriesIdentity, IDENTITY } from './cloud/common'

/** Who may reach SSH when providers.aws.ssh_cidr is not set. */
const DEFAULT_SSH_CIDR = '0.0.0.0/0'

/** The workspace key as an EC2 key pair `prov-<id>`: imported once, reused after. */
export function keyPairName(ctx: Ctx, api: Ec2, wsid: string): Promise<string> {
  const name = `prov-${wsid}`
  return awsCalls.get(`${api.endpoint}\0key\0${name}`, async () => {
    const found = await api.send<{ KeyPairs?: unknown[] }>(
      'DescribeKeyPairs',
      new api.sdk.DescribeKeyPairsCommand({ Filters: [{ Name: 'key-name', Values: [name] }] }),
    )
    if (found.KeyPairs?.length) return name
    const key = await ensureWorkspaceKey(ctx.workspace)
    try {
      await api.send(
        'ImportKeyPair',
        new api.sdk.ImportKeyPairCommand({
          KeyName: name,
          PublicKeyMaterial: Buffer.from(key.publicKey.trim()),
          TagSpecifications: [{ ResourceType: 'key-pair', Tags: identityTags(wsid) }],
        }),
      )
    } catch (error) {
      if (!isDuplicate(error)) throw error
    }
    return name
  })
}

/**
 * The security group `prov-<id>-ssh` letting `ssh_cidr` reach the SSH port, made once per
 * workspace and port. Its rule is checked each time: a create interrupted between making the
 * group and opening the port, or a changed ssh_cidr, is repaired rather than leaving SSH shut.
 */
export function securityGroupId(ctx: Ctx, api: Ec2, wsid: string, port: number): Promise<string> {
  const name = `prov-${wsid}-ssh${port === 22 ? '' : `-${port}`}`
  const cidr = ctx.config.ssh_cidr ?? DEFAULT_SSH_CIDR
  return awsCalls.get(`${api.endpoint}\0sg\0${name}\0${cidr}`, async () => {
    const describe = () =>
      api.send<{ SecurityGroups?: SecurityGroup[] }>(
        'DescribeSecurityGroups',
        new api.sdk.DescribeSecurityGroupsCommand({ Filters: [{ Name: 'group-name', Values: [name] }] }),
      )
    let group = (await describe()).SecurityGroups?.[0]
    if (!group?.GroupId) {
      try {
        await api.send(
          'CreateSecurityGroup',
          new api.sdk.CreateSecurityGroupCommand({
            GroupName: name,
            Description: `prov workspace ${wsid}: SSH on port ${port}`,
            TagSpecifications: [{ ResourceType: 'security-group', Tags: identityTags(wsid) }],
          }),
        )
      } catch (error) {
        if (!isDuplicate(error)) throw error
      }
      group = (await describe()).SecurityGroups?.[0]
      if (!group?.GroupId) throw failedError(`aws made security group ${name} but does not list it`, { hint: 'retry: EC2 may be slow to show it' })
    }
    const id = group.GroupId
    const rule = (group.IpPermissions ?? []).find((p) => p.IpProtocol === 'tcp' && p.FromPort === port && p.ToPort === port)
    const ranges = (rule?.IpRanges ?? []).map((r) => r.CidrIp)
    if (!ranges.includes(cidr)) {
      try {
        await api.send(
          'AuthorizeSecurityGroupIngress',
          new api.sdk.AuthorizeSecurityGroupIngressCommand({
            GroupId: id,
            IpPermissions: [{ IpProtocol: 'tcp', FromPort: port, ToPort: port, IpRanges: [{ CidrIp: cidr, Description: 'prov ssh' }] }],
          }),
        )
      } catch (error) {
        if (!isDuplicate(error)) throw error
      }
    }
    // Only ssh_cidr may reach SSH: ranges an earlier ssh_cidr opened are closed.
    const stale = ranges.filter((r): r is string => !!r && r !== cidr)
    if (stale.length) {
      await api.send(
        'RevokeSecurityGroupIngress',
        new api.sdk.RevokeSecurityGroupIngressCommand({
          GroupId: id,
          IpPermissions: [{ IpProtocol: 'tcp', FromPort: port, ToPort: port, IpRanges: stale.map((CidrIp) => ({ CidrIp })) }],
        }),
      )
    }
    return id
  })
}

/**
 * The key pair and security groups prov made for the workspace go with its last server: no other
 * aws create in progress (recorded `creating` before it starts) and no live tagged instance. A
 * group something else still uses is left, with a warning, rather than failing the delete; one a
 * concurrent delete removed first is fine.
 */
export async function removeSharedWhenUnused(ctx: Ctx, api: Ec2, wsid: string, name: string, terminated: readonly string[]): Promise<void> {
  if (ctx.allServers().some((r) => r.provider === 'aws' && r.name !== name && r.status === 'creating')) return
  const left = (await instancesOf(api, tagFilters(wsid))).filter((i) => !terminated.includes(i.InstanceId ?? '') && isOurs(i, wsid))
  if (left.length) return
  awsCalls.forget(`${api.endpoint}\0`)
  const ours = [{ Name: `tag:${IDENTITY.workspace}`, Values: [wsid] }]
  // The tag filter is EC2's; the tags are checked again, so a key or group of someone else is never deleted.
  const keys = await api.send<{ KeyPairs?: { KeyPairId?: string; KeyName?: string; Tags?: { Key?: string; Value?: string }[] }[] }>(
    'DescribeKeyPairs',
    new api.sdk.DescribeKeyPairsCommand({ Filters: ours }),
  )
  for (const key of keys.KeyPairs ?? []) {
    if (key.KeyName && carriesIdentity(tagsOf(key.Tags), wsid)) await api.send('DeleteKeyPair', new api.sdk.DeleteKeyPairCommand({ KeyName: key.KeyName }))
  }
  const groups = await api.send<{ SecurityGroups?: SecurityGroup[] }>('DescribeSecurityGroups', new api.sdk.DescribeSecurityGroupsCommand({ Filters: ours }))
  for (const group of groups.SecurityGroups ?? []) {
    if (!group.GroupId || !carriesIdentity(tagsOf(group.Tags), wsid)) continue
    try {
      await api.send('DeleteSecurityGroup', new api.sdk.DeleteSecurityGroupCommand({ GroupId: group.GroupId }))
    } catch (error) {
      if (error instanceof ProvError && error.code === ExitCode.NOT_FOUND) continue
      if (faultCode(error) !== 'DependencyViolation') throw error
      ctx.log.warn(`aws: security group ${group.GroupName ?? group.GroupId} is still in use outside prov: left in place`)
    }
  }
}
