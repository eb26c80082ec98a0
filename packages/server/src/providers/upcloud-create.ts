import { ExitCode, ensureWorkspaceKey, failedError, forgetHostKey, ProvError, type ServerRecord } from '@prov/core'
import { cloudDefaults, IDENTITY, waitForSsh, workspaceId } from './cloud/common'
import type { CreateOptions, DeleteOptions, ServerSpec } from './types'
import { api, awaitState, type Ctx, findServer, powerOn, publicIpv4, recordOf, type UpcloudConfig, type UServer, UUID } from './upcloud-api'
import { checkChoices, imageOf, planOf, templateOf, zoneOf } from './upcloud-catalog'

// Making and removing upcloud servers: the create request, adoption of a server this workspace
// labelled, and delete with the server's storages.

/** The system disk when neither the server nor the config gives a size (GB). */
const DEFAULT_DISK_GB = 10

/** The create request: one system disk cloned from the template, public and utility IPv4 plus IPv6. */
function createBody(spec: ServerSpec, config: UpcloudConfig, template: string, wsid: string, publicKey: string, options?: CreateOptions) {
  const plan = planOf(spec, config)
  const labels = { ...spec.labels, [IDENTITY.workspace]: wsid, [IDENTITY.server]: spec.name }
  const address = (family: string) => ({ ip_addresses: { ip_address: [{ family }] } })
  return {
    server: {
      title: spec.name,
      hostname: spec.name,
      zone: zoneOf(spec, config),
      ...(plan ? { plan } : {}),
      labels: { label: Object.entries(labels).map(([key, value]) => ({ key, value })) },
      // cloud-init reads user data from the metadata service, so it is on when there is any.
      metadata: options?.userData ? 'yes' : 'no',
      ...(options?.userData ? { user_data: options.userData } : {}),
      login_user: { username: spec.ssh.user, create_password: 'no', ssh_keys: { ssh_key: [publicKey.trim()] } },
      password_delivery: 'none',
      remote_access_enabled: 'no',
      networking: {
        interfaces: {
          interface: [
            { ...address('IPv4'), type: 'utility' },
            { ...address('IPv4'), type: 'public' },
            { ...address('IPv6'), type: 'public' },
          ],
        },
      },
      storage_devices: {
        storage_device: [
          {
            action: 'clone',
            storage: template,
            title: `${spec.name}-disk`,
            size: spec.disk_gb ?? config.disk_gb ?? DEFAULT_DISK_GB,
            tier: config.storage_tier ?? 'maxiops',
          },
        ],
      },
    },
  }
}

/** Creates the server (or adopts the one this workspace labelled for the name) and waits until it is ready. */
export async function createServer(ctx: Ctx, spec: ServerSpec, record: ServerRecord, options?: CreateOptions): Promise<ServerRecord> {
  const client = await api(ctx)
  let server = await findServer(ctx, client, spec.name)
  if (server) {
    ctx.log.info(`upcloud: ${spec.name} already exists (uuid ${server.uuid}, labelled by this workspace): adopting it`)
    if (server.state === 'stopped') server = await powerOn(client, server.uuid)
  } else {
    await checkChoices(ctx, client, [spec])
    const template = await templateOf(client, imageOf(spec, ctx.config) as string, spec.name)
    const key = await ensureWorkspaceKey(ctx.workspace)
    const body = createBody(spec, ctx.config, template, workspaceId(ctx.workspace), key.publicKey, options)
    server = (await client.request<{ server: UServer }>('POST', '/server', { body })).server
    if (!server || typeof server.uuid !== 'string' || !UUID.test(server.uuid)) throw failedError('the upcloud API answered the create without a server UUID')
  }
  const uuid = server.uuid
  // Still `creating` until ready: a create killed from here on is finished by the next plan.
  await ctx.save({ ...recordOf(record, server), status: 'creating' }, { uuid })
  const running =
    server.state === 'started' && publicIpv4(server)
      ? server
      : await awaitState(ctx, client, uuid, `upcloud server ${spec.name} to start`, (s) => s.state === 'started' && !!publicIpv4(s))
  const next = recordOf(record, running)
  if ((ctx.config.ready ?? cloudDefaults.ready) === 'ssh') await waitForSsh(ctx, spec.name, next.ip_address, spec.ssh.port)
  await ctx.save(next, { uuid })
  return next
}

/** Deletes the server with its storages (unless kept); a storage the cascade left behind is deleted too. */
export async function deleteServer(ctx: Ctx, record: ServerRecord, options: DeleteOptions): Promise<void> {
  const client = await api(ctx)
  const server = await findServer(ctx, client, record.name)
  if (server) {
    // The server is destroyed anyway: a hard stop, as the API only deletes stopped servers.
    if (server.state !== 'stopped') {
      await client.request('POST', `/server/${server.uuid}/stop`, { body: { stop_server: { stop_type: 'hard', timeout: '60' } } })
    }
    const disks = (server.storage_devices?.storage_device ?? []).filter((d) => d.type === undefined || d.type === 'disk').map((d) => d.storage)
    const remove = () =>
      options.keepStorage ? client.request('DELETE', `/server/${server.uuid}`) : client.request('DELETE', `/server/${server.uuid}/`, { query: { storages: 1 } })
    try {
      await remove()
    } catch (error) {
      // A hard stop can still be in progress: wait until the API says stopped, then delete.
      if (!(error instanceof ProvError && error.code === ExitCode.USAGE && /STATE_ILLEGAL/.test(error.message))) throw error
      await awaitState(ctx, client, server.uuid, `upcloud server ${record.name} to stop`, (s) => s.state === 'stopped')
      await remove()
    }
    if (!options.keepStorage && disks.length) {
      // The disks go with the server; one left behind (a failed cascade) is deleted, never orphaned.
      const storages = await client.items<{ uuid?: unknown }>('GET', '/storage/private', 'storages.storage')
      for (const left of storages.filter((s): s is { uuid: string } => typeof s.uuid === 'string' && disks.includes(s.uuid)))
        await client.request('DELETE', `/storage/${left.uuid}`)
    }
  }
  if (record.ip_address) await forgetHostKey(ctx.workspace, record.ip_address, record.ssh.port)
}
