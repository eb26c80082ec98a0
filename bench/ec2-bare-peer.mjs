// P9's peer: the calls prov's aws provider makes to apply `count` servers, written directly against
// @aws-sdk/client-ec2 with the same parallelism (key pair and security group once, then per server:
// look up by tags, RunInstances with tags and user data, poll until running). No state, no checks.
// Usage: node bench/ec2-bare-peer.mjs ENDPOINT COUNT PARALLEL PUBLIC_KEY_FILE IMAGE
import { readFileSync } from 'node:fs'
import {
  AuthorizeSecurityGroupIngressCommand,
  CreateSecurityGroupCommand,
  DescribeInstancesCommand,
  DescribeKeyPairsCommand,
  DescribeSecurityGroupsCommand,
  EC2Client,
  ImportKeyPairCommand,
  RunInstancesCommand,
} from '@aws-sdk/client-ec2'

const [endpoint, count, parallel, keyFile, image] = process.argv.slice(2)
const ec2 = new EC2Client({ region: 'us-east-1', endpoint, maxAttempts: 5 })
const id = `bare${Date.now().toString(16)}`
const tags = (name) => [
  { Key: 'prov-workspace', Value: id },
  { Key: 'prov-server', Value: name },
]
const keys = await ec2.send(new DescribeKeyPairsCommand({ Filters: [{ Name: 'key-name', Values: [id] }] }))
if (!keys.KeyPairs?.length) await ec2.send(new ImportKeyPairCommand({ KeyName: id, PublicKeyMaterial: readFileSync(keyFile) }))
const groups = await ec2.send(new DescribeSecurityGroupsCommand({ Filters: [{ Name: 'group-name', Values: [`${id}-ssh`] }] }))
let groupId = groups.SecurityGroups?.[0]?.GroupId
if (!groupId) {
  groupId = (await ec2.send(new CreateSecurityGroupCommand({ GroupName: `${id}-ssh`, Description: 'bench' }))).GroupId
  await ec2.send(
    new AuthorizeSecurityGroupIngressCommand({
      GroupId: groupId,
      IpPermissions: [{ IpProtocol: 'tcp', FromPort: 22, ToPort: 22, IpRanges: [{ CidrIp: '203.0.113.0/24' }] }],
    }),
  )
}
const describe = async (filters) => (await ec2.send(new DescribeInstancesCommand({ Filters: filters }))).Reservations?.flatMap((r) => r.Instances ?? []) ?? []
async function one(name) {
  const found = await describe([
    { Name: 'tag:prov-workspace', Values: [id] },
    { Name: 'tag:prov-server', Values: [name] },
    { Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped'] },
  ])
  let instance = found[0]
  if (!instance) {
    const run = await ec2.send(
      new RunInstancesCommand({
        ImageId: image,
        InstanceType: 't3.micro',
        MinCount: 1,
        MaxCount: 1,
        KeyName: id,
        SecurityGroupIds: [groupId],
        UserData: Buffer.from(`#cloud-config\nwrite_files:\n  - path: /etc/motd\n    content: hello from ${name}\n`).toString('base64'),
        TagSpecifications: [{ ResourceType: 'instance', Tags: [...tags(name), { Key: 'Name', Value: name }] }],
      }),
    )
    instance = run.Instances?.[0]
  }
  for (;;) {
    const current = (await describe([{ Name: 'instance-id', Values: [instance.InstanceId] }]))[0]
    if (current?.State?.Name === 'running') return
    await new Promise((resolve) => setTimeout(resolve, 2000))
  }
}
const queue = Array.from({ length: Number(count) }, (_, i) => `bare-${i + 1}`)
await Promise.all(
  Array.from({ length: Number(parallel) }, async () => {
    for (let name = queue.shift(); name; name = queue.shift()) await one(name)
  }),
)
ec2.destroy()
