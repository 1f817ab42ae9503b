// Property-based fuzzing: random bodies on every route and random tokens on every protected route never
// get a 5xx, and every answer is JSON in the service's error shape or a success. FUZZ_RUNS sets the cases
// per property: a few dozen in CI, more with `npm run fuzz`.
import fc from 'fast-check'
import type { FastifyInstance, HTTPMethods } from 'fastify'
import t from 'tap'
import { build, newUser, registerAndLogin, testEnvironment } from '../helper.js'

const runs = Number(process.env.FUZZ_RUNS ?? 40)
const seed = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED)

/** The routes; `fields` names a body's own fields, which a share of the random bodies is made of; `query` the query's. */
const routes: Array<{ method: HTTPMethods, url: string, protected?: boolean, admin?: boolean, fields?: string[], query?: string[] }> = [
  { method: 'POST', url: '/auth/register/' },
  { method: 'POST', url: '/auth/registration/' },
  { method: 'POST', url: '/auth/login/' },
  { method: 'POST', url: '/api/token/' },
  { method: 'POST', url: '/api/token/refresh/' },
  { method: 'POST', url: '/api/token/verify/' },
  { method: 'POST', url: '/api/token/blacklist/' },
  { method: 'POST', url: '/auth/refresh/' },
  { method: 'POST', url: '/auth/logout/' },
  { method: 'POST', url: '/auth/logout/all/', protected: true },
  { method: 'GET', url: '/auth/sessions/', protected: true },
  { method: 'DELETE', url: '/auth/sessions/:id', protected: true },
  { method: 'POST', url: '/auth/password/change/', protected: true },
  { method: 'GET', url: '/auth/me/', protected: true },
  { method: 'GET', url: '/auth/me/events/', protected: true, query: ['limit', 'cursor'] },
  { method: 'POST', url: '/auth/verify/' },
  { method: 'POST', url: '/auth/introspect/' },
  { method: 'POST', url: '/auth/password/reset/', fields: ['email'] },
  { method: 'POST', url: '/auth/password/reset/confirm/', fields: ['token', 'email', 'code', 'new_password'] },
  { method: 'POST', url: '/auth/email/verify/', fields: ['token', 'email', 'code'] },
  { method: 'POST', url: '/auth/email/verify/resend/', protected: true },
  { method: 'POST', url: '/auth/email/change/', protected: true, fields: ['password', 'new_email'] },
  { method: 'POST', url: '/auth/email/change/confirm/', fields: ['token', 'email', 'code'] },
  { method: 'DELETE', url: '/auth/me/', protected: true, fields: ['password'] },
  { method: 'GET', url: '/admin/users/', admin: true, query: ['q', 'tag', 'disabled', 'limit', 'cursor'] },
  { method: 'GET', url: '/admin/users/:id', admin: true },
  { method: 'POST', url: '/admin/users/', admin: true, fields: ['users', 'tag'] },
  { method: 'PATCH', url: '/admin/users/:id', admin: true, fields: ['username', 'email', 'disabled', 'email_verified'] },
  { method: 'DELETE', url: '/admin/users/:id', admin: true },
  { method: 'DELETE', url: '/admin/users/', admin: true, query: ['tag'] },
  { method: 'GET', url: '/admin/events/', admin: true, query: ['user_id', 'type', 'since', 'limit', 'cursor'] },
  { method: 'POST', url: '/admin/users/:id/sessions/', admin: true },
  { method: 'DELETE', url: '/admin/users/:id/sessions/', admin: true },
  { method: 'GET', url: '/.well-known/jwks.json' },
  { method: 'GET', url: '/health/live' },
  { method: 'GET', url: '/health/ready' },
  { method: 'GET', url: '/health' }
]

// The fuzzed user's address: a code sent with it reaches the lookup of its live mail tokens, and counts against them.
const fuzzEmail = 'fuzz@example.com'
const text = fc.oneof(
  fc.string(),
  fc.string({ unit: 'binary', maxLength: 300 }),
  fc.constantFrom('', ' ', 'admin', 'correct horse battery', '__proto__', 'a@b.c', fuzzEmail, 'FUZZ@EXAMPLE.COM', `${fuzzEmail}\u0000`, 'a%00b', '\u0000'),
  // Codes: six digits get past the pattern to the lookup; the others are what it must refuse.
  fc.stringMatching(/^[0-9]{6}$/),
  fc.constantFrom('٠١٢٣٤٥', '１２３４５６', '12345', '1234567', '123456\n', ' 123456', '12345\u0000')
)
const base64url = (data: string) => Buffer.from(data).toString('base64url')
// Three base64url segments of random JSON: gets past the split, into the JWT parser.
const jwtLike = fc.tuple(fc.jsonValue({ maxDepth: 2 }), fc.jsonValue({ maxDepth: 2 }), fc.string({ unit: 'binary', maxLength: 80 }))
  .map(([header, payload, signature]) => `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(payload))}.${base64url(signature)}`)
const token = fc.oneof(text, jwtLike)
// Values of every JSON type, strings most often, as the fields the routes know.
const value = fc.oneof({ weight: 4, arbitrary: text }, { weight: 1, arbitrary: jwtLike }, { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) })
const fieldNames = [
  'username', 'email', 'password', 'refresh', 'token', 'current_password', 'new_password', 'device_token', 'token_type_hint',
  'code', 'new_email', '__proto__', 'constructor', 'prototype'
]
const knownFields = fc.dictionary(fc.constantFrom(...fieldNames), value, { maxKeys: 5 })

