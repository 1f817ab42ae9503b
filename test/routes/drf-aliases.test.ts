// A SimpleJWT client, unchanged: its default paths, its bodies, and `detail` in every error.
import t from 'tap'
import { bearer, build, newUser } from '../helper.js'

t.test('SimpleJWT\'s default paths answer as its views do', async (t) => {
  const app = await build(t)
  const body = newUser()
  t.equal((await app.inject({ method: 'POST', url: '/auth/register/', payload: body })).statusCode, 201)
  const post = (url: string, payload: object) => app.inject({ method: 'POST', url, payload })

  const obtained = await post('/api/token/', { username: body.username, password: body.password })
  t.equal(obtained.statusCode, 200)
  const pair = obtained.json()
  t.type(pair.access, 'string')
  t.type(pair.refresh, 'string')
  t.equal((await app.inject({ method: 'GET', url: '/auth/me/', headers: bearer(pair.access) })).json().username, body.username)
  const wrong = await post('/api/token/', { username: body.username, password: 'not the password' })
  t.equal(wrong.statusCode, 401)
  t.equal(wrong.json().detail, 'No active account found with the given credentials', 'SimpleJWT\'s message, where its clients read it')

  t.same((await post('/api/token/verify/', { token: pair.access })).json(), {})
  const invalid = await post('/api/token/verify/', { token: 'not.a.token' })
  t.equal(invalid.statusCode, 401)
  t.equal(invalid.json().detail, invalid.json().message)

  const refreshed = await post('/api/token/refresh/', { refresh: pair.refresh })
  t.equal(refreshed.statusCode, 200)
  const rotated = refreshed.json()
  t.not(rotated.refresh, pair.refresh, 'rotated, as ROTATE_REFRESH_TOKENS does')

  const blacklisted = await post('/api/token/blacklist/', { refresh: rotated.refresh })
  t.equal(blacklisted.statusCode, 200)
  t.same(blacklisted.json(), {})
  const after = await post('/api/token/refresh/', { refresh: rotated.refresh })
  t.equal(after.statusCode, 401)
  t.equal(after.json().code, 'token_revoked')
  t.equal((await app.inject({ method: 'GET', url: '/auth/me/', headers: bearer(rotated.access) })).statusCode, 401, 'the session ended')
})

t.test('every error carries detail, the message DRF clients show', async (t) => {
  const app = await build(t)
  for (const answer of [
    await app.inject({ method: 'GET', url: '/nowhere' }),
    await app.inject({ method: 'POST', url: '/api/token/', payload: { username: 'x' } }),
    await app.inject({ method: 'POST', url: '/api/token/refresh/', payload: 'not json', headers: { 'content-type': 'application/json' } }),
    await app.inject({ method: 'GET', url: '/auth/me/' })
  ]) {
    t.ok(answer.statusCode >= 400)
    t.equal(answer.json().detail, answer.json().message, `${answer.statusCode} ${answer.json().code as string}`)
  }
})
