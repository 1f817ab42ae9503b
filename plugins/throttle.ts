import rateLimit from '@fastify/rate-limit'
import type { onRequestAsyncHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import type { Limits } from '../src/config.js'
import { apiError, messages } from '../src/errors.js'
import { failingOpen, noGuard, type LoginGuard } from './throttle/login-guard.js'
import { memoryLoginGuard } from './throttle/memory-store.js'
import { redisLoginGuard } from './throttle/redis-store.js'

export interface ThrottleOptions {
  /** False only for load tests (RATE_LIMIT=off): then no limit applies. */
  enabled: boolean
  limits: Limits
  /** Prefix of every Redis key, when counters live in Redis. */
  redisKeyPrefix: string
}

/** onRequest hooks limiting each client (by IP) on one kind of route; each keeps counters of its own. */
export interface Throttle {
  register: onRequestAsyncHookHandler
  login: onRequestAsyncHookHandler
  refresh: onRequestAsyncHookHandler
  failedLogins: LoginGuard
}

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
      apiError(429, 'throttled', messages.throttled(Math.ceil(context.ttl / 1000))),
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
