import { createHash, generateKeyPairSync, sign } from 'node:crypto'
import { and, eq, isNull } from 'drizzle-orm'
import t from 'tap'
import { sessions, tokens, users } from '../../src/db/schema.js'
import { bearer, build, claimsOf, registerAndLogin, testEnvironment } from '../helper.js'

t.test('refresh and logout', async (t) => {
  const app = await build(t)
  const refresh = (token: unknown) => app.inject({ method: 'POST', url: '/auth/refresh/', payload: { refresh: token } })
  const logout = (token: unknown) => app.inject({ method: 'POST', url: '/auth/logout/', payload: { refresh: token } })
  const me = (access: string) => app.inject({ method: 'GET', url: '/auth/me/', headers: bearer(access) })

  t.test('refresh rotates: a new pair, and the old refresh token stops working', async (t) => {
    const { tokens: first, user } = await registerAndLogin(app)
    const response = await refresh(first.refresh)
    t.equal(response.statusCode, 200)
    t.equal(response.headers['cache-control'], 'no-store')
    const second = response.json()
    t.match(second, { access: String, refresh: String, token_type: 'Bearer', access_expires_at: String, refresh_expires_at: String })
    t.not(second.refresh, first.refresh)
    t.equal(claimsOf(second.refresh).sid, claimsOf(first.refresh).sid, 'the session is kept')
    t.equal((await me(second.access)).json().id, user.id)
    t.equal((await me(first.access)).statusCode, 200, 'rotation does not revoke access tokens')
    const [session] = await app.db.select().from(sessions).where(eq(sessions.id, String(claimsOf(first.refresh).sid)))
    t.equal(session!.lastUsedAt.getTime(), Number(claimsOf(second.refresh).iat) * 1000)
    t.equal(session!.expiresAt.getTime(), Number(claimsOf(second.refresh).exp) * 1000)

    t.equal((await refresh(second.refresh)).statusCode, 200, 'the new refresh token works')

    const [old] = await app.db.select().from(tokens).where(eq(tokens.jti, String(claimsOf(first.refresh).jti)))
    t.ok(old!.revokedAt, 'the old refresh row is revoked')
    t.equal(old!.replacedBy, claimsOf(second.refresh).jti, 'and points at its replacement')
  })

  t.test('refresh refuses what is not a live refresh token', async (t) => {
    const { tokens: pair } = await registerAndLogin(app)
    const wrongType = await refresh(pair.access)
    t.equal(wrongType.statusCode, 401)
    t.match(wrongType.json(), { code: 'token_invalid', message: 'Token has wrong type' })

    for (const garbage of ['garbage', 'a.b.c', `${pair.refresh}x`]) {
      const response = await refresh(garbage)
      t.equal(response.statusCode, 401, garbage)
      t.equal(response.json().code, 'token_invalid')
    }

    const claims = claimsOf(pair.refresh)
    const expired = app.jwt.sign({ ...claims, iat: Number(claims.iat) - 7200, exp: Number(claims.iat) - 3600 } as never)
    const expiredResponse = await refresh(expired)
    t.equal(expiredResponse.statusCode, 401)
    t.match(expiredResponse.json(), { code: 'token_expired', message: 'Token is expired' })

    // Signed by us but not on record, or on record with another hash: both refused.
    const unknown = app.jwt.sign({ ...claims, jti: '00000000-0000-4000-8000-000000000000' } as never)
    t.equal((await refresh(unknown)).json().code, 'token_invalid')
    await app.db.update(tokens).set({ tokenHash: '0'.repeat(64) }).where(eq(tokens.jti, String(claims.jti)))
    t.equal((await refresh(pair.refresh)).json().code, 'token_invalid')

    t.equal((await refresh(12345)).statusCode, 400)
    t.equal((await app.inject({ method: 'POST', url: '/auth/refresh/', payload: {} })).statusCode, 400)

    const gone = await registerAndLogin(app)
    await app.db.delete(users).where(eq(users.id, gone.user.id))
    t.match((await refresh(gone.tokens.refresh)).json(), { statusCode: 401, code: 'token_invalid' }, 'the user is gone')
  })

  t.test('a refresh token is known by its digest: the same claims under another signature change nothing', async (t) => {
    const { tokens: pair } = await registerAndLogin(app)
    const [header, payload] = pair.refresh.split('.')
    const { privateKey } = generateKeyPairSync('ed25519')
    const forged = `${header}.${payload}.${sign(null, Buffer.from(`${header}.${payload}`), privateKey).toString('base64url')}`
    const response = await refresh(forged)
    t.equal(response.statusCode, 401)
    t.equal(response.json().code, 'token_invalid')
    const sid = String(claimsOf(pair.refresh).sid)
    const rows = await app.db.select().from(tokens).where(eq(tokens.sessionId, sid))
    t.equal(rows.length, 2, 'no pair was issued')
    t.ok(rows.every((row) => row.revokedAt === null), 'the session\'s tokens are untouched')
    const [session] = await app.db.select().from(sessions).where(eq(sessions.id, sid))
    t.equal(session!.lastUsedAt.getTime(), Number(claimsOf(pair.refresh).iat) * 1000, 'the session is untouched')
    t.equal((await refresh(pair.refresh)).statusCode, 200, 'the real token still rotates')
  })

  t.test('a refresh token signed before refresh tokens had their own audience and type still refreshes', async (t) => {
    const { tokens: pair } = await registerAndLogin(app)
    const claims = claimsOf(pair.refresh)
    // As the previous version signed it: typ JWT, aud JWT_AUDIENCE; on record under its own hash.
    const legacy = app.jwt.sign({ ...claims, aud: 'api' } as never, { header: { alg: 'EdDSA', typ: 'JWT' } })
    t.equal(JSON.parse(Buffer.from(legacy.split('.')[0]!, 'base64url').toString()).typ, 'JWT')
    await app.db.update(tokens).set({ tokenHash: createHash('sha256').update(legacy).digest('hex') }).where(eq(tokens.jti, String(claims.jti)))
    const rotated = await refresh(legacy)
    t.equal(rotated.statusCode, 200)
    t.equal(claimsOf(rotated.json().refresh).aud, 'auth-service', 'its replacement has the new audience')
    // An access token cannot pass for one, whatever its audience.
    t.equal((await refresh(app.jwt.sign({ ...claimsOf(pair.access), aud: 'auth-service' } as never))).json().code, 'token_invalid')
  })

  t.test('logout revokes the session: its refresh and access tokens stop working', async (t) => {
    const { body, tokens: pair } = await registerAndLogin(app)
    const other = (await app.inject({ method: 'POST', url: '/auth/login/', payload: { username: body.username, password: body.password } })).json()
    const rotated = (await refresh(pair.refresh)).json()

    const response = await logout(rotated.refresh)
    t.equal(response.statusCode, 204)
    t.equal(response.body, '')
    t.equal(response.headers['cache-control'], 'no-store')

    for (const access of [pair.access, rotated.access]) {
      const refused = await me(access)
      t.equal(refused.statusCode, 401)
      t.match(refused.json(), { code: 'token_revoked' })
      t.match(refused.headers['www-authenticate'], /error="invalid_token"/)
    }
    t.equal((await refresh(rotated.refresh)).json().code, 'token_revoked')
    t.equal((await logout(rotated.refresh)).json().code, 'token_revoked', 'a second logout is refused')

    const sid = String(claimsOf(pair.refresh).sid)
    const [session] = await app.db.select().from(sessions).where(eq(sessions.id, sid))
    t.ok(session!.revokedAt)
    const rows = await app.db.select().from(tokens).where(eq(tokens.sessionId, sid))
    t.equal(rows.length, 4)
    t.ok(rows.every((row) => row.revokedAt !== null), 'every token of the session is revoked')

    t.equal((await me(other.access)).statusCode, 200, 'the other session is untouched')
    t.equal((await refresh(other.refresh)).statusCode, 200)
  })

  t.test('within the grace window a rotated token gets the same new refresh token again', async (t) => {
    const { tokens: first } = await registerAndLogin(app)
    const second = (await refresh(first.refresh)).json()
    const retry = await refresh(first.refresh)
    t.equal(retry.statusCode, 200)
    t.equal(retry.json().refresh, second.refresh, 'byte for byte')
    t.equal(retry.json().refresh_expires_at, second.refresh_expires_at)
    t.equal((await me(retry.json().access)).statusCode, 200, 'with a working access token')
    t.equal((await refresh(second.refresh)).statusCode, 200, 'and the replacement still rotates')
  })

  t.test('within the grace window, a replay from another client is reuse: no replacement, the session revoked', async (t) => {
    for (const other of [{ 'user-agent': 'curl/8.0' }, { 'x-forwarded-for': '203.0.113.99' }]) {
      const { tokens: first } = await registerAndLogin(app)
      const second = (await refresh(first.refresh)).json()
      const replay = await app.inject({ method: 'POST', url: '/auth/refresh/', payload: { refresh: first.refresh }, headers: other, remoteAddress: other['x-forwarded-for'] })
      t.equal(replay.statusCode, 401, JSON.stringify(other))
      t.equal(replay.json().code, 'token_reused')
      t.equal((await me(second.access)).json().code, 'token_revoked', 'the session is revoked')
    }
    const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body
    t.match(metrics, /auth_refreshes_total\{outcome="replayed"\} [1-9]/, 'grace replays are counted apart')
  })

  t.test('within the grace window, the client that rotated the token gets the replay, wherever it logged in', async (t) => {
    const { tokens: first } = await registerAndLogin(app)
    const from = (address: string) => ({ remoteAddress: address })
    // The app moved from the network it logged in on; a second IPv6 address of its /64 is the same client.
    const second = await app.inject({ method: 'POST', url: '/auth/refresh/', payload: { refresh: first.refresh }, ...from('2001:db8:1:2::10') })
    t.equal(second.statusCode, 200)
    const replay = await app.inject({ method: 'POST', url: '/auth/refresh/', payload: { refresh: first.refresh }, ...from('2001:db8:1:2::11') })
    t.equal(replay.statusCode, 200, 'the rotating client, on another address of its /64')
    t.equal(replay.json().refresh, second.json().refresh)
    const sessionsNow = (await app.inject({ method: 'GET', url: '/auth/sessions/', headers: bearer(replay.json().access) })).json()
    t.equal(sessionsNow.find((row: { current: boolean }) => row.current).ip, '2001:db8:1:2::10', 'the session shows where it was last used')
    const fromLogin = await app.inject({ method: 'POST', url: '/auth/refresh/', payload: { refresh: first.refresh }, ...from('127.0.0.1') })
    t.equal(fromLogin.json().code, 'token_reused', 'the login\'s address is not the rotating client')
  })

  t.test('racing refreshes of one token never fork the session', async (t) => {
    const { tokens: pair } = await registerAndLogin(app)
    const responses = await Promise.all(Array.from({ length: 10 }, () => refresh(pair.refresh)))
    t.same(responses.map((response) => response.statusCode), Array(10).fill(200))
    const refreshTokens = new Set(responses.map((response) => response.json().refresh))
    t.equal(refreshTokens.size, 1, 'every 200 carries the same new refresh token')
    const sid = String(claimsOf(pair.refresh).sid)
    const live = await app.db.select().from(tokens)
      .where(and(eq(tokens.sessionId, sid), eq(tokens.type, 'refresh'), isNull(tokens.revokedAt)))
    t.equal(live.length, 1, 'and only that one stays live')
    t.equal(live[0]!.jti, claimsOf([...refreshTokens][0]).jti)
  })

  t.test('a rotated refresh token logs out too: the client may have lost its replacement', async (t) => {
    const { tokens: pair } = await registerAndLogin(app)
    const lost = (await refresh(pair.refresh)).json()
    t.equal((await logout(pair.refresh)).statusCode, 204)
    t.equal((await me(lost.access)).json().code, 'token_revoked')
    t.equal((await refresh(lost.refresh)).json().code, 'token_revoked')
  })

  t.test('refreshes racing a logout: no 500, and the session ends revoked', async (t) => {
    const { tokens: pair } = await registerAndLogin(app)
    const responses = await Promise.all([refresh(pair.refresh), refresh(pair.refresh), logout(pair.refresh), refresh(pair.refresh), refresh(pair.refresh)])
    for (const response of responses) t.match(String(response.statusCode), /^(200|204|401)$/)
    t.equal(responses[2]!.statusCode, 204, 'the logout wins or waits its turn')
    const sid = String(claimsOf(pair.refresh).sid)
    const [session] = await app.db.select().from(sessions).where(eq(sessions.id, sid))
    t.ok(session!.revokedAt)
    t.equal(await app.db.$count(tokens, and(eq(tokens.sessionId, sid), isNull(tokens.revokedAt))), 0, 'no token of it is left live')
  })

  t.test('logout refuses an access token and garbage', async (t) => {
    const { tokens: pair } = await registerAndLogin(app)
    t.equal((await logout(pair.access)).json().code, 'token_invalid')
    t.equal((await logout('nope')).json().code, 'token_invalid')
    t.equal((await logout(undefined)).statusCode, 400)
  })
})

