import { generateKeyPairSync } from 'node:crypto'
import t from 'tap'
import { publicJwk } from '../../src/keys.js'
import { bearer, build, claimsOf, registerAndLogin, testEnvironment } from '../helper.js'

t.test('POST /auth/verify/ and /auth/introspect/', async (t) => {
  const secret = 'introspection-secret-of-the-gateway'
  const app = await build(t, await testEnvironment(t, { INTROSPECTION_SECRET: secret }))
  const { body, user, tokens: pair } = await registerAndLogin(app)
  const loggedOut = (await app.inject({ method: 'POST', url: '/auth/login/', payload: { username: body.username, password: body.password } })).json()
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout/', payload: { refresh: loggedOut.refresh } })).statusCode, 204)
  const expired = app.jwt.sign({ ...claimsOf(pair.access), iat: 1000, exp: 2000 } as never)

  t.test('verify: 200 {} for a live token of either type, 401 otherwise', async (t) => {
    const verify = (token: unknown) => app.inject({ method: 'POST', url: '/auth/verify/', payload: { token } })
    for (const token of [pair.access, pair.refresh]) {
      const response = await verify(token)
      t.equal(response.statusCode, 200)
      t.same(response.json(), {})
    }
    const cases: Array<[string, string]> = [
      [loggedOut.access, 'token_revoked'],
      [loggedOut.refresh, 'token_revoked'],
      [expired, 'token_expired'],
      ['nonsense', 'token_invalid']
    ]
    for (const [token, code] of cases) {
      const response = await verify(token)
      t.equal(response.statusCode, 401, code)
      t.equal(response.json().code, code)
    }
    t.equal((await verify(undefined)).statusCode, 400)
  })

  const introspect = (payload: string | object, headers: Record<string, string> = bearer(secret)) =>
    app.inject({ method: 'POST', url: '/auth/introspect/', payload, headers })

  t.test('introspect: RFC 7662 fields for a live token', async (t) => {
    const response = await introspect({ token: pair.access })
    t.equal(response.statusCode, 200)
    const claims = claimsOf(pair.access)
    t.same(response.json(), {
      active: true,
      sub: String(user.id),
      sid: claims.sid,
      jti: claims.jti,
      exp: claims.exp,
      iat: claims.iat,
      iss: 'auth-service',
      aud: 'api',
      token_type: 'access',
      username: body.username
    })
    const refresh = (await introspect({ token: pair.refresh, token_type_hint: 'refresh_token' })).json()
    t.match(refresh, { active: true, token_type: 'refresh', username: body.username, jti: claimsOf(pair.refresh).jti })
  })

  t.test('introspect: exactly {active: false} for anything else', async (t) => {
    for (const token of [loggedOut.access, loggedOut.refresh, expired, 'nonsense', `${pair.access}x`]) {
      const response = await introspect({ token })
      t.equal(response.statusCode, 200)
      t.same(response.json(), { active: false })
    }
  })

  t.test('introspect accepts form-encoded bodies; other routes do not', async (t) => {
    const form = await introspect(`token=${encodeURIComponent(pair.access)}&token_type_hint=access_token`,
      { ...bearer(secret), 'content-type': 'application/x-www-form-urlencoded' })
    t.equal(form.statusCode, 200)
    t.equal(form.json().active, true)
    const login = await app.inject({ method: 'POST', url: '/auth/login/', payload: 'username=a&password=b', headers: { 'content-type': 'application/x-www-form-urlencoded' } })
    t.equal(login.statusCode, 415)
  })

  t.test('introspect needs INTROSPECTION_SECRET as a Bearer token when it is set', async (t) => {
    for (const headers of [{}, bearer('wrong'), bearer(pair.access), { authorization: `Basic ${secret}` }]) {
      const response = await introspect({ token: pair.access }, headers)
      t.equal(response.statusCode, 401, JSON.stringify(headers))
      t.equal(response.json().code, 'not_authenticated')
      t.equal(response.headers['www-authenticate'], 'Bearer realm="introspection"')
    }
  })
})

