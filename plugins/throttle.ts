import rateLimit from '@fastify/rate-limit'
import type { onRequestAsyncHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import { apiError } from '../src/errors.js'

export interface ThrottleOptions {
  /** False only for load tests (RATE_LIMIT=off): then no limit applies. */
  enabled: boolean
}

/** onRequest hooks limiting each client (by IP) on one kind of route; each keeps counters of its own. */
export interface Throttle {
  register: onRequestAsyncHookHandler
  login: onRequestAsyncHookHandler
  refresh: onRequestAsyncHookHandler
}

declare module 'fastify' {
  interface FastifyInstance {
    throttle: Throttle
  }
}

export default fp<ThrottleOptions>(async (fastify, { enabled }) => {
  await fastify.register(rateLimit, {
    global: false,
    // DRF's wording; Retry-After and the X-RateLimit-* headers are set by the plugin.
    errorResponseBuilder: (request, context) =>
      apiError(429, 'throttled', `Request was throttled. Expected available in ${Math.ceil(context.ttl / 1000)} seconds.`),
    onExceeded: (request, key) => { request.log.warn({ client: key, route: request.routeOptions.url }, 'throttled') }
  })
  const limit = (max: number, timeWindow: string): onRequestAsyncHookHandler =>
    enabled ? fastify.rateLimit({ max, timeWindow }) : async () => {}
  fastify.decorate('throttle', {
    register: limit(30, '10 minutes'),
    login: limit(60, '1 minute'),
    refresh: limit(120, '1 minute')
  } satisfies Throttle)
}, { name: 'throttle' })
