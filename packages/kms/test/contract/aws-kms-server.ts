/**
 * A local contract server for AWS KMS, for what the independent emulator (moto, see moto.ts)
 * cannot show: refusals and throttling on demand, and the requests as sent. The JSON 1.1 protocol
 * (POST /, `X-Amz-Target: TrentService.<Operation>`, `application/x-amz-json-1.1`), every request
 * signed with Signature Version 4 and the signature verified against the test credentials,
 * Encrypt / Decrypt / GenerateDataKey / DescribeKey with the EncryptionContext bound as AAD, and
 * the documented error answers (`{"__type": "AccessDeniedException", "message": ...}`,
 * ThrottlingException, InvalidCiphertextException, NotFoundException). Tests only.
 */
import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

/** The credentials requests must be signed with. */
export const TEST_CREDENTIALS = { accessKeyId: 'AKIDEXAMPLETEST', secretAccessKey: 'test-secret-access-key-value' }

const hex = (data: Buffer | string) => createHash('sha256').update(data).digest('hex')
const hmac = (key: Buffer | string, data: string) => createHmac('sha256', key).update(data).digest()

/**
 * Verifies a Signature Version 4 Authorization header (docs.aws.amazon.com/IAM/latest/UserGuide/
 * create-signed-request.html): the canonical request from the method, path, query, the signed
 * headers as received and the payload hash; the string to sign with the credential scope; the
 * signing key derived from the secret by date, region and service. An error type, or undefined.
 */
function verifySigV4(req: IncomingMessage, body: Buffer): string | undefined {
  const auth = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([a-z0-9-]+)\/kms\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/.exec(
    String(req.headers.authorization ?? ''),
  )
  if (!auth) return 'IncompleteSignatureException'
  const [, accessKey, date, region, signedHeaders, signature] = auth
  if (accessKey !== TEST_CREDENTIALS.accessKeyId) return 'UnrecognizedClientException'
  const amzDate = String(req.headers['x-amz-date'] ?? '')
  const names = signedHeaders.split(';')
  if (!/^\d{8}T\d{6}Z$/.test(amzDate) || !amzDate.startsWith(date) || !names.includes('host') || !names.includes('x-amz-date'))
    return 'IncompleteSignatureException'
  const [path, query = ''] = (req.url ?? '/').split('?')
  const canonicalQuery = query.split('&').filter(Boolean).sort().join('&')
  const canonicalHeaders = names
    .map(
      (name) =>
        `${name}:${String(req.headers[name] ?? '')
          .trim()
          .replace(/\s+/g, ' ')}\n`,
    )
    .join('')
  const canonicalRequest = [req.method, path, canonicalQuery, canonicalHeaders, signedHeaders, hex(body)].join('\n')
  const scope = `${date}/${region}/kms/aws4_request`
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, hex(canonicalRequest)].join('\n')
  const signingKey = hmac(hmac(hmac(hmac(`AWS4${TEST_CREDENTIALS.secretAccessKey}`, date), region), 'kms'), 'aws4_request')
  const expected = hmac(signingKey, stringToSign)
  return timingSafeEqual(expected, Buffer.from(signature, 'hex')) ? undefined : 'InvalidSignatureException'
}

export interface AwsKmsContract {
  url: string
  keyArn: string
  requests: Array<{ target: string; body: Record<string, unknown> }>
  throttle(n: number): void
  deny(on: boolean): void
  close(): Promise<void>
}

const region = 'us-east-1'
const account = '111122223333'

