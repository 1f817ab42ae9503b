// The audit trail: what is recorded, what never is, who can read it.
import { eq, sql } from 'drizzle-orm'
import t from 'tap'
import { authEvents } from '../../src/db/schema.js'
import { bearer, build, claimsOf, newUser, registerAndLogin, testEnvironment } from '../helper.js'
import { codeOf, mailEnvironment, startMailServer, tokenOf } from '../mail-server.js'

const adminToken = 'an-admin-token-of-at-least-32-characters'
const admin = { authorization: `Bearer ${adminToken}` }
const agent = { 'user-agent': 'AuditTest/1.0 (a phone)' }

t.test('a user\'s security activity is recorded and shown to them, newest first', async (t) => {
  const smtp = await startMailServer(t)
  const app = await build(t, await testEnvironment(t, { ...mailEnvironment(smtp), ADMIN_TOKEN: adminToken }))
  const body = newUser()
  const registered = await app.inject({ method: 'POST', url: '/auth/register/', payload: body, headers: agent })
  const userId = registered.json().id as number
  const login = (password: string) => app.inject({ method: 'POST', url: '/auth/login/', payload: { username: body.username, password }, headers: agent })
  t.equal((await login('not the password')).statusCode, 401)
  const first = (await login(body.password)).json()
  const second = (await login(body.password)).json()
  // A rotated refresh token presented again, past the grace window's client check: reuse.
  const rotated = (await app.inject({ method: 'POST', url: '/auth/refresh/', payload: { refresh: second.refresh }, headers: agent })).json()
  t.equal((await app.inject({ method: 'POST', url: '/auth/refresh/', payload: { refresh: second.refresh }, headers: { 'user-agent': 'another device' } })).json().code, 'token_reused')
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout/', payload: { refresh: rotated.refresh } })).statusCode, 401, 'its session was revoked by the reuse')
  const third = (await login(body.password)).json()
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout/', payload: { refresh: third.refresh }, headers: agent })).statusCode, 204)
  const fourth = (await login(body.password)).json()
  t.equal((await app.inject({ method: 'DELETE', url: `/auth/sessions/${claimsOf(fourth.access).sid as string}`, headers: { ...bearer(first.access), ...agent } })).statusCode, 204)
  t.equal((await app.inject({ method: 'POST', url: '/auth/password/change/', headers: { ...bearer(first.access), ...agent }, payload: { current_password: body.password, new_password: 'a new and long passphrase' } })).statusCode, 204)
  const verification = await smtp.mailTo(body.email)
  t.equal((await app.inject({ method: 'POST', url: '/auth/email/verify/', payload: { token: tokenOf(verification) } })).statusCode, 204)
  const newEmail = `moved.${body.email}`
  t.equal((await app.inject({ method: 'POST', url: '/auth/email/change/', headers: { ...bearer(first.access), ...agent }, payload: { password: 'a new and long passphrase', new_email: newEmail } })).statusCode, 202)
  const change = await smtp.mailTo(newEmail)
  t.equal((await app.inject({ method: 'POST', url: '/auth/email/change/confirm/', payload: { email: newEmail, code: codeOf(change) } })).statusCode, 204)
  t.equal((await app.inject({ method: 'POST', url: '/auth/password/reset/', payload: { email: newEmail }, headers: agent })).statusCode, 202)
  await app.accountMail.settled()
  const reset = await smtp.mailTo(newEmail)
  t.equal((await app.inject({ method: 'POST', url: '/auth/password/reset/confirm/', payload: { token: tokenOf(reset), new_password: 'yet another long passphrase' } })).statusCode, 204)
  const last = (await login('yet another long passphrase')).json()
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout/all/', headers: bearer(last.access) })).statusCode, 204)
  const current = (await login('yet another long passphrase')).json()
  t.equal((await app.inject({ method: 'GET', url: `/admin/users/${userId}`, headers: admin })).statusCode, 200)

  const own = await app.inject({ method: 'GET', url: '/auth/me/events/', headers: bearer(current.access) })
  t.equal(own.statusCode, 200)
  const events = own.json().events as Array<{ type: string, user_id: number, ip: string | null, user_agent: string | null, session_id: string | null, actor: string, detail: Record<string, unknown>, id: string }>
  t.same(events.map((event) => event.type).reverse(), [
    'user.registered', 'login.failed', 'login.succeeded', 'login.succeeded', 'token.reused', 'login.succeeded', 'logout',
    'login.succeeded', 'session.revoked', 'password.changed', 'email.verified', 'email.change_requested', 'email.changed',
    'password.reset_requested', 'password.reset', 'login.succeeded', 'logout.all', 'login.succeeded'
  ], 'every event, newest first, without the operator\'s call')
  t.ok(events.every((event) => event.user_id === userId && event.actor === 'user'))
  t.ok(events.every((event, index) => index === 0 || Number(event.id) < Number(events[index - 1]!.id)), 'newest first')
  const logins = events.filter((event) => event.type === 'login.succeeded')
  t.ok(logins.every((event) => event.ip === '127.0.0.1' && event.user_agent === agent['user-agent'] && event.session_id !== null), 'logins with their address, user agent and session')
  t.same(events.find((event) => event.type === 'login.failed')!.detail, { reason: 'wrong_password' })
  t.equal(events.find((event) => event.type === 'token.reused')!.session_id, claimsOf(second.access).sid)
  t.same(events.find((event) => event.type === 'password.changed')!.detail, { revoked_sessions: 0 }, 'the other sessions had ended already')
  t.same(events.find((event) => event.type === 'password.reset_requested')!.detail, { mailed: true })

  const paged = await app.inject({ method: 'GET', url: '/auth/me/events/?limit=5', headers: bearer(current.access) })
  t.same(paged.json().events.map((event: { id: string }) => event.id), events.slice(0, 5).map((event) => event.id))
  const next = await app.inject({ method: 'GET', url: `/auth/me/events/?limit=5&cursor=${paged.json().next_cursor as string}`, headers: bearer(current.access) })
  t.same(next.json().events.map((event: { id: string }) => event.id), events.slice(5, 10).map((event) => event.id))
  const end = await app.inject({ method: 'GET', url: '/auth/me/events/?limit=100', headers: bearer(current.access) })
  t.equal(end.json().next_cursor, null)
  t.equal((await app.inject({ method: 'GET', url: '/auth/me/events/' })).statusCode, 401, 'a Bearer token is required')
  t.equal((await app.inject({ method: 'GET', url: '/auth/me/events/?limit=101', headers: bearer(current.access) })).statusCode, 400)

  // Never a password, a token, a code or a hash, in any column.
  const dump = JSON.stringify(await app.db.select().from(authEvents))
  for (const secret of [body.password, 'a new and long passphrase', 'yet another long passphrase', first.access, first.refresh, second.refresh, tokenOf(reset), tokenOf(verification), codeOf(change), body.username, body.email]) {
    t.notOk(dump.includes(secret), 'no secret and nothing naming the user is recorded')
  }
})

