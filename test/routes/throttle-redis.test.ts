// With REDIS_URL, every throttle counter is shared by the instances on that Redis; without it, each
// instance counts alone. The instances here are two apps, each with its own Redis connection.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { bearer, build, capturedWithin, newUser, redisUrl, registerAndLogin, testEnvironment, testRedis } from '../helper.js'

async function twoInstances (t: Test, overrides: Record<string, string>) {
  const environment = await testEnvironment(t, { RATE_LIMIT: 'on', ...overrides })
  return [await build(t, environment), await build(t, environment)] as const
}

/** A key prefix of this test's own, its keys deleted when it ends. */
const redisPrefix = (t: Test) => testRedis(t).prefix

/**
 * Registers the user on both instances' databases: on PGlite each instance has a database of its own, and the
 * guard counts a known account by its id, the same in both when both saw the same registrations. On PostgreSQL
 * they share one, and the second registration is a 409.
 */
async function registerOnBoth (t: Test, a: Awaited<ReturnType<typeof build>>, b: typeof a, user: ReturnType<typeof newUser>) {
  const [first, second] = [await a.inject({ method: 'POST', url: '/auth/register/', payload: user }), await b.inject({ method: 'POST', url: '/auth/register/', payload: user })]
  t.equal(first.statusCode, 201)
  if (second.statusCode === 201) t.equal(second.json().id, first.json().id, 'the same id in both databases')
  else t.equal(second.statusCode, 409)
}

const register = (app: Awaited<ReturnType<typeof build>>) =>
  app.inject({ method: 'POST', url: '/auth/register/', payload: newUser({ username: 'ab' }) })

t.test('with REDIS_URL, a per-client limit holds across two instances', async (t) => {
  const prefix = redisPrefix(t)
  const [a, b] = await twoInstances(t, { REDIS_URL: redisUrl, REDIS_KEY_PREFIX: prefix, RATE_LIMIT_REGISTER: '5/10m' })
  const statuses = []
  for (const app of [a, b, a, b, a]) statuses.push((await register(app)).statusCode)
  t.same(statuses, [400, 400, 400, 400, 400], 'five attempts, spread over both')
  const onA = await register(a)
  const onB = await register(b)
  t.equal(onA.statusCode, 429)
  t.equal(onB.statusCode, 429, 'the sixth is refused by either instance')
  t.equal(onB.headers['x-ratelimit-limit'], '5', 'the configured limit')
  t.ok(Number(onB.headers['retry-after']) > 590, 'in a ten-minute window')

  const { redis } = testRedis(t)
  const keys = await redis.keys(`${prefix}*`)
  t.equal(keys.length, 1, `one counter: ${keys.join(', ')}`)
  t.ok(keys[0]!.startsWith(`${prefix}rate-limit:`) && keys[0]!.endsWith('register:127.0.0.1'), 'in Redis, under REDIS_KEY_PREFIX, for this client and route')
})

t.test('with REDIS_URL, failed logins of one account count across two instances', async (t) => {
  const [a, b] = await twoInstances(t, { REDIS_URL: redisUrl, REDIS_KEY_PREFIX: redisPrefix(t), LOGIN_FAILURES_PER_CLIENT: '3/15m' })
  const user = newUser()
  await registerOnBoth(t, a, b, user)
  const login = (app: typeof a, password: string) =>
    app.inject({ method: 'POST', url: '/auth/login/', payload: { username: user.username, password } })
  t.same([(await login(a, 'wrong')).statusCode, (await login(b, 'wrong')).statusCode, (await login(a, 'wrong')).statusCode], [401, 401, 401])
  const throttled = await login(b, user.password)
  t.equal(throttled.statusCode, 429, 'the other instance refuses even the right password')
  t.equal(throttled.json().code, 'throttled')
  t.ok(Number(throttled.headers['retry-after']) > 890, 'until the 15 minutes are over')
})

