import { createHash, randomBytes, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto'
import { link, mkdir, readFile, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

export const privateKeyFile = 'jwt-private-key.pem'

export interface PublicJwk {
  kty: string
  crv: string
  x: string
  kid: string
  alg: 'EdDSA'
  use: 'sig'
}

/**
 * The key pair kept in dataDir, created on first start. Written to a temporary file
 * and linked into place, so instances starting together all end up with the same key.
 */
export async function loadOrCreateSigningKey (dataDir: string): Promise<KeyObject> {
  const path = join(dataDir, privateKeyFile)
  const pem = await readFile(path, 'utf8').catch(async () => {
    await mkdir(dataDir, { recursive: true, mode: 0o700 })
    const fresh = generateKeyPem().privateKey
    const temporary = `${path}.${randomBytes(8).toString('hex')}.tmp`
    await writeFile(temporary, fresh, { mode: 0o600 })
    await link(temporary, path).catch((error: NodeJS.ErrnoException) => {
      // EEXIST: another instance linked its key first, and that one wins.
      /* c8 ignore next: a link failing otherwise (read-only disk) cannot be staged as root */
      if (error.code !== 'EEXIST') throw error
    })
    await unlink(temporary)
    return readFile(path, 'utf8')
  })
  return createPrivateKey(pem)
}

/** A new Ed25519 key pair as PEM: PKCS #8 for JWT_PRIVATE_KEY, SPKI for JWT_PUBLIC_KEY. */
export function generateKeyPem (): { privateKey: string, publicKey: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  return {
    privateKey: privateKey.export({ format: 'pem', type: 'pkcs8' }) as string,
    publicKey: publicKey.export({ format: 'pem', type: 'spki' }) as string
  }
}

/** The public key itself, or the public half of a private key. */
export const publicKeyOf = (key: KeyObject) => key.type === 'public' ? key : createPublicKey(key)

/** The public key as a JWK, with its RFC 7638 thumbprint as kid. */
export function publicJwk (key: KeyObject): PublicJwk {
  const { crv, kty, x } = publicKeyOf(key).export({ format: 'jwk' }) as { crv: string, kty: string, x: string }
  const kid = createHash('sha256').update(JSON.stringify({ crv, kty, x })).digest('base64url')
  return { kty, crv, x, kid, alg: 'EdDSA', use: 'sig' }
}