t.test('operators read the trail; each admin call is an event of its own', async (t) => {
  const app = await build(t, await testEnvironment(t, { ADMIN_TOKEN: adminToken }))
  const { user } = await registerAndLogin(app)
  const other = await registerAndLogin(app)
  t.equal((await app.inject({ method: 'POST', url: '/auth/login/', payload: { username: 'nobody-at-all', password: 'a typed password' }, headers: agent })).statusCode, 401)
  const list = (query: string) => app.inject({ method: 'GET', url: `/admin/events/${query}`, headers: admin })

  t.equal((await app.inject({ method: 'GET', url: '/admin/events/', headers: { authorization: 'Bearer wrong' } })).statusCode, 401)
  t.equal((await app.inject({ method: 'PATCH', url: `/admin/users/${user.id as number}`, headers: admin, payload: { disabled: true } })).statusCode, 200)
  t.equal((await app.inject({ method: 'PATCH', url: `/admin/users/${user.id as number}`, headers: admin, payload: { disabled: false, email: `new.${user.email as string}` } })).statusCode, 200)

  const all = (await list('')).json().events as Array<{ type: string, user_id: number | null, actor: string, detail: Record<string, unknown>, ip: string | null }>
  t.same(all.slice(0, 7).map((event) => `${event.actor} ${event.type}`), [
    'admin admin.user.updated', 'admin user.enabled', 'admin email.changed', 'admin admin.user.updated', 'admin user.disabled',
    'admin admin.refused', 'user login.failed'
  ])
  const unknown = all[6]!
  t.equal(unknown.user_id, null, 'an unknown account\'s failure has no user')
  t.same(unknown.detail, { reason: 'unknown_account' }, 'and never what was typed')
  t.same(all[0]!.detail, { route: 'PATCH /admin/users/:id', status: 200 })
  t.equal(all[0]!.user_id, user.id)
  t.same(all[4]!.detail, { revoked_sessions: 1 })
  t.equal(all[5]!.ip, '127.0.0.1')

  const mine = (await list(`?user_id=${user.id as number}&type=login.succeeded`)).json().events as Array<{ user_id: number }>
  t.equal(mine.length, 1)
  t.equal(mine[0]!.user_id, user.id)
  t.same((await list(`?user_id=${other.user.id as number}`)).json().events.map((event: { type: string }) => event.type), ['login.succeeded', 'user.registered'])
  t.same((await list('?since=2999-01-01T00:00:00Z')).json().events, [], 'since filters by time')
  t.ok((await list(`?since=${new Date(Date.now() - 60_000).toISOString()}`)).json().events.length >= 8)
  const page = (await list('?limit=2')).json()
  t.equal(page.events.length, 2)
  const rest = (await list(`?limit=2&cursor=${page.next_cursor as string}`)).json()
  t.ok(Number(rest.events[0].id) < Number(page.events[1].id), 'the next page is older')
  t.same((await list('?user_id=2147483648')).json(), { events: [], next_cursor: null }, 'past any user id: nobody\'s')
  for (const query of ['?since=yesterday', '?type=DROP%20TABLE', '?limit=0', '?cursor=-1', '?user_id=0']) {
    const answer = await list(query)
    t.equal(answer.statusCode, 400, query)
    t.equal(answer.json().code, 'invalid_request')
  }
  t.equal((await list('?type=admin.events.listed')).json().events.length >= 1, true, 'reading the trail is audited too')
})

