import rateLimit from '@fastify/rate-limit'
import type { onRequestAsyncHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import { LruMap } from 'toad-cache'
import { apiError } from '../src/errors.js'

export interface ThrottleOptions {
  /** False only for load tests (RATE_LIMIT=off): then no limit applies. */
  enabled: boolean
}

/** Failed logins per account, matched on its normalised name or email, so case variants count together. */
export interface LoginGuard {
  /** Throws 429 while this account may not be tried from this client, or from anywhere. */
  check: (account: string, client: string) => void
  failed: (account: string, client: string) => void
  succeeded: (account: string, client: string) => void
}

/** onRequest hooks limiting each client (by IP) on one kind of route; each keeps counters of its own. */
export interface Throttle {
  register: onRequestAsyncHookHandler
  login: onRequestAsyncHookHandler
  refresh: onRequestAsyncHookHandler
  failedLogins: LoginGuard
}

const minute = 60_000
// One client against one account: 10 failures in 15 minutes, then 429 until the window ends.
const pairFailures = { max: 10, window: 15 * minute }
// One account from everywhere: 100 failures an hour (NIST SP 800-63B), then waits that double with each
// further failure, from 1 second up to 15 minutes. Never a lockout: the account can always be tried again.
const accountFailures = { max: 100, window: 60 * minute, firstWait: 1000, longestWait: 15 * minute }

const throttled = (until: number, now: number) => {
  const seconds = Math.ceil((until - now) / 1000)
  return apiError(429, 'throttled', `Request was throttled. Expected available in ${seconds} seconds.`, { headers: { 'retry-after': String(seconds) } })
}

/** Counters of a fixed window each, kept in memory: bounded, so a flood of accounts evicts the oldest. */
export function loginGuard (now: () => number = Date.now): LoginGuard {
  const pairs = new LruMap<{ count: number, windowEnds: number }>(100_000)
  const accounts = new LruMap<{ count: number, windowEnds: number, wait: number, blockedUntil: number }>(100_000)
  const pairKey = (account: string, client: string) => `${client}\u0000${account}`
  return {
    check (account, client) {
      const time = now()
      const pair = pairs.get(pairKey(account, client))
      if (pair !== undefined && pair.windowEnds > time && pair.count >= pairFailures.max) throw throttled(pair.windowEnds, time)
      const whole = accounts.get(account)
      if (whole !== undefined && whole.blockedUntil > time) throw throttled(whole.blockedUntil, time)
    },
    failed (account, client) {
      const time = now()
      const key = pairKey(account, client)
      const pair = pairs.get(key)
      if (pair === undefined || pair.windowEnds <= time) pairs.set(key, { count: 1, windowEnds: time + pairFailures.window })
      else pair.count++
      let whole = accounts.get(account)
      if (whole === undefined || whole.windowEnds <= time) {
        whole = { count: 0, windowEnds: time + accountFailures.window, wait: 0, blockedUntil: 0 }
        accounts.set(account, whole)
      }
      whole.count++
      if (whole.count >= accountFailures.max) {
        whole.wait = Math.min(whole.wait === 0 ? accountFailures.firstWait : 2 * whole.wait, accountFailures.longestWait)
        whole.blockedUntil = time + whole.wait
      }
    },
    succeeded (account, client) {
      pairs.delete(pairKey(account, client))
    }
  }
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
    refresh: limit(120, '1 minute'),
    failedLogins: enabled ? loginGuard() : { check () {}, failed () {}, succeeded () {} }
  } satisfies Throttle)
}, { name: 'throttle' })
