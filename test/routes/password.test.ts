// POST /auth/password/change/ against logins in flight: the races of the attack review, made deterministic by
// holding a login inside its password check while the change runs.
import { hash } from '@node-rs/argon2'
import { and, eq, isNull } from 'drizzle-orm'
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { sessions, users } from '../../src/db/schema.js'
import { bearer, build, claimsOf, registerAndLogin, testEnvironment } from '../helper.js'

/** Holds the next password check, after argon2 has answered, until released. */
function holdNextVerify (app: FastifyInstance) {
  const { passwordHasher } = app
  const original = passwordHasher.verify
  let reached!: () => void
  let release!: () => void
  const held = { reached: new Promise<void>((resolve) => { reached = resolve }), release: () => release() }
  const released = new Promise<void>((resolve) => { release = resolve })
  passwordHasher.verify = async (passwordHash, password) => {
    passwordHasher.verify = original
    const valid = await original(passwordHash, password)
    reached()
    await released
    return valid
  }
  return held
}

t.test('a login racing a password change', async (t) => {
  const app = await build(t)
  const login = (username: string, password: string) => app.inject({ method: 'POST', url: '/auth/login/', payload: { username, password } })
  const change = (access: string, current: string, next: string) => app.inject({
    method: 'POST', url: '/auth/password/change/', headers: bearer(access), payload: { current_password: current, new_password: next }
  })
  /** Stores the user's password hashed with weaker parameters, as an older version would have: the next login re-hashes it. */
  async function weaken (userId: number, password: string) {
    const weak = await hash(password, { memoryCost: 4096, timeCost: 1, parallelism: 1 })
    await app.db.update(users).set({ passwordHash: weak }).where(eq(users.id, userId))
    return weak
  }
  const liveSessions = (userId: number) => app.db.select({ id: sessions.id }).from(sessions)
    .where(and(eq(sessions.userId, userId), isNull(sessions.revokedAt)))

  t.test('a login that checked the old password opens no session once the change has answered', async (t) => {
    const { body, user, tokens } = await registerAndLogin(app)
    const held = holdNextVerify(app)
    const racing = login(body.username, body.password)
    await held.reached
    t.equal((await change(tokens.access, body.password, 'the new secret passphrase')).statusCode, 204)
    held.release()
    const raced = await racing
    t.equal(raced.statusCode, 401)
    t.equal(raced.json().code, 'invalid_credentials')
    t.same((await liveSessions(user.id)).map((row) => row.id), [claimsOf(tokens.access).sid], 'only the session that changed the password is live')
    t.equal((await login(body.username, 'the new secret passphrase')).statusCode, 200, 'the new password logs in')
  })

  t.test('the re-hash of a login racing a change never brings the old password back', async (t) => {
    const { body, user, tokens } = await registerAndLogin(app)
    const weak = await weaken(user.id, body.password)
    const held = holdNextVerify(app)
    const racing = login(body.username, body.password)
    await held.reached
    t.equal((await change(tokens.access, body.password, 'the new secret passphrase')).statusCode, 204)
    held.release()
    t.equal((await racing).statusCode, 401)
    const [row] = await app.db.select({ passwordHash: users.passwordHash }).from(users).where(eq(users.id, user.id))
    t.not(row!.passwordHash, weak)
    t.ok(await app.passwordHasher.verify(row!.passwordHash, 'the new secret passphrase'), 'the stored hash is the new password\'s')
    t.notOk(await app.passwordHasher.verify(row!.passwordHash, body.password), 'not the old one')
    t.equal((await login(body.username, body.password)).statusCode, 401, 'the old password stays refused')
  })

  t.test('two logins re-hashing one weaker hash at once both get a session', async (t) => {
    const { body, user } = await registerAndLogin(app)
    await weaken(user.id, body.password)
    const held = holdNextVerify(app)
    const second = login(body.username, body.password)
    await held.reached
    t.equal((await login(body.username, body.password)).statusCode, 200, 'the first re-hashes')
    held.release()
    t.equal((await second).statusCode, 200, 'the second finds the new hash of the same password')
  })

  t.test('a weaker hash whose user is deleted during the login: no session', async (t) => {
    const { body, user } = await registerAndLogin(app)
    await weaken(user.id, body.password)
    const held = holdNextVerify(app)
    const racing = login(body.username, body.password)
    await held.reached
    await app.db.delete(users).where(eq(users.id, user.id))
    held.release()
    t.equal((await racing).statusCode, 401)
  })

  t.test('two password changes racing: the second, over a password changed meanwhile, fails', async (t) => {
    const { body, tokens } = await registerAndLogin(app)
    const other = (await login(body.username, body.password)).json()
    const held = holdNextVerify(app)
    const attacker = change(other.access, body.password, 'the attacker passphrase')
    await held.reached
    t.equal((await change(tokens.access, body.password, 'the owner passphrase')).statusCode, 204, 'the owner changes it')
    held.release()
    const late = await attacker
    t.equal(late.statusCode, 400)
    t.same(late.json().errors, { current_password: ['Your current password was entered incorrectly.'] })
    t.equal((await login(body.username, 'the owner passphrase')).statusCode, 200, 'the owner\'s password stands')
  })

  t.test('a user deleted during the login gets no session', async (t) => {
    const { body, user } = await registerAndLogin(app)
    const held = holdNextVerify(app)
    const racing = login(body.username, body.password)
    await held.reached
    await app.db.delete(users).where(eq(users.id, user.id))
    held.release()
    t.equal((await racing).statusCode, 401)
    t.equal((await app.db.$count(sessions, eq(sessions.userId, user.id))), 0)
  })
})

