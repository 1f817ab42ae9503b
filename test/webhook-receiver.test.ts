// The receiver the webhook tests deliver to: it must verify, refuse, answer as told, hang, stop and start again.
import t from 'tap'
import { Webhook } from 'standardwebhooks'
import { startWebhookReceiver, waitFor, webhookSecret } from './webhook-receiver.js'

const body = JSON.stringify({ type: 'user.deleted', timestamp: new Date().toISOString(), data: { user_id: 1 } })
function post (url: string, secret = webhookSecret, id = 'msg_test') {
  const now = new Date()
  const headers = {
    'content-type': 'application/json',
    'webhook-id': id,
    'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
    'webhook-signature': new Webhook(secret).sign(id, now, body)
  }
  return fetch(url, { method: 'POST', headers, body, redirect: 'manual' })
}

t.test('verifies, refuses a bad signature, answers as told, then 204', async (t) => {
  const receiver = await startWebhookReceiver(t)
  t.equal((await post(receiver.url, `whsec_${Buffer.alloc(32, 1).toString('base64')}`)).status, 401)
  receiver.answerNext(302, 1, { location: '/elsewhere' })
  const redirected = await post(receiver.url)
  t.equal(redirected.status, 302)
  t.equal(redirected.headers.get('location'), '/elsewhere')
  t.equal((await post(receiver.url)).status, 204)
  t.match(receiver.attempts, [{ verified: false, status: 401 }, { verified: true, status: 302 }, { verified: true, status: 204 }])
  t.match(receiver.deliveries, [{ id: 'msg_test', type: 'user.deleted', data: { user_id: 1 }, body }])
})

t.test('hangs, stops, and starts again on the same port', async (t) => {
  const receiver = await startWebhookReceiver(t)
  const { port } = receiver
  receiver.hang = true
  const hung = post(receiver.url).then(() => 'answered', () => 'dropped')
  await waitFor(() => receiver.attempts.length === 1, 2000, 'the request')
  await receiver.stop()
  t.equal(await hung, 'dropped', 'stop() drops a hung request')
  await t.rejects(post(receiver.url), 'down')
  await receiver.start()
  await receiver.start()
  t.equal(receiver.port, port)
  receiver.hang = false
  t.equal((await post(receiver.url)).status, 204)
  await receiver.stop()
  await receiver.stop()
})

t.test('waitFor names what it waited for', async (t) => {
  await t.rejects(waitFor(() => false, 50, 'nothing'), { message: 'waited 50 ms for nothing' })
  await waitFor(async () => true)
})
