// The events the service sends as webhooks, each committed with the change it tells of.
import { and, eq, inArray } from 'drizzle-orm'
import t from 'tap'
import { webhookOutbox } from '../../src/db/schema.js'
import { bearer, build, claimsOf, newUser, registerAndLogin, testEnvironment } from '../helper.js'
import { codeOf, mailEnvironment, startMailServer } from '../mail-server.js'
import { startWebhookReceiver, waitFor, webhookEnvironment, type WebhookReceiver } from '../webhook-receiver.js'

const adminToken = 'an-admin-token-of-at-least-32-characters'
const admin = { authorization: `Bearer ${adminToken}` }

/** What the receiver got since the last call, as `type user_id`, once `count` have come. */
function inbox (receiver: WebhookReceiver) {
  let seen = 0
  return async (count: number) => {
    await waitFor(() => receiver.deliveries.length >= seen + count, 10_000, `${count} more deliveries`)
    const fresh = receiver.deliveries.slice(seen, seen + count)
    seen += count
    return fresh
  }
}

t.test('every account change is a signed event, committed with it', async (t) => {
  const receiver = await startWebhookReceiver(t)
  const smtp = await startMailServer(t)
  const app = await build(t, await testEnvironment(t, { ...webhookEnvironment(receiver), ...mailEnvironment(smtp), ADMIN_TOKEN: adminToken }))
  const next = inbox(receiver)

  const { body, user, tokens } = await registerAndLogin(app)
  const [registered] = await next(1)
  t.equal(registered!.type, 'user.registered')
  t.same(registered!.data, { user })
  t.match(registered!.data, { user: { id: Number, username: body.username, email: body.email, email_verified: false, created_at: String } })
  t.equal((await app.inject({ method: 'POST', url: '/auth/register/', payload: body })).statusCode, 409)

  const other = (await app.inject({ method: 'POST', url: '/auth/login/', payload: { username: body.username, password: body.password } })).json()
  t.equal((await app.inject({ method: 'POST', url: '/auth/password/change/', headers: bearer(tokens.access), payload: { current_password: body.password, new_password: 'a new and long passphrase' } })).statusCode, 204)
  const changed = await next(2)
  t.same(changed.map((event) => event.type).sort(), ['password.changed', 'session.revoked'], 'a refused registration sent nothing')
  t.same(changed.find((event) => event.type === 'password.changed')!.data, { user_id: user.id })
  t.same(changed.find((event) => event.type === 'session.revoked')!.data, { user_id: user.id, session_ids: [claimsOf(other.access).sid] }, 'the other session')

  t.equal((await app.inject({ method: 'POST', url: '/auth/logout/', payload: { refresh: tokens.refresh } })).statusCode, 204)
  t.same((await next(1)).map((event) => event.data), [{ user_id: user.id, session_ids: [claimsOf(tokens.access).sid] }])

  const newEmail = `moved.${body.email as string}`
  const session = (await app.inject({ method: 'POST', url: '/auth/login/', payload: { username: body.username, password: 'a new and long passphrase' } })).json()
  t.equal((await app.inject({ method: 'POST', url: '/auth/email/change/', headers: bearer(session.access), payload: { password: 'a new and long passphrase', new_email: newEmail } })).statusCode, 202)
  const confirmation = await smtp.mailTo(newEmail)
  t.equal((await app.inject({ method: 'POST', url: '/auth/email/change/confirm/', payload: { email: newEmail, code: codeOf(confirmation) } })).statusCode, 204)
  t.same((await next(1)).map((event) => [event.type, event.data]), [['email.changed', { user_id: user.id, email: newEmail }]])

  t.equal((await app.inject({ method: 'PATCH', url: `/admin/users/${user.id as number}`, headers: admin, payload: { email: 'Operator.Set@Example.com' } })).statusCode, 200)
  t.same((await next(1)).map((event) => [event.type, event.data]), [['email.changed', { user_id: user.id, email: 'Operator.Set@example.com' }]], 'an operator\'s change too, the address as stored')

  t.equal((await app.inject({ method: 'PATCH', url: `/admin/users/${user.id as number}`, headers: admin, payload: { disabled: true } })).statusCode, 200)
  t.same((await next(2)).map((event) => [event.type, event.data]).sort(), [
    ['session.revoked', { user_id: user.id, session_ids: [claimsOf(session.access).sid] }],
    ['user.disabled', { user_id: user.id }]
  ])
  t.equal((await app.inject({ method: 'PATCH', url: `/admin/users/${user.id as number}`, headers: admin, payload: { disabled: true } })).statusCode, 200)
  t.equal((await app.inject({ method: 'PATCH', url: `/admin/users/${user.id as number}`, headers: admin, payload: { disabled: false } })).statusCode, 200)
  t.equal((await app.inject({ method: 'PATCH', url: `/admin/users/${user.id as number}`, headers: admin, payload: { disabled: false } })).statusCode, 200)
  t.same((await next(1)).map((event) => [event.type, event.data]), [['user.enabled', { user_id: user.id }]])
  const toggles = await app.db.select({ type: webhookOutbox.type }).from(webhookOutbox)
    .where(and(eq(webhookOutbox.userId, user.id), inArray(webhookOutbox.type, ['user.disabled', 'user.enabled']))).orderBy(webhookOutbox.id)
  t.same(toggles.map((row) => row.type), ['user.disabled', 'user.enabled'], 'disabling a disabled user, or enabling an enabled one, is no event')

  const last = (await app.inject({ method: 'POST', url: '/auth/login/', payload: { username: body.username, password: 'a new and long passphrase' } })).json()
  t.equal((await app.inject({ method: 'DELETE', url: '/auth/me/', headers: bearer(last.access), payload: { password: 'a new and long passphrase' } })).statusCode, 204)
  t.same((await next(1)).map((event) => [event.type, event.data]), [['user.deleted', { user_id: user.id }]], 'its sessions end with it: no session.revoked')
  t.equal(await app.db.$count(webhookOutbox), 1, 'the deleted user\'s earlier events are gone; its user.deleted is kept without a body')
  t.ok(receiver.deliveries.every((delivery) => delivery.id.startsWith('msg_')))
  t.equal(new Set(receiver.deliveries.map((delivery) => delivery.id)).size, receiver.deliveries.length, 'each delivered once')
})

