// The IPC of /metrics under WEB_CONCURRENCY, each end against a fake of the other; test/e2e/e2e.test.ts runs the real cluster.
import { EventEmitter } from 'node:events'
import { Registry } from 'prom-client'
import t from 'tap'
import { answerMetricsRequests, askPrimaryForMetrics, primaryChannel, type PrimaryChannel, type Workers } from '../../src/cluster-metrics.js'

/** A fake primary: records what the worker sends, and answers as `answer` says (nothing when it returns undefined). */
function fakePrimary (answer: (message: { type: string, id: number }) => object | Error | undefined) {
  const sent: object[] = []
  const channel = Object.assign(new EventEmitter(), {
    send (message: { type: string, id: number }, callback: (error: Error | null) => void) {
      sent.push(message)
      const reply = answer(message)
      if (reply instanceof Error) setImmediate(() => callback(reply))
      else if (reply !== undefined) setImmediate(() => channel.emit('message', { type: 'auth-service:metrics-answer', id: message.id, ...reply }))
      return true
    }
  })
  return { channel: channel as PrimaryChannel & EventEmitter, sent }
}

t.test('a worker talks to its primary; a process of its own has none', async (t) => {
  t.equal(primaryChannel(true), process)
  t.equal(primaryChannel(false), undefined)
})

t.test('a worker asks the primary and gets every worker\'s metrics, one answer per request', async (t) => {
  let count = 0
  const { channel, sent } = fakePrimary(() => ({ metrics: `metric ${++count}\n` }))
  const ask = askPrimaryForMetrics(channel, [new Registry()])
  t.same(await Promise.all([ask(), ask()]), ['metric 1\n', 'metric 2\n'])
  t.same(sent, [{ type: 'auth-service:metrics-request', id: 0 }, { type: 'auth-service:metrics-request', id: 1 }])
  channel.emit('message', { type: 'auth-service:metrics-answer', id: 0, metrics: 'late' })
  channel.emit('message', { type: 'something else' })
  channel.emit('message', null)
  t.same(await ask(), 'metric 3\n', 'answers to no request, and other messages, are ignored')
})

t.test('no metrics at all (no worker connected) is an empty text', async (t) => {
  const ask = askPrimaryForMetrics(fakePrimary(() => ({})).channel, [new Registry()])
  t.equal(await ask(), '')
})

t.test('the primary\'s error, a channel closed and a primary that never answers each reject', async (t) => {
  await t.rejects(askPrimaryForMetrics(fakePrimary(() => ({ error: 'Operation timed out.' })).channel, [])(), { message: 'Operation timed out.' })
  await t.rejects(askPrimaryForMetrics(fakePrimary(() => new Error('Channel closed')).channel, [])(), { message: 'Channel closed' })
  const started = Date.now()
  await t.rejects(askPrimaryForMetrics(fakePrimary(() => undefined).channel, [], 50)(), { message: 'the primary did not answer within 50 ms' })
  t.ok(Date.now() - started >= 45)
})

/** Fake workers: a message from one, and what the primary sent it back. */
function fakeWorkers () {
  const workers = new EventEmitter()
  const answers: object[] = []
  const worker = { send: (message: object, callback: (error: Error | null) => void) => { answers.push(message); callback(null); return true } }
  const from = async (message: unknown) => {
    workers.emit('message', worker, message)
    await new Promise((resolve) => setImmediate(resolve))
  }
  return { workers: workers as Workers & EventEmitter, answers, from }
}

t.test('the primary answers each request with the aggregated metrics, or with the error', async (t) => {
  const { workers, answers, from } = fakeWorkers()
  let fail = false
  answerMetricsRequests(workers, { clusterMetrics: async () => { if (fail) throw new Error('Operation timed out.'); return 'every worker\n' } })
  await from({ type: 'auth-service:metrics-request', id: 7 })
  fail = true
  await from({ type: 'auth-service:metrics-request', id: 8 })
  await from({ type: 'prom-client:getMetricsRes', requestId: 0 })
  await from(null)
  t.same(answers, [
    { type: 'auth-service:metrics-answer', id: 7, metrics: 'every worker\n' },
    { type: 'auth-service:metrics-answer', id: 8, error: 'Operation timed out.' }
  ], 'other messages are not answered')
})

t.test('prom-client\'s AggregatorRegistry by default: here, no worker to ask', async (t) => {
  const { workers, answers, from } = fakeWorkers()
  answerMetricsRequests(workers)
  await from({ type: 'auth-service:metrics-request', id: 1 })
  await new Promise((resolve) => setTimeout(resolve, 10))
  t.same(answers, [{ type: 'auth-service:metrics-answer', id: 1, metrics: '' }])
})
