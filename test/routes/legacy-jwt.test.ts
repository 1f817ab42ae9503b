// The SimpleJWT cutover window: the old service's refresh tokens, still in phones, exchanged for sessions here.
import { createHash, randomBytes } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { eq } from 'drizzle-orm'
import { SignJWT } from 'jose'
import t from 'tap'
import { importedUsers, legacyRevokedJtis, tokens } from '../../src/db/schema.js'
import { bearer, build, claimsOf, registerAndLogin, testEnvironment } from '../helper.js'

const secret = 'bench-only-not-secret'
const inDays = (days: number) => new Date(Date.now() + days * 86400_000).toISOString()
const window = { LEGACY_JWT_SECRET: secret, LEGACY_JWT_UNTIL: inDays(30) }

/** A refresh token as SimpleJWT makes one (signed here with jose, independently of the service's own JWT code). */
async function simpleJwt (claims: Record<string, unknown>, { key = secret, algorithm = 'HS256', lifetime = 86400 } = {}) {
  const now = Math.floor(Date.now() / 1000)
  return new SignJWT({ token_type: 'refresh', jti: randomBytes(16).toString('hex'), iat: now, exp: now + lifetime, ...claims })
    .setProtectedHeader({ alg: algorithm, typ: 'JWT' }).sign(new TextEncoder().encode(key))
}

/** Marks users as brought over by the import, as npm run import:django does. */
const imported = (app: FastifyInstance, ...ids: number[]) => app.db.insert(importedUsers).values(ids.map((id) => ({ id, importedAt: new Date() })))

t.test('a legacy refresh token opens a session, then follows the rotation rules', async (t) => {
  const app = await build(t, await testEnvironment(t, { ...window, REFRESH_REUSE_GRACE: '10' }))
  const { user, body } = await registerAndLogin(app)
  await imported(app, user.id)
  const legacy = await simpleJwt({ user_id: user.id })
  const refresh = (token: string, agent = 'MobileApp/1.0') => app.inject({ method: 'POST', url: '/api/token/refresh/', payload: { refresh: token }, headers: { 'user-agent': agent } })

  const exchanged = await refresh(legacy)
  t.equal(exchanged.statusCode, 200)
  const pair = exchanged.json()
  const me = await app.inject({ method: 'GET', url: '/auth/me/', headers: bearer(pair.access) })
  t.equal(me.json().username, body.username, 'our access token, for the same user id')
  t.equal(claimsOf(pair.access).user_id, user.id)
  const [row] = await app.db.select().from(tokens).where(eq(tokens.sessionId, claimsOf(pair.access).sid as string)).orderBy(tokens.createdAt)
  t.match(row, { type: 'refresh', userId: user.id, replacedBy: claimsOf(pair.refresh).jti }, 'the legacy token is the session\'s first refresh token, rotated')
  t.notOk(JSON.stringify(await app.db.select().from(tokens)).includes(legacy.split('.')[2]!), 'its digest is stored, never the token')

  const again = await refresh(legacy)
  t.equal(again.statusCode, 200, 'presented again by the same client within the grace window')
  t.equal(again.json().refresh, pair.refresh, 'the same replacement')
  const elsewhere = await refresh(legacy, 'curl/8.0')
  t.equal(elsewhere.json().code, 'token_reused', 'from another client: reuse')
  t.equal((await refresh(pair.refresh)).json().code, 'token_revoked', 'and the session it opened is revoked')
  t.equal((await app.inject({ method: 'GET', url: '/auth/me/', headers: bearer(pair.access) })).statusCode, 401)
})

t.test('legacy tokens that do not hold are refused', async (t) => {
  const app = await build(t, await testEnvironment(t, { ...window, REFRESH_REUSE_GRACE: '0' }))
  const { user } = await registerAndLogin(app)
  const other = await registerAndLogin(app)
  const stranger = await registerAndLogin(app)
  await imported(app, user.id, other.user.id)
  const refresh = async (token: string) => (await app.inject({ method: 'POST', url: '/auth/refresh/', payload: { refresh: token } })).json()
  t.equal((await refresh(await simpleJwt({ user_id: stranger.user.id }))).code, 'token_invalid', 'a user who registered here, not imported: the old service\'s id is someone else\'s')
  const jti = randomBytes(16).toString('hex')
  await app.db.insert(legacyRevokedJtis).values({ jtiHash: createHash('sha256').update(jti).digest('hex'), expiresAt: new Date(Date.now() + 86400_000) })
  t.equal((await refresh(await simpleJwt({ user_id: user.id, jti }))).code, 'token_revoked', 'blacklisted by the old service')
  t.equal((await refresh(await simpleJwt({ user_id: user.id }, { lifetime: -10 }))).code, 'token_expired')
  t.equal((await refresh(await simpleJwt({ user_id: user.id }, { key: 'another secret' }))).code, 'token_invalid', 'a wrong signature')
  t.equal((await refresh(await simpleJwt({ user_id: user.id, token_type: 'access' }))).code, 'token_invalid', 'an access token')
  t.equal((await refresh(await simpleJwt({ user_id: 999_999 }))).code, 'token_invalid', 'no such user')
  t.equal((await refresh(await simpleJwt({ user_id: 2 ** 31 }))).code, 'token_invalid', 'no id a user can have')
  t.equal((await refresh(await simpleJwt({ user_id: 'one' }))).code, 'token_invalid')
  t.equal((await refresh(await simpleJwt({ user_id: user.id, jti: '' }))).code, 'token_invalid', 'no jti')
  t.equal((await refresh(await simpleJwt({ user_id: user.id }, { algorithm: 'HS512' }))).code, 'token_invalid', 'another algorithm is not the old service\'s')
  t.equal((await refresh('not a token at all')).code, 'token_invalid')
  t.equal((await refresh(await simpleJwt({ user_id: String(other.user.id) }))).access === undefined, false, 'a user id as a string, as some user models have it')

  const legacy = await simpleJwt({ user_id: user.id })
  t.equal((await app.inject({ method: 'GET', url: '/auth/me/', headers: bearer(await simpleJwt({ user_id: user.id, token_type: 'access' })) })).statusCode, 401, 'legacy access tokens are never accepted')
  const first = await refresh(legacy)
  t.type(first.access, 'string')
  t.equal((await refresh(legacy)).code, 'token_reused', 'without a grace window, a second presentation is reuse')

  t.equal((await app.inject({ method: 'PATCH', url: `/admin/users/${user.id as number}`, payload: { disabled: true } })).statusCode, 404, 'no admin API here')
  await app.accounts.setDisabled(user.id, true, {})
  t.equal((await refresh(await simpleJwt({ user_id: user.id }))).code, 'token_revoked', 'a disabled user')
})

