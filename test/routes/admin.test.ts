// The admin API: users, cohorts for load tests, sessions; ADMIN_TOKEN or nothing.
import { hash } from '@node-rs/argon2'
import { and, eq } from 'drizzle-orm'
import t from 'tap'
import { importedUsers, mailOutbox, users } from '../../src/db/schema.js'
import { bearer, build, claimsOf, newUser, registerAndLogin, testEnvironment } from '../helper.js'

const adminToken = 'an-admin-token-of-at-least-32-characters'
const admin = { authorization: `Bearer ${adminToken}` }

t.test('without ADMIN_TOKEN every /admin/ path is 404; with it, a wrong or missing token is 401', async (t) => {
  const closed = await build(t)
  for (const [method, url] of [['GET', '/admin/users/'], ['DELETE', '/admin/users/1'], ['POST', '/admin/users/1/sessions/'], ['GET', '/admin/events/'], ['GET', '/admin/nothing']] as const) {
    const answer = await closed.inject({ method, url, headers: admin })
    t.equal(answer.statusCode, 404, `${method} ${url}`)
    t.equal(answer.json().code, 'not_found')
  }
  const open = await build(t, await testEnvironment(t, { ADMIN_TOKEN: adminToken }))
  for (const headers of [{}, { authorization: `Bearer ${adminToken}x` }, { authorization: adminToken }]) {
    const answer = await open.inject({ method: 'GET', url: '/admin/users/', headers })
    t.equal(answer.statusCode, 401)
    t.equal(answer.json().code, 'not_authenticated')
    t.equal(answer.headers['www-authenticate'], 'Bearer realm="admin"')
  }
  t.equal((await open.inject({ method: 'GET', url: '/admin/users/', headers: admin })).statusCode, 200)
})