t.test('events are written off the request\'s path, within a second', async (t) => {
  const app = await build(t)
  const { user } = await registerAndLogin(app)
  const recorded = () => app.db.$count(authEvents, eq(authEvents.userId, user.id))
  const deadline = Date.now() + 3000
  while (await recorded() < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
  t.equal(await recorded(), 2, 'the writer\'s timer wrote the registration and the login')
  t.equal(app.audit.queued(), 0)
})

t.test('under a flood the queue is bounded, and what it drops is counted', async (t) => {
  const app = await build(t)
  const metric = async (outcome: string) => {
    const text = (await app.inject({ method: 'GET', url: '/metrics' })).body
    return Number(new RegExp(`^auth_audit_events_total\\{outcome="${outcome}"\\} (\\d+)`, 'm').exec(text)?.[1] ?? 0)
  }
  await app.audit.flush()
  const before = await app.db.$count(authEvents)
  // All at once: the first full batch is taken for writing, and the queue fills up behind it.
  for (let index = 0; index < 21_005; index++) app.audit.record({ type: 'login.failed', detail: { reason: 'unknown_account' } })
  t.equal(app.audit.queued(), 20_000)
  t.equal(await metric('dropped'), 5)
  t.match((await app.inject({ method: 'GET', url: '/metrics' })).body, /^auth_audit_queued \d+$/m, 'the queue is a gauge')
  await app.audit.flush()
  t.equal(await app.db.$count(authEvents) - before, 21_000)
  t.equal(await metric('written'), 21_000)
})

t.test('a failed write keeps its events for the next, within the bound', async (t) => {
  const app = await build(t)
  await app.audit.flush()
  await app.db.execute(sql`alter table auth_events rename to auth_events_away`)
  // The first full batch is taken for writing (it fails), and the queue fills up behind it.
  for (let index = 0; index < 19_500; index++) app.audit.record({ type: 'login.failed' })
  const writing = app.audit.flush()
  for (let index = 0; index < 1000; index++) app.audit.record({ type: 'login.failed' })
  await writing
  t.equal(app.audit.queued(), 20_000, 'the failed batch went back to the queue, as far as the bound allowed')
  t.match((await app.inject({ method: 'GET', url: '/metrics' })).body, /^auth_audit_events_total\{outcome="dropped"\} 500$/m)
  await app.db.execute(sql`alter table auth_events_away rename to auth_events`)
  await app.audit.flush()
  t.equal(await app.db.$count(authEvents), 20_000)
})

t.test('a deleted user\'s events keep their type and time and lose the address and user agent', async (t) => {
  const app = await build(t, await testEnvironment(t, { ADMIN_TOKEN: adminToken }))
  const { body, user, tokens } = await registerAndLogin(app)
  await app.audit.flush()
  t.equal((await app.inject({ method: 'DELETE', url: '/auth/me/', headers: { ...bearer(tokens.access), ...agent }, payload: { password: body.password } })).statusCode, 204)
  const events = (await app.inject({ method: 'GET', url: `/admin/events/?user_id=${user.id as number}`, headers: admin })).json().events as Array<{ type: string, ip: string | null, user_agent: string | null, created_at: string }>
  t.same(events.map((event) => event.type), ['user.deleted', 'login.succeeded', 'user.registered'])
  t.ok(events.every((event) => event.ip === null && event.user_agent === null && event.created_at !== undefined))

  // A cohort's users, deleted in bulk, too.
  const created = await app.inject({ method: 'POST', url: '/admin/users/', headers: admin, payload: { tag: 'audit-cohort', users: [newUser(), newUser()].map(({ username, email, password }) => ({ username, email, password })) } })
  const ids = created.json().created.map((one: { id: number }) => one.id) as number[]
  t.same((await app.inject({ method: 'DELETE', url: '/admin/users/?tag=audit-cohort', headers: admin })).json(), { deleted: 2 })
  for (const id of ids) {
    const cohort = (await app.inject({ method: 'GET', url: `/admin/events/?user_id=${id}`, headers: admin })).json().events as Array<{ type: string, ip: string | null, actor: string, detail: object }>
    t.same(cohort.map((event) => `${event.actor} ${event.type}`).slice(0, 2), ['admin user.deleted', 'admin user.registered'])
    t.same(cohort[0]!.detail, { tag: 'audit-cohort' })
    t.ok(cohort.every((event) => event.ip === null))
  }
})
