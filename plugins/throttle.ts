import { createHash, randomUUID } from 'node:crypto'
import rateLimit from '@fastify/rate-limit'
import type { onRequestAsyncHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import type { Redis } from 'ioredis'
import { LruMap } from 'toad-cache'
import type { Limits } from '../src/config.js'
import { apiError } from '../src/errors.js'

const second = 1000
const minute = 60 * second

// Past the per-account limit, waits start at 1 second and double up to 15 minutes. Never a lockout:
// the account can always be tried again.
export const accountWaits = { first: second, longest: 15 * minute }

export interface ThrottleOptions {
  /** False only for load tests (RATE_LIMIT=off): then no limit applies. */
  enabled: boolean
  limits: Limits
  /** Prefix of every Redis key, when counters live in Redis. */
  redisKeyPrefix: string
}

/**
 * Failed logins per account, matched on its normalised name or email, so case variants count together.
 * An attempt counts as a failure from the moment it is reserved, so that parallel attempts cannot all pass
 * before any of them is counted; it is given back once it turns out not to be one.
 */
export interface LoginGuard {
  /** Rejects with 429 while this account may not be tried from this client, or from anywhere. */
  reserve: (account: string, client: string) => Promise<LoginAttempt>
}

/** The end of a reserved attempt. Only the first call counts, so `release` can safely follow the others. */
export interface LoginAttempt {
  /** Keeps the failure counted. */
  failed: () => Promise<void>
  /** Gives the attempt back and clears the client's failures for this account. */
  succeeded: () => Promise<void>
  /** Gives the attempt back: the request failed for another reason, such as a busy hasher. */
  release: () => Promise<void>
}

/** onRequest hooks limiting each client (by IP) on one kind of route; each keeps counters of its own. */
export interface Throttle {
  register: onRequestAsyncHookHandler
  login: onRequestAsyncHookHandler
  refresh: onRequestAsyncHookHandler
  failedLogins: LoginGuard
}

const throttled = (waitMs: number) => {
  const seconds = Math.ceil(waitMs / 1000)
  return apiError(429, 'throttled', `Request was throttled. Expected available in ${seconds} seconds.`, { headers: { 'retry-after': String(seconds) } })
}

/**
 * The wait before the next attempt, once an account has `failures` at or past its limit of `max`. It follows
 * from the count alone, so an attempt given back takes its doubling back with it.
 */
const accountWait = (failures: number, max: number) => Math.min(accountWaits.first * 2 ** (failures - max), accountWaits.longest)

/** An attempt's ends, of which only the first counts. */
function endedOnce (steps: { succeeded: () => Promise<void>, release: () => Promise<void> }): LoginAttempt {
  let open = true
  const end = (step: () => Promise<void>) => async () => {
    if (!open) return
    open = false
    await step()
  }
  return { failed: end(async () => {}), succeeded: end(steps.succeeded), release: end(steps.release) }
}

/** Counters of a fixed window each, kept in this process: bounded, so a flood of accounts evicts the oldest. */
export function memoryLoginGuard (limits: Limits, now: () => number = Date.now): LoginGuard {
  const { loginFailuresPerClient: perClient, loginFailuresPerAccount: perAccount } = limits
  const pairs = new LruMap<{ count: number, windowEnds: number }>(100_000)
  const accounts = new LruMap<{ count: number, windowEnds: number, blockedUntil: number }>(100_000)
  return {
    async reserve (account, client) {
      const time = now()
      const pairKey = `${client}/${account}`
      let pair = pairs.get(pairKey)
      if (pair === undefined || pair.windowEnds <= time) pair = { count: 0, windowEnds: time + perClient.window }
      if (pair.count >= perClient.max) throw throttled(pair.windowEnds - time)
      let whole = accounts.get(account)
      if (whole === undefined || whole.windowEnds <= time) whole = { count: 0, windowEnds: time + perAccount.window, blockedUntil: 0 }
      if (whole.blockedUntil > time) throw throttled(whole.blockedUntil - time)
      pairs.set(pairKey, pair)
      accounts.set(account, whole)
      pair.count++
      whole.count++
      // Past the account's limit the wait starts now, so that parallel attempts from other clients wait too.
      const blockedUntil = whole.count >= perAccount.max ? time + accountWait(whole.count, perAccount.max) : 0
      if (blockedUntil > 0) whole.blockedUntil = blockedUntil
      // Counters are held, not looked up again: one whose window ended since is no longer in the map.
      const giveBack = () => {
        whole.count--
        if (whole.blockedUntil === blockedUntil) whole.blockedUntil = 0
      }
      return endedOnce({
        succeeded: async () => { pairs.delete(pairKey); giveBack() },
        release: async () => { pair.count--; giveBack() }
      })
    }
  }
}

// The same counters in Redis, one script per step so that instances racing on one account stay exact.
// KEYS: the pair's count, the account's count, the account's block, whose value names the attempt that set it.
// Answers { milliseconds to wait } when refused, else { 0, when the pair's window ends, when the account's ends }:
// a counter's window is known by the moment it expires, so that an attempt is only ever given back to its own.
const reserveScript = `
local pair = tonumber(redis.call('GET', KEYS[1]))
if pair ~= nil and pair >= tonumber(ARGV[1]) then return { math.max(redis.call('PTTL', KEYS[1]), 1) } end
local blocked = redis.call('PTTL', KEYS[3])
if blocked > 0 then return { blocked } end
if redis.call('INCR', KEYS[1]) == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
local count = redis.call('INCR', KEYS[2])
if count == 1 then redis.call('PEXPIRE', KEYS[2], ARGV[4]) end
local max = tonumber(ARGV[3])
if count >= max then
  local wait = math.min(tonumber(ARGV[5]) * 2 ^ (count - max), tonumber(ARGV[6]))
  redis.call('SET', KEYS[3], ARGV[7], 'PX', wait)
end
local time = redis.call('TIME')
local now = time[1] * 1000 + math.floor(time[2] / 1000)
return { 0, now + redis.call('PTTL', KEYS[1]), now + redis.call('PTTL', KEYS[2]) }`
// The same KEYS. ARGV: 'succeeded' or 'release', the attempt's id, and the two windows' ends it was counted in.
// A counter whose window ended since stays gone, and a newer window's counter is left alone.
const giveBackScript = `
local time = redis.call('TIME')
local now = time[1] * 1000 + math.floor(time[2] / 1000)
local function counted (key, ends)
  local ttl = redis.call('PTTL', key)
  return ttl > 0 and math.abs(now + ttl - tonumber(ends)) <= 5
end
if ARGV[1] == 'succeeded' then redis.call('DEL', KEYS[1])
elseif counted(KEYS[1], ARGV[3]) then redis.call('DECR', KEYS[1]) end
if counted(KEYS[2], ARGV[4]) then redis.call('DECR', KEYS[2]) end
if redis.call('GET', KEYS[3]) == ARGV[2] then redis.call('DEL', KEYS[3]) end`

type GuardCommands = Redis & {
  loginGuardReserve: (...args: Array<string | number>) => Promise<[number, number?, number?]>
  loginGuardGiveBack: (...args: Array<string | number>) => Promise<void>
}

/**
 * The Redis keys of one account and client. The account is whatever name a client typed, so it is hashed:
 * a name such as `victim:block` must never become another account's key.
 */
export function loginGuardKeys (prefix: string, account: string, client: string) {
  const id = createHash('sha256').update(account).digest('base64url')
  return {
    pair: `${prefix}login-failures:pair:${client}:${id}`,
    count: `${prefix}login-failures:count:${id}`,
    block: `${prefix}login-failures:block:${id}`
  }
}

/** Counters shared by every instance through Redis; each key expires with its window. */
export function redisLoginGuard (redis: Redis, limits: Limits, prefix: string): LoginGuard {
  const { loginFailuresPerClient: perClient, loginFailuresPerAccount: perAccount } = limits
  const commands = redis as GuardCommands
  commands.defineCommand('loginGuardReserve', { numberOfKeys: 3, lua: reserveScript })
  commands.defineCommand('loginGuardGiveBack', { numberOfKeys: 3, lua: giveBackScript })
  return {
    async reserve (account, client) {
      const { pair, count, block } = loginGuardKeys(prefix, account, client)
      const id = randomUUID()
      const [waitMs, pairEnds, countEnds] = await commands.loginGuardReserve(pair, count, block, perClient.max, perClient.window,
        perAccount.max, perAccount.window, accountWaits.first, accountWaits.longest, id)
      if (waitMs > 0) throw throttled(waitMs)
      const giveBack = (outcome: 'succeeded' | 'release') => commands.loginGuardGiveBack(pair, count, block, outcome, id, pairEnds!, countEnds!)
      return endedOnce({
        succeeded: async () => { await giveBack('succeeded') },
        release: async () => { await giveBack('release') }
      })
    }
  }
}

const unguarded: LoginAttempt = { async failed () {}, async succeeded () {}, async release () {} }

/** A guard whose store may fail: a Redis outage lets logins through (logged), rather than refusing everyone. */
function failingOpen (guard: LoginGuard, log: (error: unknown) => void): LoginGuard {
  const logged = (step: () => Promise<void>) => async () => { await step().catch(log) }
  return {
    async reserve (account, client) {
      try {
        const attempt = await guard.reserve(account, client)
        return { failed: attempt.failed, succeeded: logged(attempt.succeeded), release: logged(attempt.release) }
      } catch (error) {
        if ((error as { code?: string }).code === 'throttled') throw error
        log(error)
        return unguarded
      }
    }
  }
}

const noGuard: LoginGuard = { reserve: async () => unguarded }

declare module 'fastify' {
  interface FastifyInstance {
    throttle: Throttle
  }
}

export default fp<ThrottleOptions>(async (fastify, { enabled, limits, redisKeyPrefix }) => {
  // @fastify/redis, registered by the app when REDIS_URL is set.
  const redis = fastify.hasDecorator('redis') ? fastify.redis : undefined
  const storeFailed = (error: unknown) => { fastify.log.error({ err: error }, 'throttle store failed: request let through') }
  await fastify.register(rateLimit, {
    global: false,
    redis,
    nameSpace: `${redisKeyPrefix}rate-limit:`,
    // A Redis outage lets requests through rather than refusing every client.
    skipOnError: true,
    // DRF's wording; Retry-After and the X-RateLimit-* headers are set by the plugin.
    errorResponseBuilder: (request, context) =>
      apiError(429, 'throttled', `Request was throttled. Expected available in ${Math.ceil(context.ttl / 1000)} seconds.`),
    onExceeded: (request, key) => {
      // The key is `<limit>:<client>`, from the keyGenerator below.
      const limit = key.slice(0, key.indexOf(':'))
      request.log.warn({ client: request.ip, route: request.routeOptions.url, limit }, 'throttled')
      fastify.authMetrics.throttled.inc({ limit })
      if (limit === 'login') fastify.authMetrics.logins.inc({ outcome: 'throttled' })
    }
  })
  // Each hook has a key of its own: in Redis, hooks made by fastify.rateLimit() would otherwise share one.
  const limit = (name: keyof Limits): onRequestAsyncHookHandler => enabled
    ? fastify.rateLimit({ max: limits[name].max, timeWindow: limits[name].window, keyGenerator: (request) => `${name}:${request.ip}` })
    : async () => {}
  const guard = redis === undefined ? memoryLoginGuard(limits) : failingOpen(redisLoginGuard(redis, limits, redisKeyPrefix), storeFailed)
  fastify.decorate('throttle', {
    register: limit('register'),
    login: limit('login'),
    refresh: limit('refresh'),
    failedLogins: enabled ? guard : noGuard
  } satisfies Throttle)
}, { name: 'throttle', dependencies: ['metrics'] })
