import { eq } from 'drizzle-orm'
import t from 'tap'
import { users } from '../../src/db/schema.js'
import { bearer, build, claimsOf, newUser, registerAndLogin } from '../helper.js'

t.test('session management', async (t) => {
  const app = await build(t)
  const login = async (body: { username: string, password: string }, userAgent = 'agent') =>
    (await app.inject({ method: 'POST', url: '/auth/login/', payload: { username: body.username, password: body.password }, headers: { 'user-agent': userAgent } })).json()
  const me = (access: string) => app.inject({ method: 'GET', url: '/auth/me/', headers: bearer(access) })

  t.test('every route needs a valid access token', async (t) => {
    for (const [method, url] of [['POST', '/auth/logout/all/'], ['GET', '/auth/sessions/'], ['DELETE', `/auth/sessions/${crypto.randomUUID()}`], ['POST', '/auth/password/change/']] as const) {
      const response = await app.inject({ method, url, payload: method === 'POST' ? {} : undefined })
      t.equal(response.statusCode, 401, url)
      t.equal(response.json().code, 'not_authenticated', url)
    }
  })

  t.test('GET /auth/sessions/ lists live sessions and marks the current one', async (t) => {
    const { body, tokens: first } = await registerAndLogin(app)
    const second = await login(body, 'phone/2.0')
    const gone = await login(body)
    t.equal((await app.inject({ method: 'POST', url: '/auth/logout/', payload: { refresh: gone.refresh } })).statusCode, 204)

    const response = await app.inject({ method: 'GET', url: '/auth/sessions/', headers: bearer(second.access) })
    t.equal(response.statusCode, 200)
    t.equal(response.headers['cache-control'], 'no-store')
    const listed = response.json() as Array<Record<string, unknown>>
    t.equal(listed.length, 2, 'the logged-out session is not listed')
    for (const session of listed) {
      t.same(Object.keys(session).sort(), ['created_at', 'current', 'expires_at', 'id', 'ip', 'last_used_at', 'user_agent'])
    }
    const current = listed.find((session) => session.current)!
    t.equal(current.id, claimsOf(second.access).sid, 'id is the sid claim')
    t.match(current, { user_agent: 'phone/2.0', ip: '127.0.0.1', expires_at: second.refresh_expires_at })
    t.equal(listed.find((session) => !session.current)!.id, claimsOf(first.access).sid)
  })

  t.test('DELETE /auth/sessions/:id revokes one of your sessions; anything else is 404', async (t) => {
    const { body, tokens: mine } = await registerAndLogin(app)
    const other = await login(body)
    const stranger = await registerAndLogin(app)
    const remove = (id: string, access = mine.access) => app.inject({ method: 'DELETE', url: `/auth/sessions/${id}`, headers: bearer(access) })

    const strangers = await remove(String(claimsOf(stranger.tokens.access).sid))
    t.equal(strangers.statusCode, 404, 'someone else\'s session')
    t.same(strangers.json(), { statusCode: 404, error: 'Not Found', code: 'not_found', message: 'No such session.', detail: 'No such session.' })
    t.equal((await me(stranger.tokens.access)).statusCode, 200, 'and it is untouched')
    t.equal((await remove(crypto.randomUUID())).statusCode, 404, 'a session that does not exist')
    t.equal((await remove('not-a-uuid')).statusCode, 404, 'an id that cannot exist')

    const response = await remove(String(claimsOf(other.access).sid).toUpperCase())
    t.equal(response.statusCode, 204)
    t.equal((await me(other.access)).json().code, 'token_revoked')
    t.equal((await app.inject({ method: 'POST', url: '/auth/refresh/', payload: { refresh: other.refresh } })).json().code, 'token_revoked')
    t.equal((await remove(String(claimsOf(other.access).sid))).statusCode, 404, 'twice')
    t.equal((await me(mine.access)).statusCode, 200, 'the caller\'s session lives')
  })

  t.test('POST /auth/logout/all/ revokes every session of the user', async (t) => {
    const { body, tokens: first } = await registerAndLogin(app)
    const second = await login(body)
    const stranger = await registerAndLogin(app)
    const response = await app.inject({ method: 'POST', url: '/auth/logout/all/', headers: bearer(first.access) })
    t.equal(response.statusCode, 204)
    for (const pair of [first, second]) {
      t.equal((await me(pair.access)).json().code, 'token_revoked')
      t.equal((await app.inject({ method: 'POST', url: '/auth/refresh/', payload: { refresh: pair.refresh } })).json().code, 'token_revoked')
    }
    t.equal((await me(stranger.tokens.access)).statusCode, 200, 'other users are untouched')
  })

  t.test('POST /auth/password/change/', async (t) => {
    const { body, user, tokens: caller } = await registerAndLogin(app)
    const other = await login(body)
    const change = (payload: object, access = caller.access) =>
      app.inject({ method: 'POST', url: '/auth/password/change/', payload, headers: bearer(access) })
    const hashBefore = (await app.db.select().from(users).where(eq(users.id, user.id)))[0]!.passwordHash

    const wrong = await change({ current_password: 'not it at all', new_password: 'a brand new secret' })
    t.equal(wrong.statusCode, 400)
    t.same(wrong.json().errors, { current_password: ['Your current password was entered incorrectly.'] })
    const weak = await change({ current_password: body.password, new_password: 'password1' })
    t.equal(weak.statusCode, 400)
    t.same(weak.json().errors, { new_password: ['This password is too common.'] })
    const similar = await change({ current_password: body.password, new_password: `my ${body.username} pw` })
    t.same(similar.json().errors, { new_password: ['The password is too similar to the username.'] })
    t.equal((await change({ current_password: body.password })).statusCode, 400)
    t.equal((await app.db.select().from(users).where(eq(users.id, user.id)))[0]!.passwordHash, hashBefore, 'refusals change nothing')
    t.equal((await me(other.access)).statusCode, 200, 'nor revoke anything')

    const changed = await change({ current_password: body.password, new_password: 'a brand new secret' })
    t.equal(changed.statusCode, 204)
    t.equal((await me(caller.access)).statusCode, 200, 'the caller\'s session stays valid')
    t.equal((await app.inject({ method: 'POST', url: '/auth/refresh/', payload: { refresh: caller.refresh } })).statusCode, 200)
    t.equal((await me(other.access)).json().code, 'token_revoked', 'every other session is revoked')
    const relogin = (password: string) => app.inject({ method: 'POST', url: '/auth/login/', payload: { username: body.username, password } })
    t.equal((await relogin(body.password)).statusCode, 401, 'the old password no longer works')
    t.equal((await relogin('a brand new secret')).statusCode, 200, 'the new one does')
  })

  t.test('a deleted user cannot change a password', async (t) => {
    const { user, tokens: pair } = await registerAndLogin(app, newUser())
    await app.db.delete(users).where(eq(users.id, user.id))
    const response = await app.inject({ method: 'POST', url: '/auth/password/change/', payload: { current_password: 'x', new_password: 'whatever it is now' }, headers: bearer(pair.access) })
    t.equal(response.statusCode, 400)
  })
})

t.test('a session id that is too long, and a body no route reads, are client errors in the documented shape', async (t) => {
  const app = await build(t)
  const { tokens } = await registerAndLogin(app)
  const tooLong = await app.inject({ method: 'DELETE', url: `/auth/sessions/${'a'.repeat(70)}`, headers: bearer(tokens.access) })
  t.equal(tooLong.statusCode, 400)
  t.equal(tooLong.json().code, 'invalid_request')
  const textBody = await app.inject({ method: 'POST', url: '/auth/logout/all/', headers: { ...bearer(tokens.access), 'content-type': 'text/plain' }, payload: 'hello' })
  t.equal(textBody.statusCode, 415)
  t.equal(textBody.json().code, 'unsupported_media_type')
})