t.test('a rotated refresh token presented after the grace window revokes the whole session', async (t) => {
  const app = await build(t, await testEnvironment(t, { REFRESH_REUSE_GRACE: '0' }))
  const refresh = (token: string) => app.inject({ method: 'POST', url: '/auth/refresh/', payload: { refresh: token } })
  const me = (access: string) => app.inject({ method: 'GET', url: '/auth/me/', headers: bearer(access) })
  const { body, tokens: first } = await registerAndLogin(app)
  const other = (await app.inject({ method: 'POST', url: '/auth/login/', payload: { username: body.username, password: body.password } })).json()
  const second = (await refresh(first.refresh)).json()

  const warnings = t.capture(app.log, 'warn')
  const reused = await refresh(first.refresh)
  const logged = warnings()
  t.same(logged.map((call) => call.args), [[{ userId: claimsOf(first.refresh).user_id, sessionId: claimsOf(first.refresh).sid, presentedAt: 'refresh' }, 'refresh token reused: session revoked']])
  t.notMatch(JSON.stringify(logged.map((call) => call.args)), first.refresh.split('.')[2]!, 'never the token')
  t.equal(reused.statusCode, 401)
  t.same(reused.json(), { statusCode: 401, error: 'Unauthorized', code: 'token_reused', message: 'Token was already used; the session has been revoked', detail: 'Token was already used; the session has been revoked' })
  t.match(reused.headers['www-authenticate'], /^Bearer realm="api", error="invalid_token"/)

  for (const access of [first.access, second.access]) t.equal((await me(access)).json().code, 'token_revoked', 'access tokens die at once')
  t.equal((await refresh(second.refresh)).json().code, 'token_revoked', 'so does the legitimate replacement')
  const sid = String(claimsOf(first.refresh).sid)
  const [session] = await app.db.select().from(sessions).where(eq(sessions.id, sid))
  t.ok(session!.revokedAt)
  const rows = await app.db.select().from(tokens).where(eq(tokens.sessionId, sid))
  t.ok(rows.every((row) => row.revokedAt !== null), 'every token of the session is revoked')
  t.equal((await me(other.access)).statusCode, 200, 'the user\'s other session lives on')
})

