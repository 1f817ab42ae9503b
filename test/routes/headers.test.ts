import t from 'tap'
import { bearer, build, registerAndLogin, testEnvironment } from '../helper.js'

t.test('every answer: nosniff, no framework fingerprint, no HSTS unless asked, no CORS unless allowed', async (t) => {
  const app = await build(t)
  const { tokens } = await registerAndLogin(app)
  const answers = [
    await app.inject({ method: 'GET', url: '/auth/me/', headers: { ...bearer(tokens.access), origin: 'https://evil.example' } }),
    await app.inject({ method: 'GET', url: '/health/live', headers: { origin: 'https://evil.example' } }),
    await app.inject({ method: 'GET', url: '/nowhere' }),
    await app.inject({ method: 'POST', url: '/auth/login/', payload: '{', headers: { 'content-type': 'application/json' } })
  ]
  t.same(answers.map((answer) => answer.statusCode), [200, 200, 404, 400])
  for (const answer of answers) {
    t.equal(answer.headers['x-content-type-options'], 'nosniff')
    t.equal(answer.headers['x-powered-by'], undefined)
    t.equal(answer.headers.server, undefined)
    t.equal(answer.headers['strict-transport-security'], undefined)
    t.equal(answer.headers['access-control-allow-origin'], undefined)
  }
  const preflight = await app.inject({
    method: 'OPTIONS',
    url: '/auth/login/',
    headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' }
  })
  t.equal(preflight.headers['access-control-allow-origin'], undefined, 'no preflight succeeds without an allowlist')
})

t.test('HSTS=on adds Strict-Transport-Security', async (t) => {
  const app = await build(t, await testEnvironment(t, { HSTS: 'on' }))
  const answer = await app.inject({ method: 'GET', url: '/health/live' })
  t.equal(answer.headers['strict-transport-security'], 'max-age=31536000; includeSubDomains')
})

t.test('CORS_ORIGINS lets exactly those origins in', async (t) => {
  const app = await build(t, await testEnvironment(t, { CORS_ORIGINS: 'https://app.example.com,http://localhost:5173' }))
  const preflight = (origin: string) => app.inject({
    method: 'OPTIONS',
    url: '/auth/login/',
    headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' }
  })
  const allowed = await preflight('https://app.example.com')
  t.equal(allowed.statusCode, 204)
  t.equal(allowed.headers['access-control-allow-origin'], 'https://app.example.com')
  t.match(allowed.headers['access-control-allow-methods'], /POST/)
  t.equal(allowed.headers['access-control-max-age'], '600')

  const other = await preflight('https://app.example.com.evil.example')
  t.equal(other.headers['access-control-allow-origin'], undefined, 'a look-alike origin is not let in')

  const login = await app.inject({ method: 'POST', url: '/auth/login/', payload: { username: 'nobody', password: 'x' }, headers: { origin: 'http://localhost:5173' } })
  t.equal(login.statusCode, 401)
  t.equal(login.headers['access-control-allow-origin'], 'http://localhost:5173', 'errors carry it too, so the browser shows them')
  t.equal(login.headers['x-content-type-options'], 'nosniff')
})

t.test('Cache-Control: no-store follows the route matched, however its path is spelled', async (t) => {
  const app = await build(t)
  const { body } = await registerAndLogin(app)
  for (const url of ['/auth/login/', '/%61uth/login/', '/auth/%6Cogin/', '/auth/login']) {
    const answer = await app.inject({ method: 'POST', url, payload: { username: body.username, password: body.password } })
    t.equal(answer.statusCode, 200, url)
    t.ok(answer.json().access, `${url}: a token pair`)
    t.equal(answer.headers['cache-control'], 'no-store', `${url}: not stored`)
  }
  const refused = await app.inject({ method: 'GET', url: '/%61uth/sessions/' })
  t.equal(refused.statusCode, 401)
  t.equal(refused.headers['cache-control'], 'no-store', 'an answer of a hook carries it too')
  t.equal((await app.inject({ method: 'GET', url: '/health/live' })).headers['cache-control'], undefined, 'other routes may be cached')
})
