import { timingSafeEqual } from 'node:crypto'
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction, RouteOptions } from 'fastify'
import metricsModule from 'fastify-metrics'
import fp from 'fastify-plugin'
import { Counter, Gauge, Histogram, Registry } from 'prom-client'
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
    // Its per-route timers cost /auth/me/ a third of its throughput (npm run bench): see below.
    routeMetrics: { enabled: false }
  })

  // Request durations per route and status, from the elapsed time Fastify keeps anyway, into a child of
  // the histogram cached per label set: a map lookup and an observe per request.
  const durations = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'request duration in seconds',
    labelNames: ['method', 'route', 'status_code'],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry]
  })
  const byLabels = new Map<string, Histogram.Internal<'method' | 'route' | 'status_code'>>()
  fastify.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url
    // Unknown paths would make a label each; scrapes are not requests to the service.
    if (route === undefined || route === '/metrics') return done()
    const key = `${request.method} ${route} ${reply.statusCode}`
    let observe = byLabels.get(key)
    if (observe === undefined) {
      observe = durations.labels(request.method, route, String(reply.statusCode))
      byLabels.set(key, observe)
    }
    observe.observe(reply.elapsedTime / 1000)
    done()
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