t.test('REFRESH_REUSE_GRACE is in seconds, counted from the rotation itself: a retry after it is reuse', async (t) => {
  const app = await build(t, await testEnvironment(t, { REFRESH_REUSE_GRACE: '2' }))
  const refresh = (token: string) => app.inject({ method: 'POST', url: '/auth/refresh/', payload: { refresh: token } })
  const { tokens: first } = await registerAndLogin(app)
  const before = Date.now()
  const second = (await refresh(first.refresh)).json()
  const after = Date.now()
  const [rotated] = await app.db.select().from(tokens).where(eq(tokens.jti, String(claimsOf(first.refresh).jti)))
  const rotatedAt = rotated!.revokedAt!.getTime()
  t.ok(rotatedAt >= before && rotatedAt <= after, 'rotated at the moment of the refresh, not at the start of its second')
  t.equal((await refresh(first.refresh)).json().refresh, second.refresh, 'within the grace window')
  await new Promise((resolve) => setTimeout(resolve, rotatedAt + 2100 - Date.now()))
  t.equal((await refresh(first.refresh)).json().code, 'token_reused', 'after it')
})

t.test('SESSION_MAX_AGE: refresh cannot extend a session beyond it', async (t) => {
  const environment = await testEnvironment(t, { SESSION_MAX_AGE: '1h' })
  const app = await build(t, environment)
  const refresh = (server: typeof app, token: string) => server.inject({ method: 'POST', url: '/auth/refresh/', payload: { refresh: token } })
  const { tokens: first } = await registerAndLogin(app)
  const created = Number(claimsOf(first.refresh).iat)
  t.equal(Number(claimsOf(first.refresh).exp), created + 3600, 'the first refresh token ends with the session')
  const second = (await refresh(app, first.refresh)).json()
  t.equal(Number(claimsOf(second.refresh).exp), created + 3600, 'a rotated one too, not 30 days on')
  t.equal(second.refresh_expires_at, new Date((created + 3600) * 1000).toISOString())
  await app.close()

  // Lowered after the session began: the session is over.
  const lowered = await build(t, { ...environment, SESSION_MAX_AGE: '1s' })
  await new Promise((resolve) => setTimeout(resolve, 1100))
  const refused = await refresh(lowered, second.refresh)
  t.equal(refused.statusCode, 401)
  t.same(refused.json().code, 'token_expired')
})

