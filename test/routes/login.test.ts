import { createHash } from 'node:crypto'
import { hash } from '@node-rs/argon2'
import { eq } from 'drizzle-orm'
import t from 'tap'
import { sessions, tokens, users } from '../../src/db/schema.js'
import { build, claimsOf, newUser } from '../helper.js'

t.test('login', async (t) => {
  const app = await build(t)
  const login = (payload: object, headers: Record<string, string> = {}) =>
    app.inject({ method: 'POST', url: '/auth/login/', payload, headers })
  const body = newUser({ username: `Login${process.pid}`, email: `Login.${process.pid}@Example.com` })
  const registered = (await app.inject({ method: 'POST', url: '/auth/register/', payload: body })).json()

  t.test('answers a token pair and records the session and both tokens', async (t) => {
    const response = await login({ username: body.username, password: body.password }, { 'user-agent': 'test-agent/1.0' })
    t.equal(response.statusCode, 200)
    t.equal(response.headers['cache-control'], 'no-store')
    const pair = response.json()
    t.same(Object.keys(pair).sort(), ['access', 'access_expires_at', 'device_token', 'refresh', 'refresh_expires_at', 'token_type'])
    t.equal(pair.token_type, 'Bearer')

    const access = claimsOf(pair.access)
    const refresh = claimsOf(pair.refresh)
    t.match(access, { sub: String(registered.id), user_id: registered.id, token_type: 'access', iss: 'auth-service', aud: 'api', username: body.username })
    t.match(refresh, { sub: String(registered.id), user_id: registered.id, token_type: 'refresh', sid: access.sid })
    t.not(access.jti, refresh.jti)
    t.equal(Number(access.exp) - Number(access.iat), 15 * 60, 'ACCESS_TOKEN_TTL defaults to 15 minutes')
    t.equal(Number(refresh.exp) - Number(refresh.iat), 30 * 86400, 'REFRESH_TOKEN_TTL defaults to 30 days')
    t.equal(pair.access_expires_at, new Date(Number(access.exp) * 1000).toISOString())
    t.equal(pair.refresh_expires_at, new Date(Number(refresh.exp) * 1000).toISOString())

    const header = JSON.parse(Buffer.from(pair.access.split('.')[0], 'base64url').toString())
    t.same(header, { alg: 'EdDSA', typ: 'at+jwt', kid: app.tokenService.jwks.keys[0]!.kid })

    const [session] = await app.db.select().from(sessions).where(eq(sessions.id, String(access.sid)))
    t.match(session, { userId: registered.id, userAgent: 'test-agent/1.0', ip: '127.0.0.1', revokedAt: null })
    const rows = await app.db.select().from(tokens).where(eq(tokens.sessionId, String(access.sid)))
    t.equal(rows.length, 2)
    for (const [token, claims] of [[pair.access, access], [pair.refresh, refresh]] as const) {
      const row = rows.find((r) => r.jti === claims.jti)!
      t.equal(row.type, claims.token_type)
      t.equal(row.userId, registered.id)
      t.equal(row.tokenHash, createHash('sha256').update(token).digest('hex'), 'only the hash is stored')
      t.equal(row.createdAt.getTime(), Number(claims.iat) * 1000, 'created_at is iat')
      t.equal(row.expiresAt.getTime(), Number(claims.exp) * 1000, 'expires_at is exp')
      t.equal(row.revokedAt, null)
    }
  })

  t.test('accepts the username or the email, in any case', async (t) => {
    for (const username of [body.username.toLowerCase(), body.username.toUpperCase(), body.email, body.email.toUpperCase()]) {
      t.equal((await login({ username, password: body.password })).statusCode, 200, username)
    }
  })

  t.test('unknown user and wrong password: the same 401 body, the same work', async (t) => {
    const timed = async (payload: object) => {
      const started = process.hrtime.bigint()
      const response = await login(payload)
      return { response, ms: Number(process.hrtime.bigint() - started) / 1e6 }
    }
    const wrong: number[] = []
    const unknown: number[] = []
    let wrongBody = ''
    let unknownBody = ''
    for (let i = 0; i < 7; i++) {
      const a = await timed({ username: body.username, password: 'not the password' })
      const b = await timed({ username: `nobody${process.pid}`, password: 'not the password' })
      t.equal(a.response.statusCode, 401)
      t.equal(b.response.statusCode, 401)
      wrong.push(a.ms)
      unknown.push(b.ms)
      wrongBody = a.response.body
      unknownBody = b.response.body
    }
    t.equal(unknownBody, wrongBody, 'byte-identical bodies')
    t.same(JSON.parse(wrongBody), { statusCode: 401, error: 'Unauthorized', code: 'invalid_credentials', message: 'No active account found with the given credentials', detail: 'No active account found with the given credentials' })
    const median = (values: number[]) => values.sort((x, y) => x - y)[3]!
    // Without the dummy verify an unknown user answers in well under a tenth of the time; a fifth leaves room
    // for a busy machine.
    t.ok(median(unknown) > median(wrong) / 5, `unknown ${median(unknown).toFixed(1)} ms vs wrong password ${median(wrong).toFixed(1)} ms`)
  })

  t.test('the password is NFC-normalised and never truncated', async (t) => {
    const long = `${'Long passphrase, '.repeat(6)}end`
    const user = newUser({ password: `caf\u00e9-${long}` })
    t.equal((await app.inject({ method: 'POST', url: '/auth/register/', payload: user })).statusCode, 201)
    t.equal((await login({ username: user.username, password: `cafe\u0301-${long}` })).statusCode, 200, 'decomposed é matches composed é')
    t.equal((await login({ username: user.username, password: user.password.slice(0, 72) })).statusCode, 401, 'a prefix is not the password')
  })

  t.test('a hash with weaker parameters is upgraded on login', async (t) => {
    const user = newUser()
    const { id } = (await app.inject({ method: 'POST', url: '/auth/register/', payload: user })).json()
    const weak = await hash(user.password, { memoryCost: 4096, timeCost: 1, parallelism: 1 })
    await app.db.update(users).set({ passwordHash: weak }).where(eq(users.id, id))
    t.equal((await login({ username: user.username, password: user.password })).statusCode, 200)
    const [row] = await app.db.select().from(users).where(eq(users.id, id))
    t.match(row!.passwordHash, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/)
    t.equal((await login({ username: user.username, password: user.password })).statusCode, 200, 'the new hash verifies')
  })

  t.test('a user moved in from Django logs in with the Django hash, which the login replaces with argon2id', async (t) => {
    // Made by test/src/make-django-hashes.py (Python's hashlib and Debian's python3-bcrypt, as Django's
    // PBKDF2PasswordHasher and BCryptSHA256PasswordHasher encode), for the password 'correct horse'.
    const djangoHashes = [
      'pbkdf2_sha256$1000$gNzZWOw1dgkNQB5aYFuQ73$mXpalS3nVkUYXppGvh5hyU9lPQ60oaXx+bqBgVjMs98=',
      'bcrypt_sha256$$2b$04$I2RVgxWKhPlVqp6GEt6bTOkIn3Yod3i67xLUoTA.lIOW5zFBzI3xC'
    ]
    for (const djangoHash of djangoHashes) {
      const user = newUser()
      const { id } = (await app.inject({ method: 'POST', url: '/auth/register/', payload: user })).json()
      await app.db.update(users).set({ passwordHash: djangoHash }).where(eq(users.id, id))
      const stored = async () => (await app.db.select().from(users).where(eq(users.id, id)))[0]!.passwordHash
      t.equal((await login({ username: user.username, password: user.password })).statusCode, 401, 'the password set here is not the Django one')
      t.equal((await login({ username: user.username, password: 'correct horsf' })).statusCode, 401)
      t.equal(await stored(), djangoHash, 'a failed login leaves the Django hash')
      t.equal((await login({ username: user.username, password: 'correct horse' })).statusCode, 200, djangoHash)
      t.match(await stored(), /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/, 'the Django hash is gone')
      t.equal((await login({ username: user.username, password: 'correct horse' })).statusCode, 200, 'the new hash verifies')
    }
  })

  t.test('a NUL in the username is an unknown account, not a database error', async (t) => {
    for (const username of ['ab\u0000c', 'a\u0000@example.com']) {
      const response = await login({ username, password: body.password })
      t.equal(response.statusCode, 401, JSON.stringify(username))
      t.equal(response.json().code, 'invalid_credentials')
    }
  })

  t.test('bad input', async (t) => {
    const missing = await login({ username: body.username })
    t.equal(missing.statusCode, 400)
    t.same(missing.json().errors, { password: ['This field is required.'] })
    const long = await login({ username: body.username, password: 'x'.repeat(257) })
    t.equal(long.statusCode, 400)
    t.same(long.json().errors, { password: ['Ensure this field has no more than 256 characters.'] })
    const typed = await login({ username: body.username, password: 12345678 })
    t.equal(typed.statusCode, 400)
  })
})