t.test('wrong current passwords count against the login budget of the account', async (t) => {
  const app = await build(t, await testEnvironment(t, { RATE_LIMIT: 'on', TRUST_PROXY: '127.0.0.1', RATE_LIMIT_PASSWORD_CHANGE: '1000/1h', HASH_QUEUE: '100' }))
  const { body, user, tokens } = await registerAndLogin(app)
  const change = (current: string, client = '203.0.113.7') => app.inject({
    method: 'POST', url: '/auth/password/change/', headers: { ...bearer(tokens.access), 'x-forwarded-for': client }, payload: { current_password: current, new_password: 'the new secret passphrase' }
  })
  const login = (client: string) => app.inject({ method: 'POST', url: '/auth/login/', headers: { 'x-forwarded-for': client }, payload: { username: body.email, password: body.password } })

  const warnings = t.capture(app.log, 'warn')
  const guesses = await Promise.all(Array.from({ length: 30 }, () => change('a wrong guess')))
  const statuses = guesses.map((answer) => answer.statusCode)
  t.equal(statuses.filter((status) => status === 400).length, 10, 'the 10 failures a client may make')
  t.equal(statuses.filter((status) => status === 429).length, 20, `the rest throttled, before any hashing: ${statuses.join(' ')}`)
  t.same(guesses.find((answer) => answer.statusCode === 400)!.json().errors, { current_password: ['Your current password was entered incorrectly.'] })
  t.match(guesses.find((answer) => answer.statusCode === 429)!.json(), { code: 'throttled' })
  const logged = warnings().map((call) => call.args)
  t.equal(logged.filter(([, message]) => message === 'password change failed: wrong current password').length, 10)
  t.match(logged.find(([, message]) => message === 'password change failed: wrong current password')![0], { userId: user.id, client: '203.0.113.7' })

  t.equal((await change(body.password)).statusCode, 429, 'the right password waits too')
  t.equal((await login('203.0.113.7')).statusCode, 429, 'and so does a login of the account from that client: one budget')
  t.equal((await login('203.0.113.8')).statusCode, 200, 'another client is not blocked')
})

t.test('RATE_LIMIT_PASSWORD_CHANGE limits each client and each user', async (t) => {
  const app = await build(t, await testEnvironment(t, { RATE_LIMIT: 'on', TRUST_PROXY: '127.0.0.1', RATE_LIMIT_PASSWORD_CHANGE: '3/1h' }))
  const first = await registerAndLogin(app)
  const second = await registerAndLogin(app)
  const change = (access: string, client: string) => app.inject({
    method: 'POST', url: '/auth/password/change/', headers: { ...bearer(access), 'x-forwarded-for': client }, payload: { current_password: 'wrong', new_password: 'the new secret passphrase' }
  })
  for (let i = 0; i < 3; i++) t.equal((await change(first.tokens.access, '203.0.113.20')).statusCode, 400)
  const throttled = await change(first.tokens.access, '203.0.113.20')
  t.equal(throttled.statusCode, 429)
  t.equal(throttled.json().code, 'throttled')
  t.ok(Number(throttled.headers['retry-after']) > 0)
  t.equal((await change(first.tokens.access, '203.0.113.21')).statusCode, 429, 'the same user from another client')
  t.equal((await change(second.tokens.access, '203.0.113.20')).statusCode, 429, 'another user from the same client')
  t.equal((await change(second.tokens.access, '203.0.113.22')).statusCode, 400, 'another user from another client')
  const metrics = await app.inject({ method: 'GET', url: '/metrics' })
  t.match(metrics.body, /auth_throttled_total\{limit="password_change"\} 3/)
})

t.test('the owner can change the password while the account waits for failures from elsewhere; a new password voids device tokens', async (t) => {
  const app = await build(t, await testEnvironment(t, { RATE_LIMIT: 'on', TRUST_PROXY: '127.0.0.1', LOGIN_FAILURES_PER_ACCOUNT: '3/1h' }))
  const { body } = await registerAndLogin(app)
  const login = (client: string, password: string, deviceToken?: string) => app.inject({
    method: 'POST', url: '/auth/login/', headers: { 'x-forwarded-for': client }, payload: { username: body.username, password, ...(deviceToken === undefined ? {} : { device_token: deviceToken }) }
  })
  const session = (await login('198.51.100.7', body.password)).json()
  for (let i = 0; i < 3; i++) t.equal((await login(`203.0.113.${i}`, 'wrong password')).statusCode, 401)
  t.equal((await login('203.0.113.9', body.password)).statusCode, 429, 'the account waits')
  const changed = await app.inject({
    method: 'POST', url: '/auth/password/change/', headers: { ...bearer(session.access), 'x-forwarded-for': '198.51.100.7' }, payload: { current_password: body.password, new_password: 'the new secret passphrase' }
  })
  t.equal(changed.statusCode, 204, 'the signed-in owner is not kept waiting')
  t.equal((await login('198.51.100.7', 'the new secret passphrase', session.device_token)).statusCode, 429, 'the old device token is void: the account waits for it too')
})
