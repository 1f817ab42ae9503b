import { createHash, generateKeyPairSync } from 'node:crypto'
import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { loadOrCreateSigningKey, privateKeyFile, publicJwk } from '../../src/keys.js'

t.test('a key pair is created once in the data dir and reused', async (t) => {
  const dataDir = join(t.testdir(), 'nested', 'data')
  const first = await loadOrCreateSigningKey(dataDir)
  t.equal(first.asymmetricKeyType, 'ed25519')
  const file = join(dataDir, privateKeyFile)
  t.equal((await stat(file)).mode & 0o777, 0o600, 'readable by the owner only')
  t.match(await readFile(file, 'utf8'), /^-----BEGIN PRIVATE KEY-----/)
  const again = await loadOrCreateSigningKey(dataDir)
  t.ok(again.equals(first), 'the same key after a restart')

  const [a, b] = await Promise.all([loadOrCreateSigningKey(join(dataDir, 'race')), loadOrCreateSigningKey(join(dataDir, 'race'))])
  t.ok(a.equals(b), 'two instances starting together agree')
})

t.test('the public JWK carries its RFC 7638 thumbprint as kid', async (t) => {
  const { privateKey } = generateKeyPairSync('ed25519')
  const jwk = publicJwk(privateKey)
  t.same(Object.keys(jwk).sort(), ['alg', 'crv', 'kid', 'kty', 'use', 'x'])
  t.match(jwk, { kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', use: 'sig' })
  const canonical = `{"crv":"Ed25519","kty":"OKP","x":"${jwk.x}"}`
  t.equal(jwk.kid, createHash('sha256').update(canonical).digest('base64url'))
})
