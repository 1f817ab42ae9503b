import { createHmac, createPublicKey, generateKeyPairSync, sign } from 'node:crypto'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { eq } from 'drizzle-orm'
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose'
import t from 'tap'
import { users } from '../../src/db/schema.js'
import { privateKeyFile } from '../../src/keys.js'
import { bearer, build, claimsOf, registerAndLogin, testEnvironment } from '../helper.js'

const b64 = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url')

t.test('GET /auth/me/', async (t) => {
  const app = await build(t)
  const { user, tokens: pair } = await registerAndLogin(app)
  const me = (headers: Record<string, string> = {}) => app.inject({ method: 'GET', url: '/auth/me/', headers })
  const claims = claimsOf(pair.access)

  t.test('answers the current user', async (t) => {
    for (const url of ['/auth/me/', '/auth/me']) {
      const response = await app.inject({ method: 'GET', url, headers: bearer(pair.access) })
      t.equal(response.statusCode, 200)
      t.same(response.json(), user)
      t.equal(response.headers['cache-control'], 'no-store')
    }
    t.equal((await me({ authorization: `bearer ${pair.access}` })).statusCode, 200, 'the scheme is case-insensitive')
  })

  t.test('without credentials: 401 not_authenticated with a bare challenge', async (t) => {
    const response = await me()
    t.equal(response.statusCode, 401)
    t.same(response.json(), { statusCode: 401, error: 'Unauthorized', code: 'not_authenticated', message: 'Authentication credentials were not provided.', detail: 'Authentication credentials were not provided.' })
    t.equal(response.headers['www-authenticate'], 'Bearer realm="api"')
  })

  const jwk = app.tokenService.jwks.keys[0]!
  const publicKeyPem = createPublicKey({ key: { kty: jwk.kty, crv: jwk.crv, x: jwk.x }, format: 'jwk' }).export({ format: 'pem', type: 'spki' }) as string
  const [header, payload] = pair.access.split('.') as [string, string]
  const hs256 = (secret: string) => {
    const head = b64({ alg: 'HS256', typ: 'JWT', kid: jwk.kid })
    return `${head}.${payload}.${createHmac('sha256', secret).update(`${head}.${payload}`).digest('base64url')}`
  }
  const foreignKey = generateKeyPairSync('ed25519').privateKey
  const foreignSignature = sign(null, Buffer.from(`${header}.${payload}`), foreignKey).toString('base64url')
  const cases: Array<[string, string, string]> = [
    ['a scheme other than Bearer', `Basic ${b64('user:pass')}`, 'token_invalid'],
    ['Bearer without a token', 'Bearer', 'token_invalid'],
    ['Bearer with two words', `Bearer ${pair.access} extra`, 'token_invalid'],
    ['garbage', 'Bearer not-a-jwt', 'token_invalid'],
    ['alg none', `Bearer ${b64({ alg: 'none', typ: 'JWT' })}.${payload}.`, 'token_invalid'],
    ['HS256 signed with the public key', `Bearer ${hs256(publicKeyPem)}`, 'token_invalid'],
    ['a tampered payload', `Bearer ${header}.${b64({ ...claims, sub: String(user.id + 1), user_id: user.id + 1 })}.${pair.access.split('.')[2]}`, 'token_invalid'],
    ['a refresh token', `Bearer ${pair.refresh}`, 'token_invalid'],
    ['an expired token', `Bearer ${app.jwt.sign({ ...claims, iat: 1000, exp: 2000 } as never)}`, 'token_expired'],
    ['a wrong issuer', `Bearer ${app.jwt.sign({ ...claims, iss: 'someone-else' } as never)}`, 'token_invalid'],
    ['a wrong audience', `Bearer ${app.jwt.sign({ ...claims, aud: 'other-api' } as never)}`, 'token_invalid'],
    ['no exp', `Bearer ${app.jwt.sign({ ...claims, exp: undefined } as never)}`, 'token_invalid'],
    ['a signature by another Ed25519 key', `Bearer ${header}.${payload}.${foreignSignature}`, 'token_invalid']
  ]

  t.test('refuses every bad token with 401 and the RFC 6750 challenge', async (t) => {
    for (const [name, authorization, code] of cases) {
      const response = await me({ authorization })
      t.equal(response.statusCode, 401, name)
      t.equal(response.json().code, code, name)
      t.match(response.headers['www-authenticate'], /^Bearer realm="api", error="invalid_token", error_description="[^"]+"$/, name)
    }
    t.equal((await me(bearer(pair.access))).statusCode, 200, 'still answering')
  })

  t.test('the JWKS verifies access tokens with a standard JWT library', async (t) => {
    const response = await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })
    t.equal(response.statusCode, 200)
    const jwks = response.json()
    t.match(jwks, { keys: [{ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', use: 'sig', kid: String, x: String }] })
    t.notOk('d' in jwks.keys[0], 'no private part')
    const verified = await jwtVerify(pair.access, createLocalJWKSet(jwks), { issuer: 'auth-service', audience: 'api', algorithms: ['EdDSA'] })
    t.equal(verified.protectedHeader.kid, jwks.keys[0].kid)
    t.equal(verified.payload.sub, String(user.id))
  })

  t.test('a relying party verifying as the README says accepts the access token and refuses the refresh token', async (t) => {
    const jwks = createLocalJWKSet((await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json())
    const asTheReadmeSays = (token: string) => jwtVerify(token, jwks, { algorithms: ['EdDSA'], typ: 'at+jwt', issuer: 'auth-service', audience: 'api' })
    const { protectedHeader } = await asTheReadmeSays(pair.access)
    t.equal(protectedHeader.typ, 'at+jwt')
    await t.rejects(asTheReadmeSays(pair.refresh), { code: 'ERR_JWT_CLAIM_VALIDATION_FAILED', claim: 'typ' } as never, 'a refresh token is refused')
    // Even by one that forgets typ: the audience differs.
    await t.rejects(jwtVerify(pair.refresh, jwks, { algorithms: ['EdDSA'], issuer: 'auth-service', audience: 'api' }), { code: 'ERR_JWT_CLAIM_VALIDATION_FAILED', claim: 'aud' } as never)
    t.same(decodeProtectedHeader(pair.refresh).typ, 'refresh+jwt')
    t.equal(claimsOf(pair.refresh).aud, 'auth-service', 'the service itself is the audience of its refresh tokens')
  })

  t.test('an access token with the audience of refresh tokens is refused here too', async (t) => {
    const forged = app.jwt.sign({ ...claimsOf(pair.access), aud: 'auth-service' } as never)
    const response = await me(bearer(forged))
    t.equal(response.statusCode, 401)
    t.equal(response.json().code, 'token_invalid')
  })

  t.test('a token of a user who no longer exists is refused', async (t) => {
    const other = await registerAndLogin(app)
    await app.db.delete(users).where(eq(users.id, other.user.id))
    const response = await me(bearer(other.tokens.access))
    t.equal(response.statusCode, 401)
    t.equal(response.json().code, 'token_invalid')
  })
})

t.test('JWT_PRIVATE_KEY, JWT_ISSUER and JWT_AUDIENCE are what tokens are signed with', async (t) => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  const environment = await testEnvironment(t, {
    JWT_PRIVATE_KEY: privateKey.export({ format: 'pem', type: 'pkcs8' }) as string,
    JWT_ISSUER: 'https://auth.example.com',
    JWT_AUDIENCE: 'mobile-app'
  })
  const app = await build(t, environment)
  const { tokens: pair } = await registerAndLogin(app)
  const { payload } = await jwtVerify(pair.access, publicKey, { issuer: 'https://auth.example.com', audience: 'mobile-app', algorithms: ['EdDSA'] })
  t.equal(payload.token_type, 'access')
  t.equal(existsSync(join(environment.DATA_DIR!, privateKeyFile)), false, 'no key is generated into DATA_DIR')
})

t.test('a token answered from the verified-token cache is still refused once it expires', async (t) => {
  // exp is whole seconds after iat, itself rounded down: 4 s leave a token at least 3 s of life.
  const app = await build(t, await testEnvironment(t, { ACCESS_TOKEN_TTL: '4s' }))
  const { tokens: pair } = await registerAndLogin(app)
  const me = () => app.inject({ method: 'GET', url: '/auth/me/', headers: bearer(pair.access) })
  t.equal((await me()).statusCode, 200)
  t.equal((await me()).statusCode, 200, 'the second use comes from the cache')
  await new Promise((resolve) => setTimeout(resolve, (Number(claimsOf(pair.access).exp) * 1000) - Date.now() + 50))
  const expired = await me()
  t.equal(expired.statusCode, 401)
  t.equal(expired.json().code, 'token_expired')
})