t.test('with REDIS_URL, parallel wrong passwords on two instances: exactly the limits are checked', async (t) => {
  // A queue long enough that no guess is turned away for want of a hashing slot.
  const [a, b] = await twoInstances(t, {
    REDIS_URL: redisUrl, REDIS_KEY_PREFIX: redisPrefix(t), HASH_QUEUE: '100', TRUST_PROXY: '127.0.0.1', LOGIN_FAILURES_PER_ACCOUNT: '20/1h'
  })
  const guesses = async (client: (i: number) => string) => {
    const user = newUser()
    await registerOnBoth(t, a, b, user)
    const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => (i % 2 === 0 ? a : b).inject({
      method: 'POST', url: '/auth/login/', payload: { username: user.username, password: 'wrong' }, headers: { 'x-forwarded-for': client(i) }
    })))
    const statuses = answers.map((answer) => answer.statusCode === 429 ? answer.json().code : answer.statusCode)
    return { failed: statuses.filter((status) => status === 401).length, throttled: statuses.filter((status) => status === 'throttled').length }
  }
  t.same(await guesses(() => '203.0.113.1'), { failed: 10, throttled: 20 }, 'from one client: the 10 of LOGIN_FAILURES_PER_CLIENT')
  t.same(await guesses((i) => `198.51.100.${i}`), { failed: 20, throttled: 10 }, 'from 30 clients: the 20 of LOGIN_FAILURES_PER_ACCOUNT')
})

t.test('with REDIS_URL, the per-user password-change limit holds across two instances and clients', async (t) => {
  const [a, b] = await twoInstances(t, { REDIS_URL: redisUrl, REDIS_KEY_PREFIX: redisPrefix(t), RATE_LIMIT_PASSWORD_CHANGE: '2/1h', TRUST_PROXY: '127.0.0.1' })
  const { tokens } = await registerAndLogin(a)
  const change = (app: typeof a, client: string) => app.inject({
    method: 'POST', url: '/auth/password/change/', headers: { ...bearer(tokens.access), 'x-forwarded-for': client }, payload: { current_password: 'wrong', new_password: 'the new secret passphrase' }
  })
  t.equal((await change(a, '203.0.113.30')).statusCode, 400)
  t.equal((await change(b, '203.0.113.31')).statusCode, 400)
  const third = await change(a, '203.0.113.32')
  t.equal(third.statusCode, 429, 'the user\'s third change, from a third client, on either instance')
  t.ok(Number(third.headers['retry-after']) > 3500, 'in an hour\'s window')
})

t.test('a targeted lockout cannot keep the owner out of a known device, on both stores', async (t) => {
  for (const store of ['memory', 'redis']) {
    const environment = await testEnvironment(t, { RATE_LIMIT: 'on', TRUST_PROXY: '127.0.0.1', LOGIN_FAILURES_PER_ACCOUNT: '3/1h', ...(store === 'redis' ? { REDIS_URL: redisUrl, REDIS_KEY_PREFIX: redisPrefix(t) } : {}) })
    const app = await build(t, environment)
    const user = newUser()
    t.equal((await app.inject({ method: 'POST', url: '/auth/register/', payload: user })).statusCode, 201)
    const login = (client: string, password: string, deviceToken?: string) => app.inject({
      method: 'POST', url: '/auth/login/', headers: { 'x-forwarded-for': client }, payload: { username: user.username, password, ...(deviceToken === undefined ? {} : { device_token: deviceToken }) }
    })
    const first = await login('198.51.100.1', user.password)
    t.equal(first.statusCode, 200, store)
    const deviceToken = first.json().device_token as string
    t.match(deviceToken, /^dt1\./, `${store}: a successful login hands out a device token`)

    // An attacker spreads failures over clients until the account waits.
    for (let i = 0; i < 3; i++) t.equal((await login(`203.0.113.${i}`, 'wrong password')).statusCode, 401)
    t.equal((await login('203.0.113.50', user.password)).statusCode, 429, `${store}: the account waits, even for the right password`)
    t.equal((await login('198.51.100.1', user.password)).statusCode, 429, `${store}: the owner without the device token waits too`)
    t.equal((await login('198.51.100.2', user.password, 'dt1.1.1.forged.mac')).statusCode, 429, `${store}: a forged device token is no exemption`)
    const owner = await login('198.51.100.1', user.password, deviceToken)
    t.equal(owner.statusCode, 200, `${store}: the owner's device logs in`)
    t.equal((await login('203.0.113.51', user.password)).statusCode, 429, `${store}: and the account still waits for everyone else`)
    const { device_token: fresh } = owner.json() as { device_token: string }
    // A device token spread over many addresses is one client: its failures are counted under the device.
    for (let i = 0; i < 10; i++) t.equal((await login(`192.0.2.${i}`, 'wrong password', fresh)).statusCode, 401)
    t.equal((await login('192.0.2.99', user.password, fresh)).statusCode, 429, `${store}: the device's own limit, from any address`)
    const other = newUser()
    t.equal((await app.inject({ method: 'POST', url: '/auth/register/', payload: other })).statusCode, 201)
    t.equal((await app.inject({ method: 'POST', url: '/auth/login/', headers: { 'x-forwarded-for': '198.51.100.1' }, payload: { username: other.username, password: 'wrong', device_token: deviceToken } })).statusCode, 401,
      `${store}: another account's device token changes nothing`)
  }
})

