// GET /metrics: Prometheus text with request durations, the auth events and the process metrics.
import { EventEmitter } from 'node:events'
import Fastify from 'fastify'
import fp from 'fastify-plugin'
import t, { type Test } from 'tap'
import { requestDurations } from '../../plugins/metrics.js'
import app from '../../src/app.js'
import type { PrimaryChannel } from '../../src/cluster-metrics.js'
import { loadConfig } from '../../src/config.js'
import { serverOptions } from '../../src/options.js'
import { bearer, build, newUser, registerAndLogin, testEnvironment } from '../helper.js'

/** The value of one sample, such as `auth_logins_total{outcome="success"}`; undefined when absent. */
function sample (text: string, name: string): number | undefined {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${name} `))
  return line === undefined ? undefined : Number(line.slice(name.length + 1))
}

t.test('metrics count requests per route and status, and every auth event by outcome', async (t) => {
  const app = await build(t, await testEnvironment(t, { RATE_LIMIT: 'on', RATE_LIMIT_LOGIN: '6/1m', LOGIN_FAILURES_PER_CLIENT: '2/15m', REFRESH_REUSE_GRACE: '0' }))
  const { body, tokens } = await registerAndLogin(app)
  const login = (password: string, username = body.username) =>
    app.inject({ method: 'POST', url: '/auth/login/', payload: { username, password } })
  const refresh = (token: string) => app.inject({ method: 'POST', url: '/auth/refresh/', payload: { refresh: token } })

  const second = (await login(body.password, body.email)).json()
  t.equal((await login('wrong password')).statusCode, 401)
  t.equal((await login('wrong password')).statusCode, 401)
  t.equal((await login(body.password)).statusCode, 429, 'the failed-login guard')
  t.equal((await login('x', 'someone-else')).statusCode, 401)
  t.equal((await login('x', 'someone-else')).statusCode, 429, 'the per-client limit of 6')

  const rotated = (await refresh(tokens.refresh)).json()
  t.equal((await refresh(tokens.refresh)).json().code, 'token_reused')
  t.equal((await refresh(rotated.refresh)).json().code, 'token_revoked', 'the reuse revoked the session')
  t.equal((await refresh(tokens.access)).json().code, 'token_invalid')
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout/', payload: { refresh: second.refresh } })).statusCode, 204)

  const response = await app.inject({ method: 'GET', url: '/metrics' })
  t.equal(response.statusCode, 200)
  t.match(response.headers['content-type'], /^text\/plain; version=0\.0\.4/)
  const text = response.body
  t.equal(sample(text, 'auth_registrations_total'), 1)
  t.equal(sample(text, 'auth_logins_total{outcome="success"}'), 2)
  t.equal(sample(text, 'auth_logins_total{outcome="bad_credentials"}'), 3)
  t.equal(sample(text, 'auth_logins_total{outcome="throttled"}'), 2)
  t.equal(sample(text, 'auth_throttled_total{limit="login_failures"}'), 1)
  t.equal(sample(text, 'auth_throttled_total{limit="login"}'), 1)
  t.equal(sample(text, 'auth_refreshes_total{outcome="rotated"}'), 1)
  t.equal(sample(text, 'auth_refreshes_total{outcome="reused"}'), 1)
  t.equal(sample(text, 'auth_refreshes_total{outcome="revoked"}'), 1)
  t.equal(sample(text, 'auth_refreshes_total{outcome="invalid"}'), 1)
  t.equal(sample(text, 'auth_revoked_sessions'), 2, 'the reused session and the logged-out one')
  t.equal(sample(text, 'auth_hashing_in_flight'), 0)
  t.equal(sample(text, 'auth_hashing_queued'), 0)
  t.equal(sample(text, 'http_request_duration_seconds_count{method="POST",route="/auth/login/",status_code="401"}'), 3)
  t.equal(sample(text, 'http_request_duration_seconds_count{method="POST",route="/auth/login/",status_code="429"}'), 2)
  t.ok(sample(text, 'http_request_duration_seconds_bucket{le="0.005",method="POST",route="/auth/refresh/",status_code="401"}') !== undefined, 'a histogram per route and status')
  t.ok((sample(text, 'process_resident_memory_bytes') ?? 0) > 0, 'the default process metrics')
  t.ok(sample(text, 'nodejs_eventloop_lag_seconds') !== undefined)
  t.notMatch(text, /route="\/metrics"/, 'scrapes are not counted')
})

t.test('the expired outcome, counted for a refresh token past its session\'s maximum age', async (t) => {
  const environment = await testEnvironment(t)
  const { tokens } = await registerAndLogin(await build(t, environment))
  // The same database, restarted with a shorter SESSION_MAX_AGE: the session is now too old.
  await new Promise((resolve) => setTimeout(resolve, 1100))
  const app = await build(t, { ...environment, SESSION_MAX_AGE: '1s' })
  t.equal((await app.inject({ method: 'POST', url: '/auth/refresh/', payload: { refresh: tokens.refresh } })).json().code, 'token_expired')
  t.equal(sample((await app.inject({ method: 'GET', url: '/metrics' })).body, 'auth_refreshes_total{outcome="expired"}'), 1)
})

t.test('argon2 work in flight and queued is read at each scrape', async (t) => {
  const app = await build(t, await testEnvironment(t, { HASH_CONCURRENCY: '1', HASH_QUEUE: '8' }))
  const registrations = Array.from({ length: 4 }, () => app.inject({ method: 'POST', url: '/auth/register/', payload: newUser() }))
  await new Promise((resolve) => setTimeout(resolve, 20))
  const text = (await app.inject({ method: 'GET', url: '/metrics' })).body
  t.equal(sample(text, 'auth_hashing_in_flight'), 1)
  t.ok((sample(text, 'auth_hashing_queued') ?? 0) >= 1, 'the others wait')
  t.same((await Promise.all(registrations)).map((response) => response.statusCode), [201, 201, 201, 201])
})

t.test('METRICS_TOKEN protects /metrics with a Bearer token', async (t) => {
  const app = await build(t, await testEnvironment(t, { METRICS_TOKEN: 'a-metrics-token-of-16+' }))
  const without = await app.inject({ method: 'GET', url: '/metrics' })
  t.equal(without.statusCode, 401)
  t.match(without.json(), { code: 'not_authenticated' })
  t.equal(without.headers['www-authenticate'], 'Bearer realm="metrics"')
  t.equal((await app.inject({ method: 'GET', url: '/metrics', headers: bearer('a-metrics-token-of-16-') })).statusCode, 401, 'a wrong token')
  t.equal((await app.inject({ method: 'GET', url: '/metrics', headers: bearer('short') })).statusCode, 401, 'a token of another length')
  const scraped = await app.inject({ method: 'GET', url: '/metrics', headers: bearer('a-metrics-token-of-16+') })
  t.equal(scraped.statusCode, 200)
  t.match(scraped.body, /^# HELP /m)
})

t.test('unknown paths make no label of their own', async (t) => {
  const app = await build(t)
  for (const path of ['/nothing-here', '/wp-admin', '/.env']) t.equal((await app.inject({ method: 'GET', url: path })).statusCode, 404)
  const text = (await app.inject({ method: 'GET', url: '/metrics' })).body
  t.notMatch(text, /nothing-here|wp-admin|\.env|status_code="404"/)
})

t.test('the duration histogram counts each observation in its bucket, cumulatively, per label set', async (t) => {
  const durations = requestDurations([0.01, 0.1])
  durations.observe('GET', '/auth/me/', 200, 0.005)
  durations.observe('GET', '/auth/me/', 200, 0.01)
  durations.observe('GET', '/auth/me/', 200, 0.05)
  durations.observe('GET', '/auth/me/', 200, 3)
  durations.observe('GET', '/auth/me/', 401, 0.2)
  const labels = { method: 'GET', route: '/auth/me/', status_code: '200' }
  const { values } = durations.metric.get()
  t.same(values.slice(0, 3), [
    { metricName: 'http_request_duration_seconds_bucket', labels: { le: 0.01, ...labels }, value: 2 },
    { metricName: 'http_request_duration_seconds_bucket', labels: { le: 0.1, ...labels }, value: 3 },
    { metricName: 'http_request_duration_seconds_bucket', labels: { le: '+Inf', ...labels }, value: 4 }
  ])
  t.match(values[3], { metricName: 'http_request_duration_seconds_sum', labels })
  t.ok(Math.abs(values[3]!.value - 3.065) < 1e-9, 'the sum of the observations')
  t.same(values[4], { metricName: 'http_request_duration_seconds_count', labels, value: 4 })
  t.equal(values.length, 10, 'five values per label set')
  t.same(values.at(-1), { metricName: 'http_request_duration_seconds_count', labels: { ...labels, status_code: '401' }, value: 1 })
  durations.metric.reset()
  t.same(durations.metric.get().values, [])
})

/** The app as a worker of WEB_CONCURRENCY would build it, its primary a fake that answers `answer` to each request. */
async function buildWorker (t: Test, answer: { metrics: string } | { error: string }) {
  const asked: object[] = []
  const primary = Object.assign(new EventEmitter(), {
    send (message: { id: number }) {
      asked.push(message)
      setImmediate(() => primary.emit('message', { type: 'auth-service:metrics-answer', id: message.id, ...answer }))
      return true
    }
  }) as PrimaryChannel & EventEmitter
  const config = loadConfig(await testEnvironment(t, { METRICS_TOKEN: 'a-metrics-token-of-16+' }))
  const server = Fastify(serverOptions(config))
  await server.register(fp(app), { config, primary })
  t.teardown(() => server.close())
  return { server, asked }
}

t.test('in a worker of WEB_CONCURRENCY, /metrics serves what the primary gathered from every worker, behind the same token', async (t) => {
  const every = '# HELP auth_registrations_total Users registered\n# TYPE auth_registrations_total counter\nauth_registrations_total 5\n'
  const { server, asked } = await buildWorker(t, { metrics: every })
  const refused = await server.inject({ method: 'GET', url: '/metrics' })
  t.equal(refused.statusCode, 401)
  t.same(asked, [], 'without the token, the primary is not asked')
  const scraped = await server.inject({ method: 'GET', url: '/metrics', headers: bearer('a-metrics-token-of-16+') })
  t.equal(scraped.statusCode, 200)
  t.match(scraped.headers['content-type'], /^text\/plain; version=0\.0\.4/)
  t.equal(scraped.body, every)
  t.same(asked, [{ type: 'auth-service:metrics-request', id: 0 }])
})

t.test('in a worker, when not every worker answered, /metrics is a 503', async (t) => {
  const { server } = await buildWorker(t, { error: 'Operation timed out.' })
  const response = await server.inject({ method: 'GET', url: '/metrics', headers: bearer('a-metrics-token-of-16+') })
  t.equal(response.statusCode, 503)
  t.same(response.json(), {
    statusCode: 503,
    error: 'Service Unavailable',
    code: 'service_unavailable',
    message: 'Not every worker answered with its metrics; retry shortly.',
    detail: 'Not every worker answered with its metrics; retry shortly.'
  })
})
