import { compile } from '@fastify/proxy-addr'
import rateLimit from '@fastify/rate-limit'
import type { FastifyRequest, onRequestAsyncHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import { clientKey } from '../src/client-address.js'
import type { Limits } from '../src/config.js'
import { apiError, messages, throttledError } from '../src/errors.js'
import { failingOpen, noGuard, type LoginGuard } from './throttle/login-guard.js'
import { memoryLoginGuard } from './throttle/memory-store.js'
import { redisLoginGuard } from './throttle/redis-store.js'
import { memoryWindowCounter, redisWindowCounter } from './throttle/window-counter.js'

export interface ThrottleOptions {
  /** False only for load tests (RATE_LIMIT=off): then no limit applies. */
  enabled: boolean
  limits: Limits
  /** Prefix of every Redis key, when counters live in Redis. */
  redisKeyPrefix: string
  /** Addresses or CIDR ranges that skip the per-client request limits (not the failed-login counters). */
  exempt?: string[]
}

/** Hooks limiting each client (its IPv4 address or IPv6 /64, see clientKey) on one kind of route; each keeps counters of its own. */
export interface Throttle {
  register: onRequestAsyncHookHandler
  login: onRequestAsyncHookHandler
  refresh: onRequestAsyncHookHandler
  passwordChange: onRequestAsyncHookHandler
  verify: onRequestAsyncHookHandler
  introspect: onRequestAsyncHookHandler
  /** Requests that may send a mail: RATE_LIMIT_MAIL. */
  mail: onRequestAsyncHookHandler
  /** Uses of a mailed token or code, under the login limit: each is a guess when it is wrong. */
  mailConfirm: onRequestAsyncHookHandler
  /** Calls of the admin API: RATE_LIMIT_ADMIN. */
  admin: onRequestAsyncHookHandler
  /** The same limit per authenticated user, whatever the client: a hook for after authentication. */
  passwordChangeByUser: onRequestAsyncHookHandler
  /** RATE_LIMIT_MAIL per authenticated user, whatever the client: a hook for after authentication. */
  mailByUser: onRequestAsyncHookHandler
  /**
   * Failed password checks per account, at login and at a password change alike: one budget. The account
   * is `accountOf(user id)` for a known user, whichever identifier was typed.
   */
  failedLogins: LoginGuard
}

/** The failed-login guard's account of a known user; an unknown one is counted under what was typed. */
export const accountOf = (userId: number) => `user:${userId}`
export const unknownAccount = (typedKey: string) => `name:${typedKey}`

declare module 'fastify' {
  interface FastifyInstance {
    throttle: Throttle
  }
}

export default fp<ThrottleOptions>(async (fastify, { enabled, limits, redisKeyPrefix, exempt = [] }) => {
  // @fastify/redis, registered by the app when REDIS_URL is set.
  const redis = fastify.hasDecorator('redis') ? fastify.redis : undefined
  const storeFailed = (error: unknown) => { fastify.log.error({ err: error }, 'throttle store failed: request let through') }
  const isExempt = exempt.length === 0 ? () => false : compile(exempt)
  await fastify.register(rateLimit, {
    global: false,
    // A load generator's addresses: the per-client limits would measure themselves, not the service.
    allowList: (request) => isExempt(request.ip, 0),
    redis,
    nameSpace: `${redisKeyPrefix}rate-limit:`,
    // A Redis outage lets requests through rather than refusing every client.
    skipOnError: true,
    // DRF's wording; Retry-After and the X-RateLimit-* headers are set by the plugin.
    errorResponseBuilder: (request, context) =>
      apiError(429, 'throttled', messages.throttled(Math.ceil(context.ttl / 1000))),
    onExceeded: (request, key) => {
      // The key is `<limit>:<client or user>`, from the keyGenerators below.
      const limit = key.slice(0, key.indexOf(':'))
      request.log.warn({ client: request.ip, route: request.routeOptions.url, limit }, 'throttled')
      fastify.authMetrics.throttled.inc({ limit })
      if (limit === 'login') fastify.authMetrics.logins.inc({ outcome: 'throttled' })
    }
  })
  // Each hook has a key of its own: in Redis, hooks made by fastify.rateLimit() would otherwise share one.
  // The key starts with the limit's label, as the metric and the log line name it.
  const limit = (name: keyof Limits, label: string, by: (request: FastifyRequest) => string = (request) => clientKey(request.ip)): onRequestAsyncHookHandler => enabled
    ? fastify.rateLimit({ max: limits[name].max, timeWindow: limits[name].window, keyGenerator: (request) => `${label}:${by(request)}` })
    : async () => {}
  // Limits per authenticated user, in counters of their own: @fastify/rate-limit runs only one limit per request.
  const counters = redis === undefined ? memoryWindowCounter() : redisWindowCounter(redis, redisKeyPrefix)
  const byUser = (name: keyof Limits, label: string): onRequestAsyncHookHandler => enabled
    ? async (request, reply) => {
      const userId = request.user.user_id
      const waitMs = await counters.hit(`${label}:user:${userId}`, limits[name]).catch((error: unknown) => { storeFailed(error); return 0 })
      if (waitMs === 0) return
      request.log.warn({ userId, client: request.ip, route: request.routeOptions.url, limit: label }, 'throttled')
      fastify.authMetrics.throttled.inc({ limit: label })
      throw throttledError(waitMs)
    }
    : async () => {}
  const guard = redis === undefined ? memoryLoginGuard(limits) : failingOpen(redisLoginGuard(redis, limits, redisKeyPrefix), storeFailed)
  fastify.decorate('throttle', {
    register: limit('register', 'register'),
    login: limit('login', 'login'),
    refresh: limit('refresh', 'refresh'),
    passwordChange: limit('passwordChange', 'password_change'),
    verify: limit('verify', 'verify'),
    introspect: limit('verify', 'introspect'),
    mail: limit('mail', 'mail'),
    mailConfirm: limit('login', 'mail_confirm'),
    admin: limit('admin', 'admin'),
    passwordChangeByUser: byUser('passwordChange', 'password_change'),
    mailByUser: byUser('mail', 'mail'),
    failedLogins: enabled ? guard : noGuard
  } satisfies Throttle)
}, { name: 'throttle', dependencies: ['metrics'] })
