import t from 'tap'
import { build, newUser, registerAndLogin, testEnvironment } from '../helper.js'

t.test('per-client limits: 429 throttled with Retry-After, each kind of route counted apart', async (t) => {
  const app = await build(t, await testEnvironment(t, { RATE_LIMIT: 'on' }))
  const { tokens } = await registerAndLogin(app)
  // A different unknown account each time: only the per-client limit applies, not the per-account one.
  let attempt = 0
  const login = () => app.inject({ method: 'POST', url: '/auth/login/', payload: { username: `nobody${++attempt}`, password: 'wrong password' } })

  const answers = []
  for (let i = 0; i < 59; i++) answers.push(await login())
  t.same([...new Set(answers.map((answer) => answer.statusCode))], [401], 'the 60 logins of a minute are answered')
  const throttled = await login()
  t.equal(throttled.statusCode, 429)
  t.match(throttled.json(), { statusCode: 429, error: 'Too Many Requests', code: 'throttled', message: /^Request was throttled\. Expected available in \d+ seconds\.$/ })
  t.ok(Number(throttled.headers['retry-after']) > 0 && Number(throttled.headers['retry-after']) <= 60, 'Retry-After in seconds')
  t.equal(throttled.headers['x-ratelimit-limit'], '60')
  t.equal(throttled.headers['cache-control'], 'no-store')

  const refreshed = await app.inject({ method: 'POST', url: '/auth/refresh/', payload: { refresh: tokens.refresh } })
  t.equal(refreshed.statusCode, 200, 'refresh has counters of its own')
  t.equal(refreshed.headers['x-ratelimit-limit'], '120')
  const me = await app.inject({ method: 'GET', url: '/auth/me/', headers: { authorization: `Bearer ${tokens.access}` } })
  t.equal(me.statusCode, 200, 'token routes are not limited')
})

t.test('30 registrations per client in 10 minutes', async (t) => {
  const app = await build(t, await testEnvironment(t, { RATE_LIMIT: 'on' }))
  for (let i = 0; i < 30; i++) {
    // Taken names cost no hash and still count.
    t.equal((await app.inject({ method: 'POST', url: '/auth/register/', payload: newUser({ username: 'ab' }) })).statusCode, 400)
  }
  const throttled = await app.inject({ method: 'POST', url: '/auth/registration/', payload: newUser() })
  t.equal(throttled.statusCode, 429, 'both registration paths share the counter')
  t.ok(Number(throttled.headers['retry-after']) > 540, 'a ten-minute window')
})

t.test('RATE_LIMIT=off lifts every limit', async (t) => {
  const app = await build(t, await testEnvironment(t, { RATE_LIMIT: 'off' }))
  const statuses = new Set<number>()
  for (let i = 0; i < 31; i++) statuses.add((await app.inject({ method: 'POST', url: '/auth/register/', payload: newUser({ username: 'ab' }) })).statusCode)
  t.same([...statuses], [400])
  const answer = await app.inject({ method: 'POST', url: '/auth/register/', payload: newUser({ username: 'ab' }) })
  t.equal(answer.headers['x-ratelimit-limit'], undefined, 'no rate-limit headers either')
})

t.test('X-Forwarded-For counts only from a trusted proxy: a spoofed one never resets a counter', async (t) => {
  const register = (app: Awaited<ReturnType<typeof build>>, forwardedFor: string) =>
    app.inject({ method: 'POST', url: '/auth/register/', payload: newUser({ username: 'ab' }), headers: { 'x-forwarded-for': forwardedFor } })

  const direct = await build(t, await testEnvironment(t, { RATE_LIMIT: 'on' }))
  for (let i = 0; i < 30; i++) await register(direct, `203.0.113.${i}`)
  t.equal((await register(direct, '198.51.100.1')).statusCode, 429, 'without TRUST_PROXY the header is ignored: one client')

  const proxied = await build(t, await testEnvironment(t, { RATE_LIMIT: 'on', TRUST_PROXY: '127.0.0.1' }))
  for (let i = 0; i < 30; i++) await register(proxied, '203.0.113.9')
  t.equal((await register(proxied, '203.0.113.9')).statusCode, 429, 'behind a trusted proxy, the client is the forwarded address')
  t.equal((await register(proxied, '203.0.113.10')).statusCode, 400, 'and another client has counters of its own')
})

t.test('failed logins per account and client: 429 from the 11th, other clients unaffected, case variants count together', async (t) => {
  const app = await build(t, await testEnvironment(t, { RATE_LIMIT: 'on', TRUST_PROXY: '127.0.0.1' }))
  const { body } = await registerAndLogin(app, newUser({ username: `Mixed${Date.now()}` }))
  const login = (username: string, password: string, client: string) => app.inject({
    method: 'POST', url: '/auth/login/', payload: { username, password }, headers: { 'x-forwarded-for': client }
  })
  for (let i = 0; i < 10; i++) {
    const name = i % 2 === 0 ? body.username.toLowerCase() : body.username.toUpperCase()
    t.equal((await login(name, 'wrong password', '203.0.113.5')).statusCode, 401)
  }
  const blocked = await login(body.username, body.password, '203.0.113.5')
  t.equal(blocked.statusCode, 429, 'even the right password waits')
  t.equal(blocked.json().code, 'throttled')
  t.equal(blocked.headers['retry-after'], String(15 * 60))
  t.equal((await login(body.username, body.password, '203.0.113.6')).statusCode, 200, 'the owner on another client logs in')
  t.equal((await login('nobody-at-all', 'x', '203.0.113.5')).statusCode, 401, 'other accounts from that client are not blocked')
})