t.test('introspect is open when no INTROSPECTION_SECRET is set', async (t) => {
  const app = await build(t)
  const { tokens: pair } = await registerAndLogin(app)
  const response = await app.inject({ method: 'POST', url: '/auth/introspect/', payload: { token: pair.access } })
  t.equal(response.json().active, true)
})

t.test('key rotation: nobody is logged out', async (t) => {
  const oldKey = generateKeyPairSync('ed25519')
  const newKey = generateKeyPairSync('ed25519')
  const pemOf = (key: typeof oldKey.privateKey, type: 'pkcs8' | 'spki') => key.export({ format: 'pem', type: type as 'pkcs8' }) as string
  const environment = await testEnvironment(t, { JWT_PRIVATE_KEY: pemOf(oldKey.privateKey, 'pkcs8') })
  const before = await build(t, environment)
  const { tokens: old } = await registerAndLogin(before)
  const { tokens: straddling } = await registerAndLogin(before)
  const replacedBeforeTheSwitch = (await before.inject({ method: 'POST', url: '/auth/refresh/', payload: { refresh: straddling.refresh } })).json()
  await before.close()

  const after = await build(t, {
    ...environment,
    JWT_PRIVATE_KEY: pemOf(newKey.privateKey, 'pkcs8'),
    JWT_PREVIOUS_PUBLIC_KEYS: pemOf(oldKey.publicKey, 'spki') + pemOf(generateKeyPairSync('ed25519').publicKey, 'spki')
  })
  const jwks = (await after.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json()
  t.equal(jwks.keys.length, 3, 'the JWKS holds the current key and the previous ones')
  t.equal(jwks.keys[0].kid, publicJwk(newKey.privateKey).kid, 'the current key first')
  t.equal(jwks.keys[1].kid, publicJwk(oldKey.privateKey).kid)

  t.equal((await after.inject({ method: 'GET', url: '/auth/me/', headers: bearer(old.access) })).statusCode, 200, 'old access tokens verify')
  const refreshed = await after.inject({ method: 'POST', url: '/auth/refresh/', payload: { refresh: old.refresh } })
  t.equal(refreshed.statusCode, 200, 'old refresh tokens rotate')
  const header = JSON.parse(Buffer.from(refreshed.json().access.split('.')[0], 'base64url').toString())
  t.equal(header.kid, publicJwk(newKey.privateKey).kid, 'new tokens use the current key')
  t.equal((await after.inject({ method: 'GET', url: '/auth/me/', headers: bearer(refreshed.json().access) })).statusCode, 200)

  // A retry within the grace window whose replacement was signed by the old key gets a new one.
  const retried = await after.inject({ method: 'POST', url: '/auth/refresh/', payload: { refresh: straddling.refresh } })
  t.equal(retried.statusCode, 200)
  t.not(retried.json().refresh, replacedBeforeTheSwitch.refresh)
  t.equal((await after.inject({ method: 'GET', url: '/auth/me/', headers: bearer(retried.json().access) })).statusCode, 200)
  t.equal((await after.inject({ method: 'POST', url: '/auth/refresh/', payload: { refresh: retried.json().refresh } })).statusCode, 200)

  const stranger = generateKeyPairSync('ed25519')
  const forged = old.access.split('.').slice(0, 2).join('.')
  const { sign } = await import('node:crypto')
  const signature = sign(null, Buffer.from(forged), stranger.privateKey).toString('base64url')
  t.equal((await after.inject({ method: 'GET', url: '/auth/me/', headers: bearer(`${forged}.${signature}`) })).json().code, 'token_invalid', 'an unknown key is still refused')
  const forgedRefresh = old.refresh.split('.').slice(0, 2).join('.')
  const refreshSignature = sign(null, Buffer.from(forgedRefresh), stranger.privateKey).toString('base64url')
  const refused = await after.inject({ method: 'POST', url: '/auth/refresh/', payload: { refresh: `${forgedRefresh}.${refreshSignature}` } })
  t.equal(refused.json().code, 'token_invalid', 'on refresh too, after trying every previous key')
})

t.test('a rotated refresh token at verify or introspect: revoked within the grace window, reuse after it', async (t) => {
  const app = await build(t, await testEnvironment(t, { REFRESH_REUSE_GRACE: '1' }))
  const verify = (token: string) => app.inject({ method: 'POST', url: '/auth/verify/', payload: { token } })
  const introspect = (token: string) => app.inject({ method: 'POST', url: '/auth/introspect/', payload: { token } })
  const me = (access: string) => app.inject({ method: 'GET', url: '/auth/me/', headers: bearer(access) })

  for (const [name, check] of [['verify', async (token: string) => (await verify(token)).json().code], ['introspect', async (token: string) => (await introspect(token)).json().active]] as const) {
    const { tokens: pair } = await registerAndLogin(app)
    const rotated = (await app.inject({ method: 'POST', url: '/auth/refresh/', payload: { refresh: pair.refresh } })).json()
    const info = t.capture(app.log, 'info')
    t.equal(await check(pair.refresh), name === 'verify' ? 'token_revoked' : false, `${name}: within the grace window, not live`)
    t.equal((await me(rotated.access)).statusCode, 200, `${name}: and the session is untouched`)
    // The mailer's worker may log its registration mail meanwhile: only the token checks' lines are this test's.
    const checks = info().map((call) => call.args).filter((args) => args[1] === 'token check failed')
    t.match(checks, [[{ code: 'token_revoked', route: `/auth/${name}/` }, 'token check failed']], `${name}: the failure is logged`)

    await new Promise((resolve) => setTimeout(resolve, 1100))
    const warnings = t.capture(app.log, 'warn')
    t.equal(await check(pair.refresh), name === 'verify' ? 'token_reused' : false, `${name}: after it, reuse`)
    t.match(warnings().map((call) => call.args), [[{ sessionId: claimsOf(pair.refresh).sid, presentedAt: 'verify' }, 'refresh token reused: session revoked']])
    t.equal((await me(rotated.access)).json().code, 'token_revoked', `${name}: the whole session is revoked, as at refresh`)
    t.equal((await app.inject({ method: 'POST', url: '/auth/refresh/', payload: { refresh: rotated.refresh } })).json().code, 'token_revoked')
  }
})

t.test('RATE_LIMIT_VERIFY throttles verify and introspect, each apart, per client', async (t) => {
  const app = await build(t, await testEnvironment(t, { RATE_LIMIT: 'on', RATE_LIMIT_VERIFY: '3/1m' }))
  for (const url of ['/auth/verify/', '/auth/introspect/']) {
    const statuses = []
    for (let i = 0; i < 4; i++) statuses.push((await app.inject({ method: 'POST', url, payload: { token: 'nonsense' } })).statusCode)
    t.same(statuses, [url === '/auth/verify/' ? 401 : 200, url === '/auth/verify/' ? 401 : 200, url === '/auth/verify/' ? 401 : 200, 429], url)
  }
})

t.test('verify and introspect refuse a refresh token past SESSION_MAX_AGE, as refresh does', async (t) => {
  const environment = await testEnvironment(t)
  const first = await build(t, environment)
  const { tokens: pair } = await registerAndLogin(first)
  await first.close()
  // The same database, SESSION_MAX_AGE lowered below the session's age.
  await new Promise((resolve) => setTimeout(resolve, 1100))
  const app = await build(t, { ...environment, SESSION_MAX_AGE: '1s' })
  const verified = await app.inject({ method: 'POST', url: '/auth/verify/', payload: { token: pair.refresh } })
  t.equal(verified.statusCode, 401)
  t.equal(verified.json().code, 'token_expired')
  t.same((await app.inject({ method: 'POST', url: '/auth/introspect/', payload: { token: pair.refresh } })).json(), { active: false })
})
