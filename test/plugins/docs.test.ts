// The API description: OpenAPI 3.1 from the route schemas, and the reference page that renders it.
import t from 'tap'
import Fastify from 'fastify'
import { Type } from 'typebox'
import { build, undocumentedAnswers } from '../helper.js'

interface Operation {
  summary?: string
  tags?: string[]
  security?: Array<Record<string, string[]>>
  requestBody?: { content: Record<string, { schema: unknown, example?: unknown, examples?: Record<string, { value: unknown }> }> }
  responses: Record<string, { content?: Record<string, { schema: unknown }> }>
}

/** One example of the JSON body: OpenAPI's `example`, or the first of its named `examples`. */
function exampleOf (operation: Operation): unknown {
  const content = operation.requestBody?.content['application/json']
  return content?.example ?? Object.values(content?.examples ?? {})[0]?.value
}

t.test('/openapi.json describes every route, status and the bearer scheme', async (t) => {
  const app = await build(t)
  const response = await app.inject({ method: 'GET', url: '/openapi.json' })
  t.equal(response.statusCode, 200)
  const document = response.json() as { openapi: string, paths: Record<string, Record<string, Operation>>, components: { securitySchemes: Record<string, unknown> } }
  t.equal(document.openapi, '3.1.0')
  t.match(document.components.securitySchemes.bearerAuth, { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' })
  for (const [path, methods] of Object.entries(document.paths).filter(([path]) => path.startsWith('/admin/'))) {
    for (const [method, operation] of Object.entries(methods)) {
      t.same([operation.tags, operation.security], [['admin'], [{ adminToken: [] }]], `${method} ${path}: the admin tag and token, documented even while ADMIN_TOKEN is unset`)
    }
  }

  const operations = Object.entries(document.paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, operation]) => ({ name: `${method.toUpperCase()} ${path}`, operation })))
  t.same(operations.map(({ name }) => name).sort(), [
    'DELETE /admin/users/',
    'DELETE /admin/users/{id}',
    'DELETE /admin/users/{id}/sessions/',
    'DELETE /auth/me/',
    'DELETE /auth/sessions/{id}',
    'GET /.well-known/jwks.json',
    'GET /admin/events/',
    'GET /admin/users/',
    'GET /admin/users/{id}',
    'GET /auth/me/',
    'GET /auth/me/events/',
    'GET /auth/sessions/',
    'GET /health',
    'GET /health/live',
    'GET /health/ready',
    'PATCH /admin/users/{id}',
    'POST /admin/users/',
    'POST /admin/users/{id}/sessions/',
    'POST /api/token/',
    'POST /api/token/blacklist/',
    'POST /api/token/refresh/',
    'POST /api/token/verify/',
    'POST /auth/email/change/',
    'POST /auth/email/change/confirm/',
    'POST /auth/email/verify/',
    'POST /auth/email/verify/resend/',
    'POST /auth/introspect/',
    'POST /auth/login/',
    'POST /auth/logout/',
    'POST /auth/logout/all/',
    'POST /auth/password/change/',
    'POST /auth/password/reset/',
    'POST /auth/password/reset/confirm/',
    'POST /auth/refresh/',
    'POST /auth/register/',
    'POST /auth/registration/',
    'POST /auth/verify/'
  ], 'every route, and nothing of the docs themselves')

  const protectedRoutes = ['GET /auth/me/', 'GET /auth/me/events/', 'GET /auth/sessions/', 'DELETE /auth/sessions/{id}', 'POST /auth/logout/all/', 'POST /auth/password/change/', 'POST /auth/email/verify/resend/', 'POST /auth/email/change/', 'DELETE /auth/me/']
  for (const { name, operation } of operations) {
    t.ok(operation.summary !== undefined && operation.tags?.length === 1, `${name}: a summary and a tag`)
    if (protectedRoutes.includes(name)) t.same(operation.security, [{ bearerAuth: [] }], `${name}: needs a bearer token`)
    if (operation.requestBody !== undefined) {
      t.ok(exampleOf(operation) !== undefined, `${name}: an example request body`)
    }
  }
  const login = document.paths['/auth/login/']!.post!
  t.same(Object.keys(login.responses).sort(), ['200', '400', '401', '403', '413', '415', '429', '500', '503'], 'every status of login')
  t.match(login.responses['200']!.content!['application/json']!.schema, { properties: { access: { type: 'string' }, refresh: { type: 'string' } } })
  t.same(exampleOf(login), { username: 'ada', password: 'correct horse battery staple' })
})

t.test('/docs serves the reference page and its assets from the service itself', async (t) => {
  const app = await build(t)
  const page = await app.inject({ method: 'GET', url: '/docs/' })
  t.equal(page.statusCode, 200)
  t.match(page.headers['content-type'], /^text\/html/)
  const assets = [...page.body.matchAll(/(?:src|href)="([^"]+)"/g)].map((match) => match[1]!)
  t.ok(assets.length > 0, 'the page loads scripts and styles')
  t.same(assets.filter((asset) => /^(https?:)?\/\//.test(asset)), [], 'none from another host')
  for (const asset of assets) {
    t.equal((await app.inject({ method: 'GET', url: new URL(asset, 'http://localhost/docs/').pathname })).statusCode, 200, `${asset} is served`)
  }
})

t.test('the suite checks every answer against its documented schema, and would catch a stray one', async (t) => {
  const server = Fastify()
  const mismatches = undocumentedAnswers(server)
  // A status the schema does not document (hence the cast).
  server.get('/teapot', { schema: { response: { 200: Type.Object({ ok: Type.Boolean() }) } } }, async (request, reply) => reply.code(418 as 200).send({ ok: true }))
  server.get('/typed', { schema: { response: { 200: Type.Object({ at: Type.String({ format: 'date-time' }) }) } } }, async () => ({ at: 'yesterday' }))
  server.get('/fine', { schema: { response: { 200: Type.Object({ ok: Type.Boolean() }) } } }, async () => ({ ok: true }))
  server.get('/hidden', { schema: { hide: true } }, async () => 'anything')
  for (const url of ['/teapot', '/typed', '/fine', '/hidden', '/unknown']) await server.inject({ method: 'GET', url })
  t.same([...mismatches], [
    'GET /teapot 418: a status the route does not document',
    'GET /typed 200: {"at":"yesterday"}'
  ])
})
