/**
 * moto_server (moto 5) with a KMS key: the AWS KMS backend is also tested against someone else's
 * reading of the KMS API, not only our own contract server. The emulator itself is the shared
 * one of tests/helpers/moto.ts.
 */
import { startMoto as startMotoServer } from '../../../../tests/helpers/moto'
import { TEST_CREDENTIALS } from './aws-kms-server'

export interface MotoKms {
  url: string
  keyArn: string
  /** Forgets every key (POST /moto-api/reset) and creates alias/prov again. */
  reset(): Promise<void>
  close(): Promise<void>
}

async function createKey(url: string): Promise<string> {
  const { KMSClient, CreateKeyCommand, CreateAliasCommand } = await import('@aws-sdk/client-kms')
  const client = new KMSClient({ region: 'us-east-1', endpoint: url, credentials: TEST_CREDENTIALS })
  const key = await client.send(new CreateKeyCommand({ Description: 'prov-kms tests' }))
  const keyId = key.KeyMetadata?.KeyId as string
  await client.send(new CreateAliasCommand({ AliasName: 'alias/prov', TargetKeyId: keyId }))
  client.destroy()
  return key.KeyMetadata?.Arn as string
}

export async function startMoto(): Promise<MotoKms> {
  const moto = await startMotoServer()
  let keyArn = await createKey(moto.url)
  return {
    url: moto.url,
    get keyArn() {
      return keyArn
    },
    async reset() {
      await moto.reset()
      keyArn = await createKey(moto.url)
    },
    close: () => moto.close(),
  }
}
