import t from 'tap'
import { bearer, build, registerAndLogin, testEnvironment } from '../helper.js'

t.test('a login flood: bounded hashing, 503 with Retry-After past the queue, token routes unaffected', async (t) => {
  const app = await build(t, await testEnvironment(t, { HASH_CONCURRENCY: '1', HASH_QUEUE: '2' }))
  const { body, tokens } = await registerAndLogin(app)
  const login = () => app.inject({ method: 'POST', url: '/auth/login/', payload: { username: body.username, password: body.password } })

  let most = 0
  const sampler = setInterval(() => { most = Math.max(most, app.passwordHasher.load().inFlight) }, 1)
  const warnings = t.capture(app.log, 'warn')
  // When each login that got through answered: one hash after another, with one hashing slot.
  const loggedInAt: number[] = []
  const flood = Array.from({ length: 12 }, () => login().then((answer) => {
    if (answer.statusCode === 200) loggedInAt.push(performance.now())
    return answer
  }))
  await new Promise((resolve) => setImmediate(resolve))
  const me = await app.inject({ method: 'GET', url: '/auth/me/', headers: bearer(tokens.access) })
  const meAnsweredAt = performance.now()
  const answers = await Promise.all(flood)
  clearInterval(sampler)

  t.equal(me.statusCode, 200, '/auth/me/ answers while every hashing slot is taken')
  // Relative to the hashes, not a fixed time: on a loaded machine everything is slower, a hash as much as the rest.
  t.ok(meAnsweredAt < Math.max(...loggedInAt), 'and does not wait for the hashing queue to drain')
  const statuses = answers.map((answer) => answer.statusCode)
  t.same(statuses.filter((status) => status !== 200 && status !== 503), [], 'every answer is a login or a 503, never a 500')
  // Logins reach the hashing slots at slightly different times on PostgreSQL, so a slot may free up
  // for one more: at least the one in flight and the two queued get through, most are turned away.
  t.ok(statuses.filter((status) => status === 200).length >= 3, 'one in flight and two queued get through')
  t.ok(statuses.filter((status) => status === 503).length >= 6, 'the rest are turned away at once')
  const busy = answers.find((answer) => answer.statusCode === 503)!
  t.equal(busy.headers['retry-after'], '1')
  t.match(busy.json(), { statusCode: 503, error: 'Service Unavailable', code: 'service_unavailable' })
  const busyLines = warnings().filter((call) => call.args[1] === 'password hashing busy: 503')
  t.equal(busyLines.length, statuses.filter((status) => status === 503).length, 'each 503 is logged')
  t.match(busyLines[0]!.args[0], { route: '/auth/login/', client: '127.0.0.1' })
  t.equal(most, 1, 'never more than HASH_CONCURRENCY hashes at once')
  t.same(app.passwordHasher.load(), { inFlight: 0, queued: 0 })
  t.equal((await login()).statusCode, 200, 'logins work again once the flood is over')
})
