// Signed webhooks from the outbox: rows queued in a transaction, POSTed by a worker on every instance to a real
// receiver on loopback that verifies them with the standardwebhooks package; retried while it is down, answers
// an error, redirects or hangs; failed after WEBHOOK_RETRY_FOR.
import type { FastifyInstance } from 'fastify'
import { Webhook } from 'standardwebhooks'
import t from 'tap'
import { sign } from '../../plugins/webhooks.js'
import { webhookOutbox } from '../../src/db/schema.js'
import { build, closeDatabase, postgresUrl, testEnvironment } from '../helper.js'
import { startWebhookReceiver, waitFor, webhookEnvironment, webhookSecret, type WebhookReceiver } from '../webhook-receiver.js'

const rows = (app: FastifyInstance) => app.db.select().from(webhookOutbox).orderBy(webhookOutbox.id)
const deleted = (app: FastifyInstance, userId: number, extra: Record<string, unknown> = {}) =>
  app.db.transaction((tx) => app.webhooks.enqueue(tx, 'user.deleted', { user_id: userId, ...extra }, userId))
/** The value of one sample of GET /metrics, such as `auth_webhooks_total{type="user.deleted",outcome="sent"}`. */
async function sample (app: FastifyInstance, name: string): Promise<number | undefined> {
  const text = (await app.inject({ method: 'GET', url: '/metrics' })).body
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${name} `))
  return line === undefined ? undefined : Number(line.slice(name.length + 1))
}
const counted = (outcome: string) => `auth_webhooks_total{type="user.deleted",outcome="${outcome}"}`
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const delivered = (receiver: WebhookReceiver, count = 1) => waitFor(() => receiver.deliveries.length >= count, 10_000, `${count} deliveries`)

t.test('a committed event is delivered once, signed, with its headers, and its body erased', async (t) => {
  const receiver = await startWebhookReceiver(t)
  const app = await build(t, await testEnvironment(t, webhookEnvironment(receiver)))
  const sent = t.capture(app.log, 'info')
  const before = Date.now()
  await deleted(app, 1)
  await delivered(receiver)
  const [delivery] = receiver.deliveries
  t.match(delivery!.id, /^msg_[0-9a-f]{32}$/)
  t.match(delivery!.headers, {
    'content-type': 'application/json',
    'user-agent': /^fastify-auth-service-webhooks\//,
    'webhook-id': delivery!.id,
    'webhook-signature': /^v1,[A-Za-z0-9+/]+=*$/
  })
  const timestamp = Number(delivery!.headers['webhook-timestamp'])
  t.ok(timestamp >= Math.floor(before / 1000) && timestamp <= Date.now() / 1000, 'the time of the attempt, in seconds')
  t.same(JSON.parse(delivery!.body), { type: 'user.deleted', timestamp: delivery!.timestamp, data: { user_id: 1 } })
  t.ok(Date.parse(delivery!.timestamp) >= before && delivery!.timestamp === new Date(delivery!.timestamp).toISOString(), 'an ISO time')
  t.equal(receiver.attempts.length, 1)
  t.ok(receiver.attempts[0]!.verified, 'verified by the standardwebhooks package')

  await waitFor(async () => (await rows(app))[0]!.status === 'sent', 5000, 'the row marked sent')
  const [row] = await rows(app)
  t.match(row, { messageId: delivery!.id, url: receiver.url, type: 'user.deleted', userId: 1, status: 'sent', attempts: 1, payload: null, lastError: null })
  t.ok(row!.sentAt instanceof Date)
  t.match(sent().map((call) => call.args), [[{ messageId: delivery!.id, type: 'user.deleted', url: receiver.url, attempts: 1 }, 'webhook sent']])
  t.equal(await sample(app, counted('sent')), 1)
  t.equal(await sample(app, 'auth_webhooks_queued'), 0)
  await app.webhooks.deliver()
  await pause(300)
  t.equal(receiver.attempts.length, 1, 'exactly once')
})

t.test('nothing is queued or delivered when the transaction rolls back', async (t) => {
  const receiver = await startWebhookReceiver(t)
  const app = await build(t, await testEnvironment(t, webhookEnvironment(receiver)))
  await t.rejects(app.db.transaction(async (tx) => {
    await app.webhooks.enqueue(tx, 'user.registered', { user: { id: 7 } }, 7)
    throw new Error('rolled back')
  }), /rolled back/)
  t.equal(await app.webhooks.queued(), 0)
  t.same(await rows(app), [])
  await app.webhooks.deliver()
  await pause(300)
  t.same(receiver.attempts, [])
})

t.test('without WEBHOOK_URLS nothing is queued', async (t) => {
  const app = await build(t, await testEnvironment(t, { WEBHOOK_SECRET: webhookSecret }))
  await deleted(app, 1)
  t.same(await rows(app), [])
  t.equal(await app.webhooks.queued(), 0)
  await app.webhooks.deliver()
  t.equal(await sample(app, 'auth_webhooks_queued'), 0)
})

t.test('two URLs: each gets the event once, under a message id of its own', async (t) => {
  const one = await startWebhookReceiver(t)
  const two = await startWebhookReceiver(t)
  const app = await build(t, await testEnvironment(t, webhookEnvironment(one, two)))
  await app.db.transaction((tx) => app.webhooks.enqueue(tx, 'email.changed', { user_id: 3, email: 'new@example.com' }))
  await delivered(one)
  await delivered(two)
  t.match(one.deliveries[0], { type: 'email.changed', data: { user_id: 3, email: 'new@example.com' } })
  t.equal(two.deliveries[0]!.body, one.deliveries[0]!.body, 'the same body')
  t.not(two.deliveries[0]!.id, one.deliveries[0]!.id)
  t.match(await rows(app), [{ url: one.url, userId: null }, { url: two.url, userId: null }])
  await pause(300)
  t.equal(one.attempts.length + two.attempts.length, 2, 'once each')
})

t.test('a receiver down, then back: delivered exactly once, under the message id of its row', async (t) => {
  const receiver = await startWebhookReceiver(t)
  await receiver.stop()
  const app = await build(t, await testEnvironment(t, webhookEnvironment(receiver)))
  const retried = t.capture(app.log, 'warn')
  await deleted(app, 2)
  await waitFor(async () => (await rows(app))[0]!.lastError !== null, 5000, 'a failed attempt')
  const [queued] = await rows(app)
  t.match(queued, { status: 'queued', lastError: /^ECONNREFUSED connect ECONNREFUSED 127\.0\.0\.1:/ })
  t.ok(queued!.payload !== null, 'the body is kept until it is delivered')
  t.equal(await sample(app, 'auth_webhooks_queued'), 1)
  t.ok((await sample(app, counted('retried')) ?? 0) >= 1)
  t.match(retried()[0]!.args, [{ messageId: queued!.messageId, type: 'user.deleted', url: receiver.url, attempts: 1, failure: /ECONNREFUSED/, retryAt: Date }, 'webhook not delivered: retrying'])

  await receiver.start()
  await delivered(receiver)
  t.equal(receiver.deliveries[0]!.id, queued!.messageId)
  await waitFor(async () => (await rows(app))[0]!.status === 'sent', 5000, 'the row marked sent')
  t.ok((await rows(app))[0]!.attempts >= 2)
  await pause(1500)
  t.equal(receiver.attempts.length, 1, 'exactly once')
})

t.test('a 500, then a 204: delivered on the second attempt under the same id, both outcomes counted, nothing secret logged', async (t) => {
  const receiver = await startWebhookReceiver(t)
  receiver.answerNext(500)
  const app = await build(t, await testEnvironment(t, webhookEnvironment(receiver)))
  const logged = [t.capture(app.log, 'info'), t.capture(app.log, 'warn'), t.capture(app.log, 'error')]
  await deleted(app, 4, { marker: 'only-in-the-body' })
  await delivered(receiver)
  t.match(receiver.attempts, [{ status: 500, verified: true }, { status: 204, verified: true }])
  t.equal(receiver.attempts[1]!.id, receiver.attempts[0]!.id, 'the same webhook-id on every attempt')
  await waitFor(async () => (await rows(app))[0]!.status === 'sent', 5000, 'the row marked sent')
  t.match((await rows(app))[0], { attempts: 2, payload: null, lastError: null })
  t.equal(await sample(app, counted('retried')), 1)
  t.equal(await sample(app, counted('sent')), 1)
  const lines = JSON.stringify(logged.flatMap((captured) => captured().map((call) => call.args)))
  t.match(lines, /"failure":"answered 500"/)
  t.notMatch(lines, /only-in-the-body/, 'no body in the logs')
  t.notOk(lines.includes(webhookSecret.slice('whsec_'.length)), 'nor the secret')
})

t.test('a redirect is a failure, not followed', async (t) => {
  const receiver = await startWebhookReceiver(t)
  receiver.answerNext(302, 1, { location: `${receiver.url}/moved` })
  const app = await build(t, await testEnvironment(t, webhookEnvironment(receiver)))
  await deleted(app, 5)
  await delivered(receiver)
  t.match(receiver.attempts, [{ status: 302, path: '/webhooks' }, { status: 204, path: '/webhooks' }], 'never to /moved')
  t.equal(await sample(app, counted('retried')), 1)
})

t.test('once WEBHOOK_RETRY_FOR has passed: failed, its body erased, an error logged', async (t) => {
  const receiver = await startWebhookReceiver(t)
  receiver.answerNext(503, 100)
  const app = await build(t, await testEnvironment(t, { ...webhookEnvironment(receiver), WEBHOOK_RETRY_FOR: '1s' }))
  const errors = t.capture(app.log, 'error')
  await deleted(app, 6)
  await waitFor(async () => (await rows(app))[0]!.status === 'failed', 8000, 'the row failed')
  const [failed] = await rows(app)
  t.match(failed, { status: 'failed', payload: null, lastError: 'answered 503' })
  t.ok(failed!.attempts >= 2, `${failed!.attempts} attempts`)
  t.match(errors()[0]!.args, [{ messageId: failed!.messageId, type: 'user.deleted', url: receiver.url, attempts: failed!.attempts, failure: 'answered 503' }, 'webhook failed: given up after WEBHOOK_RETRY_FOR'])
  t.equal(await sample(app, counted('failed')), 1)
  t.equal(await sample(app, 'auth_webhooks_queued'), 0)
  const attempts = receiver.attempts.length
  await app.webhooks.deliver()
  await pause(300)
  t.equal(receiver.attempts.length, attempts, 'a failed delivery is not attempted again')
  t.same(receiver.deliveries, [])
})

t.test('a receiver that hangs past WEBHOOK_TIMEOUT: the attempt is cut, and retried', async (t) => {
  const receiver = await startWebhookReceiver(t)
  receiver.hang = true
  const app = await build(t, await testEnvironment(t, { ...webhookEnvironment(receiver), WEBHOOK_TIMEOUT: '1s' }))
  await deleted(app, 8)
  await waitFor(async () => (await rows(app))[0]!.lastError !== null, 5000, 'a failed attempt')
  t.match((await rows(app))[0], { status: 'queued', lastError: 'TimeoutError The operation was aborted due to timeout' })
  receiver.hang = false
  await delivered(receiver)
  t.equal(receiver.deliveries[0]!.id, receiver.attempts[0]!.id)
})

t.test('a database lost under an attempt: the look\'s failure is logged', async (t) => {
  const receiver = await startWebhookReceiver(t)
  receiver.hang = true
  const app = await build(t, await testEnvironment(t, { ...webhookEnvironment(receiver), WEBHOOK_TIMEOUT: '1s' }))
  const errors = t.capture(app.log, 'error')
  await deleted(app, 9)
  await waitFor(() => receiver.attempts.length === 1, 5000, 'the attempt')
  await closeDatabase(app)
  await waitFor(() => errors().some((call) => call.args[1] === 'webhook delivery failed: retrying at the next look'), 5000, 'the error log line')
  t.pass('logged')
})

t.test('two instances on one PostgreSQL: each event is delivered once', {
  skip: postgresUrl === undefined && 'two instances share a database only on PostgreSQL'
}, async (t) => {
  const receiver = await startWebhookReceiver(t)
  const environment = await testEnvironment(t, webhookEnvironment(receiver))
  const one = await build(t, environment)
  const two = await build(t, environment)
  await Promise.all(Array.from({ length: 30 }, (_, index) => deleted(index % 2 === 0 ? one : two, index)))
  await Promise.all([one.webhooks.deliver(), two.webhooks.deliver()])
  await delivered(receiver, 30)
  await pause(1500)
  t.equal(receiver.attempts.length, 30, 'thirty attempts, no duplicate')
  t.equal(new Set(receiver.deliveries.map((delivery) => delivery.id)).size, 30)
  t.same((await rows(one)).filter((row) => row.status !== 'sent'), [])
})

t.test('the signature is Standard Webhooks\' own', async (t) => {
  const at = new Date('2024-05-01T12:00:00Z')
  t.equal(sign(webhookSecret, 'msg_1', at.getTime() / 1000, '{"a":1}'), new Webhook(webhookSecret).sign('msg_1', at, '{"a":1}'))
})