t.test('a cohort\'s users are events too; a deleted user\'s undelivered events are never sent', async (t) => {
  const receiver = await startWebhookReceiver(t)
  const app = await build(t, await testEnvironment(t, { ...webhookEnvironment(receiver), ADMIN_TOKEN: adminToken, WEBHOOK_TIMEOUT: '1s' }))
  const next = inbox(receiver)
  const created = await app.inject({ method: 'POST', url: '/admin/users/', headers: admin, payload: { tag: 'hooks', users: [newUser(), newUser()].map(({ username, email, password }) => ({ username, email, password })) } })
  const ids = created.json().created.map((user: { id: number }) => user.id) as number[]
  t.same((await next(2)).map((event) => [event.type, (event.data.user as { id: number }).id]).sort(), ids.map((id) => ['user.registered', id]))
  t.same((await app.inject({ method: 'DELETE', url: '/admin/users/?tag=hooks', headers: admin })).json(), { deleted: 2 })
  t.same((await next(2)).map((event) => `${event.type} ${event.data.user_id as number}`).sort(), ids.map((id) => `user.deleted ${id}`).sort())

  // The receiver is down while a user registers and deletes itself: only the deletion arrives, and no row keeps
  // the username or the address meanwhile.
  await receiver.stop()
  const { body, tokens } = await registerAndLogin(app)
  t.equal((await app.inject({ method: 'DELETE', url: '/auth/me/', headers: bearer(tokens.access), payload: { password: body.password } })).statusCode, 204)
  const dump = JSON.stringify(await app.db.select().from(webhookOutbox))
  t.notOk(dump.includes(body.username) || dump.includes(body.email), 'no queued event names the deleted user')
  await receiver.start()
  const [deletion] = await next(1)
  t.equal(deletion!.type, 'user.deleted')
  await app.webhooks.deliver()
  t.equal(receiver.deliveries.length, 5, 'its user.registered was never sent')
})
