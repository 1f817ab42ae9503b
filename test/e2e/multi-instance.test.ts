// Several instances on one PostgreSQL: each refuses the others' revocations within a second.
import { sql } from 'drizzle-orm'
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { sessions, tokens } from '../../src/db/schema.js'
import { bearer, build, claimsOf, postgresUrl, registerAndLogin, testEnvironment } from '../helper.js'

const onPostgres = { skip: postgresUrl === undefined && 'runs when DATABASE_URL names a PostgreSQL server' }

/** Polls until the access token is refused with token_revoked; answers how long that took. */
async function refusedWithin (app: FastifyInstance, access: string, limitMs: number): Promise<number> {
  const started = Date.now()
  while (Date.now() - started < limitMs) {
    const response = await app.inject({ method: 'GET', url: '/auth/me/', headers: bearer(access) })
    if (response.statusCode === 401 && response.json().code === 'token_revoked') return Date.now() - started
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  return Infinity
}

t.test('two instances honour each other\'s revocations within 1 s', onPostgres, async (t) => {
  const environment = await testEnvironment(t, { REFRESH_REUSE_GRACE: '0' })
  const a = await build(t, environment)
  const b = await build(t, environment)
  const login = async (body: { username: string, password: string }) =>
    (await a.inject({ method: 'POST', url: '/auth/login/', payload: { username: body.username, password: body.password } })).json()

  const actions: Array<[string, (pair: { access: string, refresh: string }, body: { username: string, password: string }) => Promise<number>]> = [
    ['logout', async (pair) => (await a.inject({ method: 'POST', url: '/auth/logout/', payload: { refresh: pair.refresh } })).statusCode],
    ['logout everywhere', async (pair) => (await a.inject({ method: 'POST', url: '/auth/logout/all/', headers: bearer(pair.access) })).statusCode],
    ['reuse detection', async (pair) => {
      await a.inject({ method: 'POST', url: '/auth/refresh/', payload: { refresh: pair.refresh } })
      return (await a.inject({ method: 'POST', url: '/auth/refresh/', payload: { refresh: pair.refresh } })).statusCode
    }],
    ['session deletion', async (pair, body) => {
      const other = await login(body)
      return (await a.inject({ method: 'DELETE', url: `/auth/sessions/${String(claimsOf(pair.access).sid)}`, headers: bearer(other.access) })).statusCode
    }],
    ['password change', async (pair, body) => {
      const other = await login(body)
      return (await a.inject({ method: 'POST', url: '/auth/password/change/', payload: { current_password: body.password, new_password: 'another good passphrase' }, headers: bearer(other.access) })).statusCode
    }]
  ]
  for (const [name, act] of actions) {
    const { body, tokens: pair } = await registerAndLogin(a)
    t.equal((await b.inject({ method: 'GET', url: '/auth/me/', headers: bearer(pair.access) })).statusCode, 200, `${name}: valid on B first`)
    t.match(await act(pair, body), /^(204|401)$/, `${name} on A`)
    const elapsed = await refusedWithin(b, pair.access, 1000)
    t.ok(elapsed < 1000, `${name}: refused by B after ${elapsed} ms`)
  }
})

t.test('a lost notification connection is re-established and the set reloaded', onPostgres, async (t) => {
  const app = await build(t)
  const { tokens: pair } = await registerAndLogin(app)
  const sid = String(claimsOf(pair.access).sid)

  // Revoked behind the service's back: no notification, so the instance still accepts the token.
  await app.db.update(sessions).set({ revokedAt: new Date() }).where(sql`${sessions.id} = ${sid}`)
  await app.db.update(tokens).set({ revokedAt: new Date() }).where(sql`${tokens.sessionId} = ${sid}`)
  t.equal((await app.inject({ method: 'GET', url: '/auth/me/', headers: bearer(pair.access) })).statusCode, 200)

  const killed = await app.db.execute(sql`select pg_terminate_backend(pid) as killed from pg_stat_activity
    where datname = current_database() and query ilike 'listen%'`)
  t.equal((killed as unknown as unknown[]).length, 1, 'the listen connection was found and killed')
  const elapsed = await refusedWithin(app, pair.access, 10_000)
  t.ok(elapsed < 10_000, `resynced after reconnecting, in ${elapsed} ms`)
})