t.test('the admin API', async (t) => {
  const app = await build(t, await testEnvironment(t, { ADMIN_TOKEN: adminToken }))
  const call = (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: object) => app.inject({ method, url, headers: admin, ...(payload === undefined ? {} : { payload }) })
  const login = (username: string, password: string) => app.inject({ method: 'POST', url: '/auth/login/', payload: { username, password } })
  const tag = `cohort-${process.pid}`

  t.test('POST /admin/users/: each item by the registration rules, a password or an argon2id hash', async (t) => {
    const passwordHash = await hash('a shared load-test passphrase')
    const [a, b, c, taken] = [newUser(), newUser(), newUser(), newUser()]
    await app.inject({ method: 'POST', url: '/auth/register/', payload: taken })
    const answer = await call('POST', '/admin/users/', {
      tag,
      users: [
        { username: a.username, email: a.email, password: a.password },
        { username: b.username, email: b.email, password_hash: passwordHash, email_verified: true },
        { username: 'no spaces allowed', email: 'x@example.com', password_hash: passwordHash },
        { username: c.username, email: taken.email.toUpperCase(), password_hash: passwordHash },
        { username: c.username, email: c.email, password: c.password, password_hash: passwordHash },
        { username: c.username, email: c.email, password_hash: '$2b$10$notanargon2hash' },
        { username: c.username, email: c.email, password: 'password' },
        { username: c.username, email: c.email, password_hash: passwordHash }
      ]
    })
    t.equal(answer.statusCode, 201)
    const { created, errors } = answer.json()
    t.same(created.map((user: { username: string }) => user.username), [a.username, b.username, c.username])
    t.match(created[1], { email: b.email, email_verified: true, disabled: false, tag, last_login_at: null })
    t.same(errors.map((error: { index: number, code: string }) => [error.index, error.code]), [
      [2, 'invalid_request'], [3, 'email_taken'], [4, 'invalid_request'], [5, 'invalid_request'], [6, 'invalid_request']
    ])
    t.ok(errors[0].errors.username)
    t.same(errors[2].errors, { password: ['Give either password or password_hash.'] })
    t.match(errors[3].errors.password_hash, [/argon2id hash in PHC format/])
    t.same(errors[4].errors, { password: ['This password is too common.'] })
    t.equal((await login(a.username, a.password)).statusCode, 200, 'a password logs in')
    t.equal((await login(b.username, 'a shared load-test passphrase')).statusCode, 200, 'so does the password of a hash')
    const many = await call('POST', '/admin/users/', { users: Array.from({ length: 1001 }, () => newUser()) })
    t.equal(many.statusCode, 400, 'at most 1,000 per call')
  })

  t.test('GET /admin/users/: filtered, keyset-paginated', async (t) => {
    const page1 = (await call('GET', `/admin/users/?tag=${tag}&limit=2`)).json()
    t.equal(page1.users.length, 2)
    t.type(page1.next_cursor, 'string')
    const page2 = (await call('GET', `/admin/users/?tag=${tag}&limit=2&cursor=${page1.next_cursor}`)).json()
    t.equal(page2.users.length, 1)
    t.equal(page2.next_cursor, null)
    t.ok(page2.users[0].id > page1.users[1].id)
    const [first] = page1.users
    const byPrefix = (await call('GET', `/admin/users/?q=${encodeURIComponent(first.username.slice(0, -1).toUpperCase())}`)).json()
    t.ok(byPrefix.users.some((user: { id: number }) => user.id === first.id), 'q: a prefix of the username, in any case')
    const byEmail = (await call('GET', `/admin/users/?q=${encodeURIComponent(first.email)}`)).json()
    t.same(byEmail.users.map((user: { id: number }) => user.id), [first.id], 'or of the email')
    t.same((await call('GET', '/admin/users/?q=%25')).json().users, [], '% is a character, not a wildcard')
    t.equal((await call('GET', '/admin/users/?limit=0')).statusCode, 400)
    t.equal((await call('GET', '/admin/users/?cursor=abc')).statusCode, 400)
    t.equal((await call('GET', '/admin/users/?q=%00')).statusCode, 400)
  })

  t.test('GET, PATCH, sessions and DELETE of one user', async (t) => {
    const { body, user, tokens } = await registerAndLogin(app)
    const detail = (await call('GET', `/admin/users/${user.id}`)).json()
    t.match(detail, { id: user.id, username: body.username, disabled: false, email_verified: false, tag: null, sessions: 1 })
    t.type(detail.last_login_at, 'string')
    t.equal((await call('GET', '/admin/users/999999')).statusCode, 404)
    t.equal((await call('GET', '/admin/users/nope')).statusCode, 400)

    const disabled = await call('PATCH', `/admin/users/${user.id}`, { disabled: true })
    t.equal(disabled.statusCode, 200)
    t.match(disabled.json(), { disabled: true, sessions: 0 })
    t.equal((await app.inject({ method: 'GET', url: '/auth/me/', headers: bearer(tokens.access) })).statusCode, 401, 'its tokens are refused')
    t.equal((await login(body.username, body.password)).json().code, 'account_disabled')
    t.match((await call('PATCH', `/admin/users/${user.id}`, { disabled: false })).json(), { disabled: false })
    t.equal((await login(body.username, body.password)).statusCode, 200)

    const other = await registerAndLogin(app)
    const taken = await call('PATCH', `/admin/users/${user.id}`, { username: other.body.username.toUpperCase() })
    t.equal(taken.statusCode, 409)
    t.equal(taken.json().code, 'username_taken')
    t.same((await call('PATCH', `/admin/users/${user.id}`, { email: 'not an address' })).json().errors, { email: ['Enter a valid email address.'] })
    const renamed = await call('PATCH', `/admin/users/${user.id}`, { username: `${body.username}x`, email: `x${body.email}`, email_verified: true })
    t.match(renamed.json(), { username: `${body.username}x`, email: `x${body.email}`, email_verified: true })
    const [notice] = await app.db.select().from(mailOutbox).where(and(eq(mailOutbox.recipient, body.email), eq(mailOutbox.kind, 'email_change_notice')))
    t.ok(notice, 'the old address hears of the change')
    // A name older rules allowed: the user can still be disabled, its name unchecked since it does not change.
    await app.db.update(users).set({ username: 'old name' }).where(eq(users.id, user.id))
    t.equal((await call('PATCH', `/admin/users/${user.id}`, { disabled: true })).statusCode, 200)
    await call('PATCH', `/admin/users/${user.id}`, { disabled: false, username: `${body.username}x` })
    t.equal((await call('PATCH', '/admin/users/999999', { disabled: true })).statusCode, 404)

    const fresh = (await login(`${body.username}x`, body.password)).json()
    t.equal((await call('DELETE', `/admin/users/${user.id}/sessions/`)).statusCode, 204)
    t.equal((await app.inject({ method: 'GET', url: '/auth/me/', headers: bearer(fresh.access) })).json().code, 'token_revoked', 'logged out everywhere')
    t.equal((await call('DELETE', '/admin/users/999999/sessions/')).statusCode, 404)

    t.equal((await call('DELETE', `/admin/users/${user.id}`)).statusCode, 204)
    t.equal((await login(`${body.username}x`, body.password)).statusCode, 401)
    t.equal((await call('DELETE', `/admin/users/${user.id}`)).statusCode, 404, 'gone')
  })

  t.test('POST /admin/users/:id/sessions/ mints a session for a user of a cohort only', async (t) => {
    const { created } = (await call('POST', '/admin/users/', { tag: `${tag}-mint`, users: [newUser()] })).json()
    const minted = await call('POST', `/admin/users/${created[0].id}/sessions/`)
    t.equal(minted.statusCode, 201)
    t.equal(claimsOf(minted.json().access).user_id, created[0].id)
    t.equal((await app.inject({ method: 'GET', url: '/auth/me/', headers: bearer(minted.json().access) })).statusCode, 200)
    const { user } = await registerAndLogin(app)
    const refused = await call('POST', `/admin/users/${user.id}/sessions/`)
    t.equal(refused.statusCode, 403)
    t.equal(refused.json().code, 'forbidden', 'never for a real user')
    await call('PATCH', `/admin/users/${created[0].id}`, { disabled: true })
    t.equal((await call('POST', `/admin/users/${created[0].id}/sessions/`)).json().code, 'account_disabled')
    t.equal((await call('POST', '/admin/users/999999/sessions/')).statusCode, 404)
  })

  t.test('DELETE /admin/users/?tag= deletes a cohort, and only with a tag', async (t) => {
    const cohort = `${tag}-bulk`
    const passwordHash = await hash('a shared load-test passphrase')
    const started = Date.now()
    const created = (await call('POST', '/admin/users/', { tag: cohort, users: Array.from({ length: 1000 }, () => ({ ...newUser(), password: undefined, password_hash: passwordHash })) })).json().created
    t.equal(created.length, 1000, `1,000 users created in ${Date.now() - started} ms`)
    const minted = (await call('POST', `/admin/users/${created[0].id}/sessions/`)).json()
    t.equal((await call('DELETE', '/admin/users/')).statusCode, 400, 'the tag is required')
    const deleting = Date.now()
    const deleted = await call('DELETE', `/admin/users/?tag=${cohort}`)
    t.same(deleted.json(), { deleted: 1000 }, `deleted in ${Date.now() - deleting} ms`)
    t.equal((await app.inject({ method: 'GET', url: '/auth/me/', headers: bearer(minted.access) })).json().code, 'token_revoked')
    t.same((await call('GET', `/admin/users/?tag=${cohort}`)).json().users, [])
  })
})

