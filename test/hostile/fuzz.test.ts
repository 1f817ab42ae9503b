// Property-based fuzzing: random bodies on every route and random tokens on every protected route never
// get a 5xx, and every answer is JSON in the service's error shape or a success. FUZZ_RUNS sets the cases
// per property: a few dozen in CI, more with `npm run fuzz`.
import fc from 'fast-check'
import type { FastifyInstance, HTTPMethods } from 'fastify'
import t from 'tap'
import { build, registerAndLogin } from '../helper.js'

const runs = Number(process.env.FUZZ_RUNS ?? 40)
const seed = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED)

const routes: Array<{ method: HTTPMethods, url: string, protected?: boolean }> = [
  { method: 'POST', url: '/auth/register/' },
  { method: 'POST', url: '/auth/registration/' },
  { method: 'POST', url: '/auth/login/' },
  { method: 'POST', url: '/auth/refresh/' },
  { method: 'POST', url: '/auth/logout/' },
  { method: 'POST', url: '/auth/logout/all/', protected: true },
  { method: 'GET', url: '/auth/sessions/', protected: true },
  { method: 'DELETE', url: '/auth/sessions/:id', protected: true },
  { method: 'POST', url: '/auth/password/change/', protected: true },
  { method: 'GET', url: '/auth/me/', protected: true },
  { method: 'POST', url: '/auth/verify/' },
  { method: 'POST', url: '/auth/introspect/' },
  { method: 'GET', url: '/.well-known/jwks.json' },
  { method: 'GET', url: '/health/live' },
  { method: 'GET', url: '/health/ready' },
  { method: 'GET', url: '/health' }
]

const text = fc.oneof(fc.string(), fc.string({ unit: 'binary', maxLength: 300 }), fc.constantFrom('', ' ', 'admin', 'correct horse battery', '__proto__', 'a@b.c'))
// Values of every JSON type, strings most often, as the fields the routes know.
const value = fc.oneof({ weight: 4, arbitrary: text }, { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) })
const fieldNames = ['username', 'email', 'password', 'refresh', 'token', 'current_password', 'new_password', '__proto__', 'constructor']
const knownFields = fc.dictionary(fc.constantFrom(...fieldNames), value, { maxKeys: 5 })
const base64url = (data: string) => Buffer.from(data).toString('base64url')
// Three base64url segments of random JSON: gets past the split, into the JWT parser.
const jwtLike = fc.tuple(fc.jsonValue({ maxDepth: 2 }), fc.jsonValue({ maxDepth: 2 }), fc.string({ unit: 'binary', maxLength: 80 }))
  .map(([header, payload, signature]) => `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(payload))}.${base64url(signature)}`)
const token = fc.oneof(text, jwtLike)

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
  const app: FastifyInstance = await build(t)
  const { tokens } = await registerAndLogin(app)
  for (const route of routes) t.ok(app.hasRoute({ method: route.method, url: route.url }), `${route.method} ${route.url} is a route`)

  for (const route of routes) {
    const id = fc.oneof(fc.uuid(), fc.string({ maxLength: 60 }))
    const authorization = route.protected
      ? fc.oneof(fc.constant(`Bearer ${tokens.access}`), token.map((value) => `Bearer ${value}`), text)
      : fc.option(token.map((value) => `Bearer ${value}`), { nil: undefined })
    const property = fc.asyncProperty(body, id, authorization, async ({ payload, type }, sessionId, auth) => {
      const response = await app.inject({
        method: route.method,
        url: route.url.replace(':id', encodeURIComponent(sessionId)),
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