t.test('failed logins count per account, whether its username or its email is typed', async (t) => {
  const app = await build(t, await testEnvironment(t, { RATE_LIMIT: 'on' }))
  const { body } = await registerAndLogin(app)
  const login = (username: string, password: string) => app.inject({ method: 'POST', url: '/auth/login/', payload: { username, password } })
  for (let i = 0; i < 10; i++) t.equal((await login(i % 2 === 0 ? body.username : body.email.toUpperCase(), 'wrong password')).statusCode, 401)
  t.equal((await login(body.email, body.password)).statusCode, 429, 'by email')
  t.equal((await login(body.username, body.password)).statusCode, 429, 'by username')
  const warnings = t.capture(app.log, 'warn')
  await login(`${body.username}`, 'wrong password')
  t.notMatch(JSON.stringify(warnings().map((call) => call.args)), body.username, 'the throttled line does not log what was typed')
})

t.test('IPv6 clients are counted by their /64', async (t) => {
  const app = await build(t, await testEnvironment(t, { RATE_LIMIT: 'on', TRUST_PROXY: '127.0.0.1', RATE_LIMIT_REGISTER: '2/10m' }))
  const { body } = await registerAndLogin(app)
  const login = (password: string, client: string) => app.inject({ method: 'POST', url: '/auth/login/', payload: { username: body.username, password }, headers: { 'x-forwarded-for': client } })
  for (let i = 0; i < 10; i++) t.equal((await login('wrong password', `2001:db8:1:2::${(i + 1).toString(16)}`)).statusCode, 401)
  t.equal((await login(body.password, '2001:db8:1:2:ffff::1')).statusCode, 429, 'another address of the same /64 is the same client')
  t.equal((await login(body.password, '2001:db8:1:3::1')).statusCode, 200, 'the next /64 is another client')
  const register = (client: string) => app.inject({ method: 'POST', url: '/auth/register/', payload: { username: 'x' }, headers: { 'x-forwarded-for': client } })
  t.same([(await register('2001:db8:9::1')).statusCode, (await register('2001:db8:9::2')).statusCode, (await register('2001:db8:9::3')).statusCode], [400, 400, 429], 'per-client limits too')
})

t.test('parallel wrong passwords from one client: exactly 10 are checked, the rest wait', async (t) => {
  // A queue long enough that no guess is turned away for want of a hashing slot.
  const app = await build(t, await testEnvironment(t, { RATE_LIMIT: 'on', HASH_QUEUE: '100' }))
  const { body } = await registerAndLogin(app)
  const guesses = await Promise.all(Array.from({ length: 30 }, () =>
    app.inject({ method: 'POST', url: '/auth/login/', payload: { username: body.username, password: 'wrong password' } })))
  const statuses = guesses.map((answer) => answer.statusCode)
  t.equal(statuses.filter((status) => status === 401).length, 10, 'the 10 failures a client may make')
  t.equal(statuses.filter((status) => status === 429).length, 20, `the rest throttled: ${statuses.join(' ')}`)
  t.match(guesses.find((answer) => answer.statusCode === 429)!.json(), { code: 'throttled' })
})

t.test('a login turned away by the busy hasher, or a success, gives its attempt back', async (t) => {
  // One hash at a time and no queue: parallel logins find the hasher busy.
  const app = await build(t, await testEnvironment(t, { RATE_LIMIT: 'on', HASH_CONCURRENCY: '1', HASH_QUEUE: '0' }))
  const { body } = await registerAndLogin(app)
  const login = (password: string) => app.inject({ method: 'POST', url: '/auth/login/', payload: { username: body.username, password } })

  const statuses = (await Promise.all(Array.from({ length: 10 }, () => login('wrong password')))).map((answer) => answer.statusCode)
  const failures = statuses.filter((status) => status === 401).length
  t.ok(statuses.includes(503), `some found the hasher busy: ${statuses.join(' ')}`)
  t.same(statuses.filter((status) => status !== 401 && status !== 503), [], 'the others failed')
  for (let i = failures; i < 9; i++) t.equal((await login('wrong password')).statusCode, 401)
  t.equal((await login(body.password)).statusCode, 200, 'only the failures counted: the 10th attempt is the owner\'s')
  for (let i = 0; i < 10; i++) t.equal((await login('wrong password')).statusCode, 401)
  t.equal((await login('wrong password')).statusCode, 429, 'the success cleared the count, and took nothing')
})