t.test('a revocation of every session here revokes the old service\'s tokens not presented yet', async (t) => {
  const app = await build(t, await testEnvironment(t, window))
  const { user, body, tokens: ours } = await registerAndLogin(app)
  await imported(app, user.id)
  const refresh = async (token: string) => (await app.inject({ method: 'POST', url: '/auth/refresh/', payload: { refresh: token } })).json()
  const stolen = await simpleJwt({ user_id: user.id }, { lifetime: 86400 })
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout/all/', headers: bearer(ours.access) })).statusCode, 204)
  t.equal((await refresh(stolen)).code, 'token_revoked', 'issued before the logout everywhere: it opens no session')
  const later = await new SignJWT({ token_type: 'refresh', jti: randomBytes(16).toString('hex'), user_id: user.id, iat: Math.floor(Date.now() / 1000) + 2, exp: Math.floor(Date.now() / 1000) + 3600 })
    .setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(secret))
  t.type((await refresh(later)).access, 'string', 'one issued after it does')

  // A password change and a disabling (then enabling) revoke them too.
  const session = (await app.inject({ method: 'POST', url: '/auth/login/', payload: { username: body.username, password: body.password } })).json()
  // Each token issued a second after the last revocation, and revoked a second later: iat is in whole seconds.
  const aSecond = () => new Promise((resolve) => setTimeout(resolve, 1100))
  await aSecond()
  const before = await simpleJwt({ user_id: user.id })
  await aSecond()
  t.equal((await app.inject({ method: 'POST', url: '/auth/password/change/', headers: bearer(session.access), payload: { current_password: body.password, new_password: 'a new and long passphrase' } })).statusCode, 204)
  t.equal((await refresh(before)).code, 'token_revoked', 'after a password change')
  await aSecond()
  const beforeDisabling = await simpleJwt({ user_id: user.id })
  await aSecond()
  await app.accounts.setDisabled(user.id, true, {})
  await app.accounts.setDisabled(user.id, false, {})
  t.equal((await refresh(beforeDisabling)).code, 'token_revoked', 'after a disabling, the account enabled again')
})

t.test('outside the window a legacy token is an invalid token', async (t) => {
  const ended: Record<string, string> = { LEGACY_JWT_SECRET: secret, LEGACY_JWT_UNTIL: new Date(Date.now() - 1000).toISOString() }
  for (const environment of [{}, ended]) {
    const app = await build(t, await testEnvironment(t, environment))
    const { user } = await registerAndLogin(app)
    const answer = await app.inject({ method: 'POST', url: '/auth/refresh/', payload: { refresh: await simpleJwt({ user_id: user.id }) } })
    t.equal(answer.statusCode, 401)
    t.equal(answer.json().code, 'token_invalid', Object.keys(environment).length === 0 ? 'without the secret' : 'once the window has ended')
  }
})

t.test('racing first presentations open one session', async (t) => {
  const app = await build(t, await testEnvironment(t, window))
  const { user } = await registerAndLogin(app)
  await imported(app, user.id)
  const legacy = await simpleJwt({ user_id: user.id })
  const answers = await Promise.all([1, 2, 3].map(() => app.inject({ method: 'POST', url: '/auth/refresh/', payload: { refresh: legacy } })))
  t.same(answers.map((answer) => answer.statusCode), [200, 200, 200])
  t.equal(new Set(answers.map((answer) => answer.json().refresh)).size, 1, 'one child, given to every racer of the same client')
  t.equal(new Set(answers.map((answer) => claimsOf(answer.json().access).sid)).size, 1, 'one session')
})