t.test('without REDIS_URL, each instance counts alone', async (t) => {
  const [a, b] = await twoInstances(t, { RATE_LIMIT_REGISTER: '5/10m' })
  for (let i = 0; i < 5; i++) await register(a)
  t.equal((await register(a)).statusCode, 429)
  t.equal((await register(b)).statusCode, 400, 'the other instance has counters of its own')
})

t.test('a Redis outage lets requests through, logged, rather than refusing every client', async (t) => {
  const port = 20_000 + Math.floor(Math.random() * 20_000)
  const server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
  const exited = once(server, 'exit')
  t.teardown(async () => { server.kill('SIGKILL'); await exited })
  const url = `redis://127.0.0.1:${port}`
  // Refused until the server listens: retried, and quiet meanwhile.
  const probe = new Redis(url, { retryStrategy: (attempt) => attempt < 50 ? 100 : null })
  probe.on('error', () => {})
  await probe.ping()
  await probe.quit()

  const [app] = await twoInstances(t, { REDIS_URL: url, RATE_LIMIT_REGISTER: '1/10m', LOGIN_FAILURES_PER_CLIENT: '1/15m', RATE_LIMIT_PASSWORD_CHANGE: '1/1h' })
  const warnings = t.capture(app.log, 'warn')
  const errors = t.capture(app.log, 'error')
  const user = newUser()
  t.equal((await app.inject({ method: 'POST', url: '/auth/register/', payload: user })).statusCode, 201)
  const { access } = (await app.inject({ method: 'POST', url: '/auth/login/', payload: { username: user.username, password: user.password } })).json()
  server.kill('SIGKILL')
  await exited
  const registered = await app.inject({ method: 'POST', url: '/auth/register/', payload: newUser() })
  t.equal(registered.statusCode, 201, 'the register limit of 1 could not be counted, so it did not refuse')
  const statuses = []
  for (let i = 0; i < 3; i++) {
    statuses.push((await app.inject({ method: 'POST', url: '/auth/login/', payload: { username: user.username, password: 'wrong' } })).statusCode)
  }
  statuses.push((await app.inject({ method: 'POST', url: '/auth/login/', payload: { username: user.username, password: user.password } })).statusCode)
  t.same(statuses, [401, 401, 401, 200], 'logins answered as if unthrottled, never a 500')
  const changes = []
  for (let i = 0; i < 2; i++) {
    changes.push((await app.inject({ method: 'POST', url: '/auth/password/change/', headers: bearer(access), payload: { current_password: 'wrong', new_password: 'the new secret passphrase' } })).statusCode)
  }
  t.same(changes, [400, 400], 'password changes too, past the per-user limit of 1 that could not be counted')
  // Other warnings (the failed password changes) come first: wait for this one.
  const seen: Array<{ args: unknown[] }> = []
  for (const deadline = Date.now() + 5000; !seen.some(({ args }) => args[1] === 'redis connection error') && Date.now() < deadline;) {
    seen.push(...await capturedWithin(warnings, 100))
  }
  t.ok(seen.some(({ args }) => args[1] === 'redis connection error'), 'the failed reconnections are logged')
  t.ok(errors().some(({ args }) => args[1] === 'throttle store failed: request let through'), 'so is each count that failed')
})

t.test('an unreachable REDIS_URL stops the start with a clear error, at once', async (t) => {
  const started = Date.now()
  await t.rejects(build(t, await testEnvironment(t, { RATE_LIMIT: 'on', REDIS_URL: 'redis://127.0.0.1:1' })), { message: /^REDIS_URL: cannot connect to Redis: connect ECONNREFUSED/ })
  t.ok(Date.now() - started < 60_000, 'well before the 120 s plugin timeout')
  const unthrottled = await build(t, await testEnvironment(t, { RATE_LIMIT: 'off', REDIS_URL: 'redis://127.0.0.1:1' }))
  t.equal((await unthrottled.inject({ method: 'GET', url: '/health/live' })).statusCode, 200, 'with RATE_LIMIT=off Redis is not needed')
})