t.test('logins of one user at once all open a session, and the last is recorded', async (t) => {
  const app = await build(t)
  const body = newUser()
  const { id } = (await app.inject({ method: 'POST', url: '/auth/register/', payload: body })).json()
  const before = new Date()
  const answers = await Promise.all(Array.from({ length: 8 }, () =>
    app.inject({ method: 'POST', url: '/auth/login/', payload: { username: body.username, password: body.password } })))
  t.same(answers.map((answer) => answer.statusCode), Array(8).fill(200))
  t.equal(await app.db.$count(sessions, eq(sessions.userId, id)), 8)
  const [row] = await app.db.select({ lastLoginAt: users.lastLoginAt }).from(users).where(eq(users.id, id))
  t.ok(row!.lastLoginAt! >= before, 'last_login_at is set')
})

t.test('a session opens only under the credentials the login checked, in one statement', async (t) => {
  const app = await build(t)
  const body = newUser()
  const { id } = (await app.inject({ method: 'POST', url: '/auth/register/', payload: body })).json()
  const user = (await app.usersRepository.findById(id))!
  const client = { userAgent: 'agent', ip: '127.0.0.1' }
  const rows = async () => ({
    sessions: await app.db.$count(sessions, eq(sessions.userId, id)),
    tokens: await app.db.$count(tokens, eq(tokens.userId, id)),
    lastLoginAt: (await app.db.select({ at: users.lastLoginAt }).from(users).where(eq(users.id, id)))[0]!.at
  })

  t.equal(await app.sessionManager.start(user, client, `${user.passwordHash}x`), undefined, 'a password changed since the check')
  t.same(await rows(), { sessions: 0, tokens: 0, lastLoginAt: null })
  await app.db.update(users).set({ disabledAt: new Date() }).where(eq(users.id, id))
  t.equal(await app.sessionManager.start(user, client, user.passwordHash), undefined, 'a user disabled since the check')
  t.same(await rows(), { sessions: 0, tokens: 0, lastLoginAt: null })

  await app.db.update(users).set({ disabledAt: null }).where(eq(users.id, id))
  const before = new Date()
  const started = await app.sessionManager.start(user, client, user.passwordHash)
  t.ok(started)
  const after = await rows()
  t.match(after, { sessions: 1, tokens: 2 })
  t.ok(after.lastLoginAt! >= before, 'the login is recorded to the millisecond')
  const [session] = await app.db.select().from(sessions).where(eq(sessions.id, started!.sessionId))
  t.match(session, { userId: id, userAgent: 'agent', ip: '127.0.0.1', revokedAt: null })
  t.same((await app.db.select({ type: tokens.type }).from(tokens).where(eq(tokens.sessionId, started!.sessionId)).orderBy(tokens.type)).map((row) => row.type), ['access', 'refresh'])
})
