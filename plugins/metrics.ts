import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction, onResponseHookHandler, RouteOptions } from 'fastify'
import metricsModule from 'fastify-metrics'
import fp from 'fastify-plugin'
import { Counter, Gauge, register, Registry, type Metric } from 'prom-client'
import { askPrimaryForMetrics, type PrimaryChannel } from '../src/cluster-metrics.js'
import { errorBody, messages, notAuthenticated } from '../src/errors.js'

// A CommonJS module compiled from ESM: under NodeNext its default export sits one level down.
const fastifyMetrics = metricsModule.default

export interface MetricsOptions {
  /** When set, GET /metrics needs it as a Bearer token. */
  metricsToken?: string
  /** In a worker of WEB_CONCURRENCY, the channel to its primary: GET /metrics then answers every worker's metrics. */
  primary?: PrimaryChannel
}

/** The auth events counted, each by outcome. */
export interface AuthMetrics {
  /** success, bad_credentials, disabled, email_unverified or throttled. */
  logins: Counter<'outcome'>
  /** rotated, reused, expired, revoked or invalid. */
  refreshes: Counter<'outcome'>
  registrations: Counter
  /** Requests refused with 429, by the limit that refused them. */
  throttled: Counter<'limit'>
  /** Mails by kind and outcome: sent, retried or failed. */
  mails: Counter<'kind' | 'outcome'>
  /** Audit events written, or dropped with the queue full. */
  auditEvents: Counter<'outcome'>
  /** Webhook deliveries by event type and outcome: sent, retried or failed. */
  webhooks: Counter<'type' | 'outcome'>
}

declare module 'fastify' {
  interface FastifyInstance {
    authMetrics: AuthMetrics
  }
}

interface Series {
  labels: { method: string, route: string, status_code: string }
  /** Observations per bucket, not cumulative. */
  counts: number[]
  sum: number
  count: number
}

/**
 * A histogram of seconds by method, route and status, in the shape prom-client's registry serves.
 * prom-client's own Histogram validates and hashes the labels of every observation, which cost the
 * fastest route a tenth of its throughput (npm run bench).
 */
export function requestDurations (buckets: number[]) {
  const series = new Map<string, Map<number, Series>>()
  const name = 'http_request_duration_seconds'
  return {
    observe (method: string, route: string, statusCode: number, seconds: number) {
      const key = `${method} ${route}`
      let byStatus = series.get(key)
      if (byStatus === undefined) series.set(key, byStatus = new Map())
      let one = byStatus.get(statusCode)
      if (one === undefined) {
        one = { labels: { method, route, status_code: String(statusCode) }, counts: buckets.map(() => 0), sum: 0, count: 0 }
        byStatus.set(statusCode, one)
      }
      let bucket = 0
      while (bucket < buckets.length && seconds > buckets[bucket]!) bucket++
      if (bucket < buckets.length) one.counts[bucket]!++
      one.sum += seconds
      one.count++
    },
    metric: {
      name,
      help: 'request duration in seconds',
      type: 'histogram',
      aggregator: 'sum',
      get () {
        const values = [...series.values()].flatMap((byStatus) => [...byStatus.values()]).flatMap(({ labels, counts, sum, count }) => {
          let cumulative = 0
          const cumulated = counts.map((bucketCount) => { cumulative += bucketCount; return cumulative })
          return [
            ...buckets.map((le, index) => ({ metricName: `${name}_bucket`, labels: { le, ...labels }, value: cumulated[index]! })),
            { metricName: `${name}_bucket`, labels: { le: '+Inf', ...labels }, value: count },
            { metricName: `${name}_sum`, labels, value: sum },
            { metricName: `${name}_count`, labels, value: count }
          ]
        })
        return { name, help: this.help, type: this.type, aggregator: this.aggregator, values }
      },
      reset () { series.clear() }
    }
  }
}

/**
 * Prometheus metrics at GET /metrics: request durations per route and status and the process metrics
 * (fastify-metrics), plus the auth events. Each app has a registry of its own, so that several apps in
 * one process (the tests) never share counters. In a worker of WEB_CONCURRENCY, the metrics of every
 * worker, added up by the primary.
 */