export async function startAwsKmsContract(): Promise<AwsKmsContract> {
  const keyUuid = '1234abcd-12ab-34cd-56ef-1234567890ab'
  const keyArn = `arn:aws:kms:${region}:${account}:key/${keyUuid}`
  const material = randomBytes(32)
  const aliases = new Map([
    ['alias/prov', keyArn],
    [keyUuid, keyArn],
    [keyArn, keyArn],
  ])
  let throttleLeft = 0
  let denied = false
  const requests: AwsKmsContract['requests'] = []

  const send = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': randomBytes(8).toString('hex') })
    res.end(JSON.stringify(body))
  }
  const fail = (res: ServerResponse, type: string, message: string) => {
    res.setHeader('x-amzn-errortype', `${type}:`)
    send(res, 400, { __type: type, message })
  }
  const aad = (context: unknown) => {
    const entries = Object.entries((context ?? {}) as Record<string, string>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    return Buffer.from(JSON.stringify(entries))
  }
  const seal = (plain: Buffer, context: unknown) => {
    const nonce = randomBytes(12)
    const cipher = createCipheriv('aes-256-gcm', material, nonce)
    cipher.setAAD(aad(context))
    const ct = Buffer.concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()])
    const id = Buffer.from(keyArn)
    return Buffer.concat([Buffer.from([id.length]), id, nonce, ct]).toString('base64')
  }
  const open = (blob: string, context: unknown): Buffer | undefined => {
    const raw = Buffer.from(blob ?? '', 'base64')
    if (raw.length < 1 + 12 + 16) return undefined
    const idLength = raw[0]
    if (raw.subarray(1, 1 + idLength).toString() !== keyArn) return undefined
    const rest = raw.subarray(1 + idLength)
    const decipher = createDecipheriv('aes-256-gcm', material, rest.subarray(0, 12))
    decipher.setAAD(aad(context))
    decipher.setAuthTag(rest.subarray(rest.length - 16))
    try {
      return Buffer.concat([decipher.update(rest.subarray(12, rest.length - 16)), decipher.final()])
    } catch {
      return undefined
    }
  }

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    const target = String(req.headers['x-amz-target'] ?? '')
    if (req.method !== 'POST' || !target.startsWith('TrentService.')) return fail(res, 'UnknownOperationException', '')
    if (!req.headers.authorization) return fail(res, 'MissingAuthenticationTokenException', 'Missing Authentication Token')
    const signatureError = verifySigV4(req, Buffer.concat(chunks))
    if (signatureError) {
      return fail(
        res,
        signatureError,
        signatureError === 'UnrecognizedClientException'
          ? 'The security token included in the request is invalid.'
          : 'The request signature we calculated does not match the signature you provided.',
      )
    }
    let body: Record<string, unknown>
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}')
    } catch {
      return fail(res, 'SerializationException', 'Start of structure or map found where not expected')
    }
    const operation = target.slice('TrentService.'.length)
    requests.push({ target: operation, body })
    if (throttleLeft > 0) {
      throttleLeft--
      return fail(res, 'ThrottlingException', 'Rate exceeded')
    }
    if (denied)
      return fail(res, 'AccessDeniedException', `User: arn:aws:iam::${account}:user/test is not authorized to perform: kms:${operation} on resource: ${keyArn}`)
    const resolveKey = () => aliases.get(String(body.KeyId ?? ''))
    switch (operation) {
      case 'Encrypt': {
        if (!resolveKey()) return fail(res, 'NotFoundException', `Key '${String(body.KeyId)}' does not exist`)
        const plain = Buffer.from(String(body.Plaintext ?? ''), 'base64')
        if (!plain.length || plain.length > 4096)
          return fail(res, 'ValidationException', '1 validation error detected: Value at plaintext failed to satisfy constraint')
        return send(res, 200, { CiphertextBlob: seal(plain, body.EncryptionContext), KeyId: keyArn, EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' })
      }
      case 'Decrypt': {
        if (body.KeyId !== undefined && !resolveKey()) return fail(res, 'NotFoundException', `Key '${String(body.KeyId)}' does not exist`)
        const plain = open(String(body.CiphertextBlob ?? ''), body.EncryptionContext)
        if (!plain) return fail(res, 'InvalidCiphertextException', '')
        return send(res, 200, { Plaintext: plain.toString('base64'), KeyId: keyArn, EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' })
      }
      case 'GenerateDataKey': {
        if (!resolveKey()) return fail(res, 'NotFoundException', `Key '${String(body.KeyId)}' does not exist`)
        const size = body.KeySpec === 'AES_128' ? 16 : body.KeySpec === 'AES_256' ? 32 : Number(body.NumberOfBytes ?? 0)
        if (!size || size > 1024) return fail(res, 'ValidationException', 'Please specify either number of bytes or key spec.')
        const plain = randomBytes(size)
        return send(res, 200, { Plaintext: plain.toString('base64'), CiphertextBlob: seal(plain, body.EncryptionContext), KeyId: keyArn })
      }
      case 'DescribeKey':
        if (!resolveKey()) return fail(res, 'NotFoundException', `Key '${String(body.KeyId)}' does not exist`)
        return send(res, 200, {
          KeyMetadata: { KeyId: keyUuid, Arn: keyArn, Enabled: true, KeyState: 'Enabled', KeyUsage: 'ENCRYPT_DECRYPT', AWSAccountId: account },
        })
      default:
        return fail(res, 'UnsupportedOperationException', `${operation} is not supported by this contract server`)
    }
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error) => fail(res, 'KMSInternalException', String(error)))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    keyArn,
    requests,
    throttle(n) {
      throttleLeft = n
    },
    deny(on) {
      denied = on
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