/** A value for one field: often of the shape it asks for, so that more bodies get past the schema to the handler. */
function fieldValue (name: string) {
  const shaped = {
    code: fc.stringMatching(/^[0-9]{6}$/),
    email: fc.oneof(fc.constantFrom(fuzzEmail, 'FUZZ@example.com', 'nobody@example.com'), fc.emailAddress()),
    new_email: fc.oneof(fc.constantFrom(fuzzEmail, 'new-fuzz@example.com'), fc.emailAddress()),
    password: fc.constant('correct horse battery'),
    new_password: fc.constantFrom('correct horse battery', 'a brand new passphrase', 'password123')
  }[name]
  return shaped === undefined ? value : fc.oneof({ weight: 1, arbitrary: shaped }, { weight: 1, arbitrary: value })
}
/** A JSON object of any of the route's own fields, and now and then a field of another route. */
const ownFields = (fields: string[]) => fc.tuple(fc.record(Object.fromEntries(fields.map((name) => [name, fieldValue(name)])), { requiredKeys: [] }), fc.option(knownFields, { freq: 4 }))
  .map(([own, other]) => ({ payload: JSON.stringify({ ...other, ...own }), type: 'application/json' }))

/** A query string of the route's own parameters: numbers, times and words near what they ask for, and anything. */
const queryOf = (names: string[]) => fc.dictionary(fc.constantFrom(...names), fc.oneof(
  text,
  fc.integer({ min: -1, max: 2 ** 53 }).map(String),
  fc.date({ noInvalidDate: true }).map((date) => date.toISOString()),
  fc.constantFrom('true', 'false', 'login.failed', 'admin.refused', '2026-02-30T00:00:00Z', '1e3', '0x10', '100000000000000000000')
), { maxKeys: 4 }).map((query) => `?${new URLSearchParams(query).toString()}`)

/** A request body as bytes on the wire, with the content type it claims. */
const body = fc.oneof(
  { weight: 4, arbitrary: knownFields.map((fields) => ({ payload: JSON.stringify(fields), type: 'application/json' })) },
  { weight: 1, arbitrary: fc.jsonValue().map((json) => ({ payload: JSON.stringify(json), type: 'application/json' })) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary' }).map((raw) => ({ payload: raw, type: 'application/json' })) },
  {
    weight: 1,
    arbitrary: fc.tuple(knownFields, fc.constantFrom('application/x-www-form-urlencoded', 'text/plain', 'multipart/form-data', 'application/xml', 'application/json; charset=latin1'))
      .map(([fields, type]) => ({ payload: new URLSearchParams(Object.entries(fields).map(([key, val]) => [key, typeof val === 'string' ? val : JSON.stringify(val)])).toString(), type }))
  }
)

function checkAnswer (response: { statusCode: number, headers: Record<string, unknown>, body: string }): boolean {
  if (response.statusCode >= 500) throw new Error(`${response.statusCode}: ${response.body}`)
  if (response.statusCode >= 400) {
    const error = JSON.parse(response.body) as { statusCode: number, code: unknown }
    if (error.statusCode !== response.statusCode || typeof error.code !== 'string') throw new Error(`not the error shape: ${response.body}`)
  }
  return true
}

t.test('random bodies, tokens and ids never get a 5xx', async (t) => {
  const adminToken = 'a-fuzzing-admin-token-of-32-characters-or-more'
  const app: FastifyInstance = await build(t, await testEnvironment(t, { ADMIN_TOKEN: adminToken }))
  // Its registration mailed a verification code to fuzzEmail: codes sent with that address are looked up and counted.
  await registerAndLogin(app, newUser({ email: fuzzEmail }))
  for (const route of routes) t.ok(app.hasRoute({ method: route.method, url: route.url }), `${route.method} ${route.url} is a route`)

  for (const route of routes) {
    // A user of each route's own: a fuzzed logout, password change or reset on one route must not leave the next
    // with a dead token, which would be refused before its body is read.
    const { tokens } = await registerAndLogin(app)
    const id = fc.oneof(fc.uuid(), fc.string({ maxLength: 60 }), fc.integer({ min: -1, max: 2 ** 32 }).map(String))
    const authorization = route.protected === true || route.admin === true
      ? fc.oneof(fc.constant(`Bearer ${route.admin === true ? adminToken : tokens.access}`), token.map((value) => `Bearer ${value}`), text)
      : fc.option(token.map((value) => `Bearer ${value}`), { nil: undefined })
    const routeBody = route.fields === undefined ? body : fc.oneof({ weight: 2, arbitrary: body }, { weight: 3, arbitrary: ownFields(route.fields) })
    const query = route.query === undefined ? fc.constant('') : queryOf(route.query)
    const property = fc.asyncProperty(routeBody, id, authorization, query, async ({ payload, type }, sessionId, auth, search) => {
      const response = await app.inject({
        method: route.method,
        url: route.url.replace(':id', encodeURIComponent(sessionId)) + search,
        headers: { 'content-type': type, ...(auth === undefined ? {} : { authorization: auth }) },
        ...(route.method === 'GET' ? {} : { payload })
      })
      return checkAnswer(response)
    })
    await t.resolves(fc.assert(property, { numRuns: runs, seed }), `${route.method} ${route.url}: ${runs} cases`)
  }
  // The fuzzed user's own token may have been revoked by a fuzzed logout: a new login must still work.
  t.equal((await app.inject({ method: 'GET', url: '/health/live' })).statusCode, 200, 'the service still answers')
})