export default fp<MetricsOptions>(async (fastify, { metricsToken, primary }) => {
  const registry = new Registry()
  // Digests of equal length are compared, so that the time taken tells nothing, not even the token's length.
  const digest = (text: string) => createHash('sha256').update(text).digest()
  const expected = metricsToken === undefined ? undefined : digest(`Bearer ${metricsToken}`)
  const checkToken = (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => {
    if (expected === undefined || timingSafeEqual(digest(request.headers.authorization ?? ''), expected)) return done()
    done(notAuthenticated(messages.metricsToken, 'metrics'))
  }

  const endpoint = { url: '/metrics', method: 'GET', logLevel: 'warn', schema: { hide: true }, onRequest: checkToken } as const
  await fastify.register(fastifyMetrics, {
    // fastify-metrics supplies the handler, which serves its registries merged: prom-client's global one and ours.
    endpoint: primary === undefined ? endpoint as RouteOptions : null,
    defaultMetrics: { enabled: true, register: registry },
    // Its per-route timers cost /auth/me/ a third of its throughput (npm run bench): see below.
    routeMetrics: { enabled: false }
  })
  if (primary !== undefined) {
    // The same registries, lent to the primary, which asks every worker for them and adds them up.
    const everyWorker = askPrimaryForMetrics(primary, [register, registry])
    fastify.route({
      ...endpoint,
      handler: async (request, reply) => {
        let metrics: string
        try {
          metrics = await everyWorker()
        } catch (error) {
          request.log.warn({ err: error }, 'metrics not gathered from every worker')
          // Answered here: this route is added before the app sets its error handler.
          return reply.code(503).send(errorBody(503, 'service_unavailable', messages.metricsUnavailable))
        }
        return reply.type(registry.contentType).send(metrics)
      }
    })
  }

  // Request durations per method, route and status. Each route gets an onResponse hook of its own that
  // knows its path, and observes Fastify's own elapsed time: a map lookup and a few additions per request.
  // Routes added from here on: /metrics, added above, is not timed, as scrapes are not requests to the service.
  const durations = requestDurations([0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5])
  registry.registerMetric(durations.metric as unknown as Metric)
  fastify.addHook('onRoute', (route) => {
    const { url } = route
    const observe: onResponseHookHandler = (request, reply, done) => {
      durations.observe(request.method, url, reply.statusCode, reply.elapsedTime / 1000)
      done()
    }
    route.onResponse = [...[route.onResponse ?? []].flat(), observe]
  })

  const { passwordHasher, revocations } = fastify
  // Each gauge registers itself and is read only through the registry, at scrape time. Under WEB_CONCURRENCY the
  // primary adds up the workers' gauges (prom-client's default aggregator, 'sum'), except those every worker reads
  // alike, the whole outbox or the revocations each worker holds all of: for them, the largest.
  /* eslint-disable no-new */
  new Gauge({ name: 'auth_revoked_sessions', help: 'Revoked sessions whose access tokens may still be presented, held in memory', aggregator: 'max', registers: [registry], collect () { this.set(revocations.size()) } })
  new Gauge({ name: 'auth_hashing_in_flight', help: 'Argon2 hashes being computed', registers: [registry], collect () { this.set(passwordHasher.load().inFlight) } })
  new Gauge({ name: 'auth_hashing_queued', help: 'Argon2 hashes waiting for a slot', registers: [registry], collect () { this.set(passwordHasher.load().queued) } })
  // The mailer and the webhooks register after this plugin; by the time anyone scrapes, it is there.
  new Gauge({ name: 'auth_mail_queued', help: 'Mails waiting to be sent, retries included', aggregator: 'max', registers: [registry], async collect () { this.set(await fastify.mailer.queued()) } })
  new Gauge({ name: 'auth_audit_queued', help: 'Audit events waiting to be written', registers: [registry], collect () { this.set(fastify.audit.queued()) } })
  new Gauge({ name: 'auth_webhooks_queued', help: 'Webhook deliveries waiting, retries included', aggregator: 'max', registers: [registry], async collect () { this.set(await fastify.webhooks.queued()) } })
  /* eslint-enable no-new */
  fastify.decorate('authMetrics', {
    logins: new Counter({ name: 'auth_logins_total', help: 'Login attempts by outcome', labelNames: ['outcome'], registers: [registry] }),
    refreshes: new Counter({ name: 'auth_refreshes_total', help: 'Refreshes by outcome', labelNames: ['outcome'], registers: [registry] }),
    registrations: new Counter({ name: 'auth_registrations_total', help: 'Users registered', registers: [registry] }),
    throttled: new Counter({ name: 'auth_throttled_total', help: 'Requests refused with 429, by limit', labelNames: ['limit'], registers: [registry] }),
    mails: new Counter({ name: 'auth_mail_total', help: 'Mails by kind and outcome (sent, retried, failed)', labelNames: ['kind', 'outcome'], registers: [registry] }),
    auditEvents: new Counter({ name: 'auth_audit_events_total', help: 'Audit events by outcome (written, dropped)', labelNames: ['outcome'], registers: [registry] }),
    webhooks: new Counter({ name: 'auth_webhooks_total', help: 'Webhook deliveries by event type and outcome (sent, retried, failed)', labelNames: ['type', 'outcome'], registers: [registry] })
  } satisfies AuthMetrics)
}, { name: 'metrics', dependencies: ['password', 'revocations'] })
