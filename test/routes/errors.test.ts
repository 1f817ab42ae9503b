import { sql } from 'drizzle-orm'
import t from 'tap'
import { users } from '../../src/db/schema.js'
import { build, closeDatabase, newUser } from '../helper.js'

t.test('errors are JSON with a code, and bad input changes nothing', async (t) => {
  const app = await build(t)
  const post = (payload: string, headers: Record<string, string> = { 'content-type': 'application/json' }) =>
    app.inject({ method: 'POST', url: '/auth/register/', payload, headers })

  const cases: Array<[string, () => ReturnType<typeof post>, number, string]> = [
    ['malformed JSON', () => post('{"username": '), 400, 'invalid_request'],
    ['an empty JSON body', () => post(''), 400, 'invalid_request'],
    ['a __proto__ key', () => post(JSON.stringify(newUser()).replace('{', '{"__proto__": {"admin": true},')), 400, 'invalid_request'],
    ['a constructor.prototype key', () => post(JSON.stringify(newUser()).replace('{', '{"constructor": {"prototype": {"admin": true}},')), 400, 'invalid_request'],
    ['a form body', () => post('username=a&password=b', { 'content-type': 'application/x-www-form-urlencoded' }), 415, 'unsupported_media_type'],
    ['a text body', () => post('hello', { 'content-type': 'text/plain' }), 415, 'unsupported_media_type'],
    ['a body over 64 KiB', () => post(JSON.stringify({ ...newUser(), padding: 'x'.repeat(64 * 1024) })), 413, 'payload_too_large'],
    ['no body at all', () => app.inject({ method: 'POST', url: '/auth/register/' }), 400, 'invalid_request']
  ]
  for (const [name, send, statusCode, code] of cases) {
    const response = await send()
    t.equal(response.statusCode, statusCode, name)
    t.match(response.headers['content-type'], /^application\/json/, name)
    const body = response.json()
    t.match(body, { statusCode, error: String, code, message: String }, name)
  }
  t.equal(await app.db.$count(users), 0, 'nothing was stored')

  const notFound = await app.inject({ method: 'GET', url: '/nowhere?x=1' })
  t.equal(notFound.statusCode, 404)
  t.same(notFound.json(), { statusCode: 404, error: 'Not Found', code: 'not_found', message: 'Route GET /nowhere not found', detail: 'Route GET /nowhere not found' })
  const badUrl = await app.inject({ method: 'GET', url: '/auth/%zz' })
  t.equal(badUrl.statusCode, 400)
  t.equal(badUrl.headers['cache-control'], 'no-store')
  t.match(badUrl.json(), { statusCode: 400, error: 'Bad Request', code: 'invalid_request', message: String })
  const wrongMethod = await app.inject({ method: 'GET', url: '/auth/login/' })
  t.equal(wrongMethod.statusCode, 404)
  t.equal(wrongMethod.json().code, 'not_found')
})

t.test('health, and a 500 with no detail when the database is gone', async (t) => {
  const app = await build(t)
  for (const url of ['/health', '/health/', '/health/ready', '/health/live']) {
    const response = await app.inject({ method: 'GET', url })
    t.equal(response.statusCode, 200, url)
    t.same(response.json(), { status: 'ok' })
  }
  // A build newer than its database: not ready, though alive.
  await app.db.execute(sql`delete from drizzle.__drizzle_migrations`)
  for (const url of ['/health/ready', '/health']) {
    const pending = await app.inject({ method: 'GET', url })
    t.equal(pending.statusCode, 503, `${url} with migrations pending`)
    t.same(pending.json(), { status: 'unavailable' })
  }
  t.equal((await app.inject({ method: 'GET', url: '/health/live' })).statusCode, 200)
  // Close the database under the running app: health must say so, not crash.
  await closeDatabase(app)
  const down = await app.inject({ method: 'GET', url: '/health' })
  t.equal(down.statusCode, 503)
  t.same(down.json(), { status: 'unavailable' })
  t.equal((await app.inject({ method: 'GET', url: '/health/live' })).statusCode, 200, 'alive without a database')

  for (const url of ['/auth/login/', '/auth/register/']) {
    const failing = await app.inject({ method: 'POST', url, payload: newUser() })
    t.equal(failing.statusCode, 500, url)
    t.same(failing.json(), { statusCode: 500, error: 'Internal Server Error', code: 'internal_error', message: 'Something went wrong.', detail: 'Something went wrong.' })
  }
})
