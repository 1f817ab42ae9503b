import t from 'tap'
import { loadConfig, type Limits } from '../../src/config.js'
import type { LoginAttempt, LoginGuard } from '../../plugins/throttle/login-guard.js'
import { entries, memoryLoginGuard } from '../../plugins/throttle/memory-store.js'
import { loginGuardKeys, redisLoginGuard } from '../../plugins/throttle/redis-store.js'
import { memoryWindowCounter, redisWindowCounter } from '../../plugins/throttle/window-counter.js'
import { testRedis } from '../helper.js'

const minute = 60_000
const defaults = loadConfig({}).limits
const retryAfter = (error: unknown) => Number((error as { headers: Record<string, string> }).headers['retry-after'])

t.test('the defaults: 10 failures per account and client in 15 minutes, 100 per account an hour', async (t) => {
  t.same(defaults.loginFailuresPerClient, { max: 10, window: 15 * minute })
  t.same(defaults.loginFailuresPerAccount, { max: 100, window: 60 * minute })
})

/** One wrong password. */
const fail = async (guard: LoginGuard, account: string, client: string) => { await (await guard.reserve(account, client)).failed() }
/** One right password. */
const succeed = async (guard: LoginGuard, account: string, client: string) => { await (await guard.reserve(account, client)).succeeded() }
/** Whether an attempt may start now, leaving the counters as they were. */
const allowed = async (guard: LoginGuard, account: string, client: string) => { await (await guard.reserve(account, client)).release() }

t.test('in memory, one client against one account: 10 failures in 15 minutes, reset by a success', async (t) => {
  let time = 1_000_000
  const guard = memoryLoginGuard(defaults, () => time)
  for (let i = 0; i < 9; i++) await fail(guard, 'ada', '10.0.0.1')
  await t.resolves(allowed(guard, 'ada', '10.0.0.1'), '9 failures: still allowed')
  await succeed(guard, 'ada', '10.0.0.1')
  for (let i = 0; i < 9; i++) await fail(guard, 'ada', '10.0.0.1')
  await t.resolves(allowed(guard, 'ada', '10.0.0.1'), 'the success reset the count')
  await fail(guard, 'ada', '10.0.0.1')
  await t.rejects(guard.reserve('ada', '10.0.0.1'), { statusCode: 429, code: 'throttled', headers: { 'retry-after': String(15 * 60) } })
  await t.resolves(allowed(guard, 'ada', '10.0.0.2'), 'the same account from another client')
  await t.resolves(allowed(guard, 'grace', '10.0.0.1'), 'another account from the same client')
  time += 5 * minute
  await t.rejects(guard.reserve('ada', '10.0.0.1'), { code: 'throttled', headers: { 'retry-after': String(10 * 60) } }, 'Retry-After counts down')
  time += 10 * minute
  await t.resolves(allowed(guard, 'ada', '10.0.0.1'), 'allowed again once the window is over')
  await fail(guard, 'ada', '10.0.0.1')
  await t.resolves(allowed(guard, 'ada', '10.0.0.1'), 'a new window starts from one')
})

t.test('in memory, one account from every client: 100 failures an hour, then doubling waits, never a lockout', async (t) => {
  let time = 1_000_000
  const guard = memoryLoginGuard(defaults, () => time)
  for (let i = 0; i < 99; i++) await fail(guard, 'ada', `10.0.${i}.1`)
  await t.resolves(allowed(guard, 'ada', '192.0.2.1'))
  const waits: number[] = []
  for (let i = 0; i < 12; i++) {
    await fail(guard, 'ada', `192.0.3.${i}`)
    await guard.reserve('ada', '192.0.2.2').catch((error: unknown) => waits.push(retryAfter(error)))
    time += waits.at(-1)! * 1000
    await t.resolves(allowed(guard, 'ada', '192.0.2.2'), 'allowed again after the wait')
  }
  t.same(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900], 'doubling, up to 15 minutes')
  time += 60 * minute
  await fail(guard, 'ada', '192.0.2.3')
  await t.resolves(allowed(guard, 'ada', '192.0.2.4'), 'a new hour starts from nothing')
})

