import { createHash } from 'node:crypto'
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

/** Failed logins per account, matched on its normalised name or email, so case variants count together. */
export interface LoginGuard {
  /** Rejects with 429 while this account may not be tried from this client, or from anywhere. */
  check: (account: string, client: string) => Promise<void>
  failed: (account: string, client: string) => Promise<void>
  succeeded: (account: string, client: string) => Promise<void>
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

/** Counters of a fixed window each, kept in this process: bounded, so a flood of accounts evicts the oldest. */
export function memoryLoginGuard (limits: Limits, now: () => number = Date.now): LoginGuard {
  const { loginFailuresPerClient: perClient, loginFailuresPerAccount: perAccount } = limits
  const pairs = new LruMap<{ count: number, windowEnds: number }>(100_000)
  const accounts = new LruMap<{ count: number, windowEnds: number, wait: number, blockedUntil: number }>(100_000)
  const pairKey = (account: string, client: string) => `${client}/${account}`
  return {
    async check (account, client) {
      const time = now()
      const pair = pairs.get(pairKey(account, client))
      if (pair !== undefined && pair.windowEnds > time && pair.count >= perClient.max) throw throttled(pair.windowEnds - time)
      const whole = accounts.get(account)
      if (whole !== undefined && whole.blockedUntil > time) throw throttled(whole.blockedUntil - time)
    },
    async failed (account, client) {
      const time = now()
      const key = pairKey(account, client)
      const pair = pairs.get(key)
      if (pair === undefined || pair.windowEnds <= time) pairs.set(key, { count: 1, windowEnds: time + perClient.window })
      else pair.count++
      let whole = accounts.get(account)
      if (whole === undefined || whole.windowEnds <= time) {
        whole = { count: 0, windowEnds: time + perAccount.window, wait: 0, blockedUntil: 0 }
        accounts.set(account, whole)
      }
      whole.count++
      if (whole.count >= perAccount.max) {
        whole.wait = Math.min(whole.wait === 0 ? accountWaits.first : 2 * whole.wait, accountWaits.longest)
        whole.blockedUntil = time + whole.wait
      }
    },
    async succeeded (account, client) {
      pairs.delete(pairKey(account, client))
    }
  }
}

// The same counters in Redis, one script per step so that instances racing on one account stay exact.
// KEYS: the pair's count, the account's count, the account's current wait, the account's block.
const failedScript = `
local pair = redis.call('INCR', KEYS[1])
if pair == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local count = redis.call('INCR', KEYS[2])
if count == 1 then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
if count >= tonumber(ARGV[3]) then
  local wait = tonumber(redis.call('GET', KEYS[3]))
  if wait == nil then wait = tonumber(ARGV[4]) else wait = math.min(2 * wait, tonumber(ARGV[5])) end
  redis.call('SET', KEYS[3], wait, 'PX', redis.call('PTTL', KEYS[2]))
  redis.call('SET', KEYS[4], 1, 'PX', wait)
end
return count`
// Answers the milliseconds to wait, 0 when allowed. KEYS: the pair's count, the account's block.
const checkScript = `
local pair = tonumber(redis.call('GET', KEYS[1]))
if pair ~= nil and pair >= tonumber(ARGV[1]) then return redis.call('PTTL', KEYS[1]) end
local blocked = redis.call('PTTL', KEYS[2])
if blocked > 0 then return blocked end
return 0`

type GuardCommands = Redis & {
  loginGuardFailed: (...args: Array<string | number>) => Promise<number>
  loginGuardCheck: (...args: Array<string | number>) => Promise<number>
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
    wait: `${prefix}login-failures:wait:${id}`,
    block: `${prefix}login-failures:block:${id}`
  }
}

/** Counters shared by every instance through Redis; each key expires with its window. */
export function redisLoginGuard (redis: Redis, limits: Limits, prefix: string): LoginGuard {
  const { loginFailuresPerClient: perClient, loginFailuresPerAccount: perAccount } = limits
  const commands = redis as GuardCommands
  commands.defineCommand('loginGuardFailed', { numberOfKeys: 4, lua: failedScript })
  commands.defineCommand('loginGuardCheck', { numberOfKeys: 2, lua: checkScript })
  return {
    async check (account, client) {
      const keys = loginGuardKeys(prefix, account, client)
      const waitMs = await commands.loginGuardCheck(keys.pair, keys.block, perClient.max)
      if (waitMs > 0) throw throttled(waitMs)
    },
    async failed (account, client) {
      const keys = loginGuardKeys(prefix, account, client)
      await commands.loginGuardFailed(keys.pair, keys.count, keys.wait, keys.block,
        perClient.window, perAccount.window, perAccount.max, accountWaits.first, accountWaits.longest)
    },
    async succeeded (account, client) {
      await redis.del(loginGuardKeys(prefix, account, client).pair)
    }
  }
}

/** A guard whose store may fail: a Redis outage lets logins through (logged), rather than refusing everyone. */
function failingOpen (guard: LoginGuard, log: (error: unknown) => void): LoginGuard {
  const open = (step: keyof LoginGuard) => async (account: string, client: string) => {
    try {
      await guard[step](account, client)
    } catch (error) {
      if ((error as { code?: string }).code === 'throttled') throw error
      log(error)
    }
  }
  return { check: open('check'), failed: open('failed'), succeeded: open('succeeded') }
}

const noGuard: LoginGuard = { async check () {}, async failed () {}, async succeeded () {} }

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