t.test('RATE_LIMIT_ADMIN limits each client; RATE_LIMIT_EXEMPT addresses skip the per-client limits', async (t) => {
  const app = await build(t, await testEnvironment(t, { ADMIN_TOKEN: adminToken, RATE_LIMIT: 'on', RATE_LIMIT_ADMIN: '2/1m', RATE_LIMIT_REGISTER: '1/1h', TRUST_PROXY: '127.0.0.1', RATE_LIMIT_EXEMPT: '198.51.100.0/24' }))
  const adminCall = (client: string) => app.inject({ method: 'GET', url: '/admin/users/', headers: { ...admin, 'x-forwarded-for': client } })
  t.same([(await adminCall('203.0.113.1')).statusCode, (await adminCall('203.0.113.1')).statusCode, (await adminCall('203.0.113.1')).statusCode], [200, 200, 429])
  const register = (client: string) => app.inject({ method: 'POST', url: '/auth/register/', headers: { 'x-forwarded-for': client }, payload: newUser() })
  t.same([(await register('203.0.113.2')).statusCode, (await register('203.0.113.2')).statusCode], [201, 429], 'an ordinary client is limited')
  t.same([(await register('198.51.100.7')).statusCode, (await register('198.51.100.7')).statusCode, (await register('198.51.100.8')).statusCode], [201, 201, 201], 'the load generator is not')
})

t.test('users imported from Django are real users: no session is minted for them, whatever their tag', async (t) => {
  const app = await build(t, await testEnvironment(t, { ADMIN_TOKEN: adminToken }))
  const created = await app.inject({ method: 'POST', url: '/admin/users/', headers: admin, payload: { tag: 'django', users: [{ username: 'imported-one', email: 'imported-one@example.com', password: 'an imported passphrase' }] } })
  const id = created.json().created[0].id as number
  await app.db.insert(importedUsers).values({ id, importedAt: new Date() })
  const minted = await app.inject({ method: 'POST', url: `/admin/users/${id}/sessions/`, headers: admin })
  t.equal(minted.statusCode, 403)
  t.equal(minted.json().code, 'forbidden')
})

t.test('the trail\'s since is a time JavaScript can hold; a HEAD is audited as its GET', async (t) => {
  const app = await build(t, await testEnvironment(t, { ADMIN_TOKEN: adminToken }))
  const leap = await app.inject({ method: 'GET', url: '/admin/events/?since=2016-12-31T23:59:60Z', headers: admin })
  t.equal(leap.statusCode, 400)
  t.same(leap.json().errors, { since: ['Datetime has wrong format. Use an RFC 3339 time, such as 2026-11-01T00:00:00Z.'] })
  t.equal((await app.inject({ method: 'HEAD', url: '/admin/users/', headers: admin })).statusCode, 200)
  const events = (await app.inject({ method: 'GET', url: '/admin/events/?type=admin.users.listed', headers: admin })).json().events
  t.same(events.map((event: { detail: { route: string } }) => event.detail.route), ['HEAD /admin/users/'])
})