t.test('in Redis, the same counters, shared by every guard on it, each key expiring with its window', async (t) => {
  const { redis, prefix } = testRedis(t)
  const limits: Limits = { ...defaults, loginFailuresPerClient: { max: 3, window: 20_000 }, loginFailuresPerAccount: { max: 8, window: 60_000 } }
  // Two guards on one Redis: two instances of the service.
  const [one, two] = [redisLoginGuard(redis, limits, prefix), redisLoginGuard(redis, limits, prefix)] as [LoginGuard, LoginGuard]

  await fail(one, 'ada', '10.0.0.1')
  await fail(two, 'ada', '10.0.0.1')
  await t.resolves(allowed(one, 'ada', '10.0.0.1'), '2 failures: still allowed')
  await succeed(one, 'ada', '10.0.0.1')
  for (const guard of [one, two, one]) await fail(guard, 'ada', '10.0.0.1')
  await t.rejects(two.reserve('ada', '10.0.0.1'), { statusCode: 429, code: 'throttled', headers: { 'retry-after': '20' } },
    'failures counted on either instance add up; the success on one reset the count for both')
  await t.resolves(allowed(one, 'ada', '10.0.0.2'), 'the same account from another client')
  await t.resolves(allowed(one, 'grace', '10.0.0.1'), 'another account from the same client')
  const pairTtl = await redis.pttl(loginGuardKeys(prefix, 'ada', '10.0.0.1').pair)
  t.ok(pairTtl > 15_000 && pairTtl <= 20_000, 'the pair\'s counter expires with its window')

  // 5 failures so far (the success cleared the pair, not the account): the 8th and each after it block.
  const { block, count } = loginGuardKeys(prefix, 'ada', '')
  const waits: number[] = []
  for (let i = 0; i < 7; i++) {
    // As if the last wait were over.
    await redis.del(block)
    await fail(two, 'ada', `10.0.1.${i}`)
    waits.push(await redis.pttl(block))
  }
  t.same(waits.splice(0, 2), [-2, -2], 'no block before the 8th failure')
  t.ok(waits.every((wait, i) => wait > [1000, 2000, 4000, 8000, 16000][i]! - 500 && wait <= [1000, 2000, 4000, 8000, 16000][i]!),
    `waits double from 1 s: ${waits.join(', ')} ms`)
  await t.rejects(one.reserve('ada', '10.0.9.9'), { code: 'throttled', headers: { 'retry-after': '16' } }, 'from any client')
  const accountTtl = await redis.pttl(count)
  t.ok(accountTtl > 55_000 && accountTtl <= 60_000, 'the account\'s counter expires with its hour')
})

t.test('in Redis, waits stop doubling at 15 minutes', async (t) => {
  const { redis, prefix } = testRedis(t)
  const guard = redisLoginGuard(redis, { ...defaults, loginFailuresPerAccount: { max: 1, window: 60 * minute } }, prefix)
  const { block } = loginGuardKeys(prefix, 'ada', '')
  for (let i = 0; i < 12; i++) {
    await redis.del(block)
    await fail(guard, 'ada', `10.0.0.${i}`)
  }
  t.ok(await redis.pttl(block) > 15 * minute - 1000)
  await t.rejects(guard.reserve('ada', '10.0.1.1'), { code: 'throttled', headers: { 'retry-after': '900' } })
})

t.test('names that look like keys are only names, on both stores: nobody locks out another account', async (t) => {
  const { redis, prefix } = testRedis(t)
  const limits: Limits = { ...defaults, loginFailuresPerClient: { max: 2, window: 60_000 }, loginFailuresPerAccount: { max: 2, window: 60_000 } }
  for (const [store, guard] of [['memory', memoryLoginGuard(limits)], ['Redis', redisLoginGuard(redis, limits, prefix)]] as const) {
    // Names an attacker might pick to land on the victim's keys, each failed twice.
    for (const name of ['victim:block', 'victim:wait', 'victim:count', 'count:victim', 'block:victim', '10.0.0.1/victim', '10.0.0.1:victim', 'pair:10.0.0.1:victim']) {
      await fail(guard, name, '192.0.2.66')
      await fail(guard, name, '192.0.2.66')
    }
    await t.resolves(allowed(guard, 'victim', '10.0.0.1'), `${store}: the victim is not throttled`)
    await t.resolves(allowed(guard, 'victim', '192.0.2.66'), `${store}: not even from the attacker's address`)
    await t.rejects(guard.reserve('victim:block', '192.0.2.66'), { code: 'throttled' }, `${store}: the names themselves are counted`)
  }
})

