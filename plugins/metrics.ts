import { timingSafeEqual } from 'node:crypto'
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction, RouteOptions } from 'fastify'
import metricsModule from 'fastify-metrics'
import fp from 'fastify-plugin'
import { Counter, Gauge, Registry } from 'prom-client'
import { apiError } from '../src/errors.js'

// A CommonJS module compiled from ESM: under NodeNext its default export sits one level down.
const fastifyMetrics = metricsModule.default

export interface MetricsOptions {
  /** When set, GET /metrics needs it as a Bearer token. */
  metricsToken?: string
}

/** The auth events counted, each by outcome. */
export interface AuthMetrics {
  /** success, bad_credentials or throttled. */
  logins: Counter<'outcome'>
  /** rotated, reused, expired, revoked or invalid. */
  refreshes: Counter<'outcome'>
  registrations: Counter
  /** Requests refused with 429, by the limit that refused them. */
  throttled: Counter<'limit'>
}

declare module 'fastify' {
  interface FastifyInstance {
    authMetrics: AuthMetrics
  }
}

/**
 * Prometheus metrics at GET /metrics: request durations per route and status and the process metrics
 * (fastify-metrics), plus the auth events. Each app has a registry of its own, so that several apps in
 * one process (the tests) never share counters.
 */
export default fp<MetricsOptions>(async (fastify, { metricsToken }) => {
  const registry = new Registry()
  const expected = metricsToken === undefined ? undefined : Buffer.from(`Bearer ${metricsToken}`)
  const checkToken = (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => {
    const given = Buffer.from(request.headers.authorization ?? '')
    if (expected === undefined || (given.length === expected.length && timingSafeEqual(given, expected))) return done()
    done(apiError(401, 'not_authenticated', 'Metrics need the METRICS_TOKEN as a Bearer token.', { headers: { 'www-authenticate': 'Bearer realm="metrics"' } }))
  }

  await fastify.register(fastifyMetrics, {
    // fastify-metrics supplies the handler.
    endpoint: { url: '/metrics', method: 'GET', logLevel: 'warn', schema: { hide: true }, onRequest: checkToken } as RouteOptions,
    defaultMetrics: { enabled: true, register: registry },
    routeMetrics: {
      enabled: { histogram: true, summary: false },
      // Every metric in this app's registry: fastify-metrics creates the summary even when it is off.
      overrides: {
        histogram: { registers: [registry], buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5] },
        summary: { registers: [registry] }
      },
      routeBlacklist: ['/metrics']
    }
  })

  const { password, revocations } = fastify
  new Gauge({ name: 'auth_revoked_sessions', help: 'Revoked sessions whose access tokens may still be presented, held in memory', registers: [registry], collect () { this.set(revocations.size()) } })
  new Gauge({ name: 'auth_hashing_in_flight', help: 'Argon2 hashes being computed', registers: [registry], collect () { this.set(password.load().inFlight) } })
  new Gauge({ name: 'auth_hashing_queued', help: 'Argon2 hashes waiting for a slot', registers: [registry], collect () { this.set(password.load().queued) } })
  fastify.decorate('authMetrics', {
    logins: new Counter({ name: 'auth_logins_total', help: 'Login attempts by outcome', labelNames: ['outcome'], registers: [registry] }),
    refreshes: new Counter({ name: 'auth_refreshes_total', help: 'Refreshes by outcome', labelNames: ['outcome'], registers: [registry] }),
    registrations: new Counter({ name: 'auth_registrations_total', help: 'Users registered', registers: [registry] }),
    throttled: new Counter({ name: 'auth_throttled_total', help: 'Requests refused with 429, by limit', labelNames: ['limit'], registers: [registry] })
  } satisfies AuthMetrics)
}, { name: 'metrics', dependencies: ['password', 'revocations'] })