t.test('revoked sessions are forgotten once their access tokens have expired', async (t) => {
  const app = await build(t, await testEnvironment(t, { ACCESS_TOKEN_TTL: '2s' }))
  const logout = (refresh: string) => app.inject({ method: 'POST', url: '/auth/logout/', payload: { refresh } })
  const first = await registerAndLogin(app)
  t.equal((await logout(first.tokens.refresh)).statusCode, 204)
  t.equal(app.revocations.size(), 1)
  await new Promise((resolve) => setTimeout(resolve, 2100))
  const second = await registerAndLogin(app)
  const third = await registerAndLogin(app)
  t.equal((await logout(second.tokens.refresh)).statusCode, 204)
  t.equal(app.revocations.size(), 1, 'the first session was pruned')
  t.equal((await logout(third.tokens.refresh)).statusCode, 204)
  t.equal(app.revocations.size(), 2, 'the second is kept while its access token lives')
})

t.test('revocations survive a restart', async (t) => {
  const environment = await testEnvironment(t)
  const first = await build(t, environment)
  const { tokens: revoked } = await registerAndLogin(first)
  const { tokens: live } = await registerAndLogin(first)
  t.equal((await first.inject({ method: 'POST', url: '/auth/logout/', payload: { refresh: revoked.refresh } })).statusCode, 204)
  await first.close()

  const second = await build(t, environment)
  const me = (access: string) => second.inject({ method: 'GET', url: '/auth/me/', headers: bearer(access) })
  t.equal((await me(revoked.access)).json().code, 'token_revoked')
  t.equal((await me(live.access)).statusCode, 200, 'tokens signed before the restart still verify')
})