t.test('parallel attempts, on both stores: each is counted as it starts, and given back unless it failed', async (t) => {
  const { redis, prefix } = testRedis(t)
  const stores = (limits: Limits) => [['memory', memoryLoginGuard(limits)], ['Redis', redisLoginGuard(redis, limits, prefix)]] as const
  const parallel = async (reserve: (i: number) => Promise<LoginAttempt>) => {
    const settled = await Promise.allSettled(Array.from({ length: 30 }, (_, i) => reserve(i)))
    return {
      attempts: settled.flatMap((result) => result.status === 'fulfilled' ? [result.value] : []),
      refusals: settled.flatMap((result) => result.status === 'rejected' ? [(result.reason as { code: string }).code] : [])
    }
  }

  for (const [store, guard] of stores(defaults)) {
    const { attempts, refusals } = await parallel(() => guard.reserve('ada', '10.0.0.1'))
    t.equal(attempts.length, 10, `${store}: one client, 30 at once: the 10 it may make`)
    t.same(refusals, Array(20).fill('throttled'), `${store}: the other 20 throttled`)
    const [first, second] = attempts as [LoginAttempt, LoginAttempt]
    await first.release()
    // Taken again, and held.
    await t.resolves(guard.reserve('ada', '10.0.0.1'), `${store}: a release gives the attempt back`)
    await first.release()
    await first.succeeded()
    await t.rejects(guard.reserve('ada', '10.0.0.1'), { code: 'throttled' }, `${store}: once only`)
    await second.failed()
    await second.release()
    await t.rejects(guard.reserve('ada', '10.0.0.1'), { code: 'throttled' }, `${store}: a failure stays counted`)
  }

  for (const [store, guard] of stores({ ...defaults, loginFailuresPerAccount: { max: 10, window: 60 * minute } })) {
    const { attempts, refusals } = await parallel((i) => guard.reserve('grace', `10.0.1.${i}`))
    t.equal(attempts.length, 10, `${store}: one account from 30 clients at once: the 10 it may have`)
    t.same(refusals, Array(20).fill('throttled'), `${store}: the other 20 wait`)
    for (const attempt of attempts) await attempt.succeeded()
    for (let i = 0; i < 10; i++) await fail(guard, 'grace', `10.0.2.${i}`)
    await t.rejects(guard.reserve('grace', '10.0.3.1'), { code: 'throttled', headers: { 'retry-after': '1' } },
      `${store}: the successes gave their attempts back: the 10th failure waits 1 s, not more`)
  }
})

t.test('an attempt given back after its window ended leaves the next window alone, on both stores', async (t) => {
  const { redis, prefix } = testRedis(t)
  const limits: Limits = { ...defaults, loginFailuresPerClient: { max: 2, window: 300 }, loginFailuresPerAccount: { max: 2, window: 300 } }
  for (const [store, guard] of [['memory', memoryLoginGuard(limits)], ['Redis', redisLoginGuard(redis, limits, prefix)]] as const) {
    const late = await guard.reserve('ada', '10.0.0.1')
    await new Promise((resolve) => setTimeout(resolve, 400))
    const [one, two] = [await guard.reserve('ada', '10.0.0.1'), await guard.reserve('ada', '10.0.0.1')]
    await late.release()
    await late.succeeded()
    await t.rejects(guard.reserve('ada', '10.0.0.1'), { code: 'throttled' }, `${store}: the new window still holds its two attempts`)
    await one.failed()
    await two.release()
    await t.resolves(guard.reserve('ada', '10.0.0.1'), `${store}: and gives back its own`)
  }
})

t.test('window counters, on both stores: past max in a window, the wait until it ends; a new window counts afresh', async (t) => {
  let time = 1_000_000
  const memory = memoryWindowCounter(() => time)
  const limit = { max: 2, window: 60_000 }
  t.same([await memory.hit('a', limit), await memory.hit('a', limit)], [0, 0])
  time += 10_000
  t.equal(await memory.hit('a', limit), 50_000, 'the third waits for the window to end')
  t.equal(await memory.hit('b', limit), 0, 'another key counts alone')
  time += 50_000
  t.equal(await memory.hit('a', limit), 0, 'a new window')

  const { redis, prefix } = testRedis(t)
  const shared = [redisWindowCounter(redis, prefix), redisWindowCounter(redis, prefix)]
  const short = { max: 2, window: 300 }
  t.same([await shared[0]!.hit('a', short), await shared[1]!.hit('a', short)], [0, 0])
  const wait = await shared[0]!.hit('a', short)
  t.ok(wait > 0 && wait <= 300, `shared by both: the third waits ${wait} ms`)
  t.equal(await redis.pttl(`${prefix}window:a`) > 0, true, 'the key expires with its window')
  await new Promise((resolve) => setTimeout(resolve, 350))
  t.equal(await shared[1]!.hit('a', short), 0, 'a new window once the key expired')
})

t.test('in memory, a flood of other names never evicts a counter that is blocking', async (t) => {
  let time = 1_000_000
  const guard = memoryLoginGuard(defaults, () => time)
  for (let i = 0; i < 10; i++) await (await guard.reserve('victim', 'attacker')).failed()
  await t.rejects(guard.reserve('victim', 'attacker'), { code: 'throttled' })
  for (let i = 0; i < entries + 10; i++) await (await guard.reserve(`other-${i}`, `client-${i}`)).failed()
  await t.rejects(guard.reserve('victim', 'attacker'), { code: 'throttled' }, 'still blocked after more other accounts than the map holds')
  time += 15 * 60_000
  for (let i = 0; i < 1100; i++) await (await guard.reserve(`later-${i}`, 'someone')).release()
  const attempt = await guard.reserve('victim', 'attacker')
  await attempt.release()
  t.pass('unblocked once its window ended')
})
