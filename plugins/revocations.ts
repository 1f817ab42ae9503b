import { and, asc, eq, gt, isNotNull, max, sql } from 'drizzle-orm'
import fp from 'fastify-plugin'
import type { Database } from '../src/db/connect.js'
import { revokedSessions, tokens } from '../src/db/schema.js'

export interface RevocationOptions {
  /** Seconds: how long a revoked session's access tokens may still be presented. */
  accessTokenTtl: number
  /**
   * Milliseconds between full reloads, the safety net for a notification connection that is lost
   * and cannot be re-established (postgres.js gives up re-listening if its first try fails).
   */
  resyncInterval?: number
}

export interface Revocations {
  /** True when the session was revoked and some of its access tokens may still be unexpired. */
  has: (sessionId: string) => boolean
  /** Inside the transaction that revoked the sessions: tells every instance, on commit. */
  publish: (tx: Database, sessionIds: string[]) => Promise<void>
  /** After that transaction committed: this instance refuses the sessions' tokens at once. */
  remember: (sessionIds: string[]) => void
  size: () => number
}

declare module 'fastify' {
  interface FastifyInstance {
    revocations: Revocations
  }
}

export const revocationChannel = 'auth_session_revoked'
// NOTIFY payloads are limited to 8000 bytes; 100 ids are about 3,900.
const idsPerNotification = 100

/**
 * The revoked sessions whose access tokens have not all expired, kept in memory so that checking
 * an access token costs no database round trip. Loaded at start, updated by this instance's own
 * revocations at once, by other instances' through PostgreSQL NOTIFY, and reloaded whole whenever
 * the notification connection is re-established, and every resyncInterval.
 */
export default fp<RevocationOptions>(async (fastify, { accessTokenTtl, resyncInterval = 30_000 }) => {
  const { db, notifications } = fastify
  // Session id -> when its last access token expires (ms), in expiry order: pruning stops at the first live one.
  const revoked = new Map<string, number>()

  function add (sessionId: string, until: number) {
    const now = Date.now()
    for (const [id, expires] of revoked) {
      if (expires > now) break
      revoked.delete(id)
    }
    revoked.delete(sessionId)
    revoked.set(sessionId, until)
  }

  async function resync () {
    const rows = await db
      .select({ sessionId: tokens.sessionId, until: max(tokens.expiresAt) })
      .from(tokens)
      .where(and(eq(tokens.type, 'access'), isNotNull(tokens.revokedAt), gt(tokens.expiresAt, new Date())))
      .groupBy(tokens.sessionId)
      .orderBy(asc(max(tokens.expiresAt)))
    // Sessions of deleted users, whose token rows went with them.
    const tombstones = await db.select({ sessionId: revokedSessions.sessionId, until: revokedSessions.expiresAt })
      .from(revokedSessions).where(gt(revokedSessions.expiresAt, new Date())).orderBy(asc(revokedSessions.expiresAt))
    for (const { sessionId, until } of [...rows, ...tombstones].sort((a, b) => (a.until as Date).getTime() - (b.until as Date).getTime())) {
      add(sessionId, (until as Date).getTime())
    }
    fastify.log.debug({ revokedSessions: revoked.size }, 'revoked sessions loaded')
  }

  function onNotify (payload: string) {
    const { until, ids } = JSON.parse(payload) as { until: number, ids: string[] }
    for (const id of ids) add(id, until)
  }

  // Every access token of a session revoked now was issued before now, so none outlives this.
  const horizon = () => Date.now() + accessTokenTtl * 1000

  const revocations: Revocations = {
    has: (sessionId) => revoked.has(sessionId),
    async publish (tx, sessionIds) {
      const until = horizon()
      for (let i = 0; i < sessionIds.length; i += idsPerNotification) {
        const payload = JSON.stringify({ until, ids: sessionIds.slice(i, i + idsPerNotification) })
        await tx.execute(sql`select pg_notify(${revocationChannel}, ${payload})`)
      }
    },
    remember (sessionIds) {
      const until = horizon()
      for (const id of sessionIds) add(id, until)
    },
    size: () => revoked.size
  }
  fastify.decorate('revocations', revocations)

  let unlisten: (() => Promise<void>) | undefined
  fastify.addHook('onReady', async () => {
    unlisten = await notifications.listen(revocationChannel, onNotify, async () => {
      try {
        await resync()
      /* c8 ignore start: the database failing in the moment after it answered LISTEN */
      } catch (error) {
        fastify.log.error({ err: error }, 'reloading revoked sessions failed')
        throw error
      }
      /* c8 ignore stop */
    })
  })
  const timer = setInterval(() => {
    resync().catch((error: unknown) => fastify.log.error({ err: error }, 'reloading revoked sessions failed'))
  }, resyncInterval)
  timer.unref()
  fastify.addHook('onClose', async () => {
    clearInterval(timer)
    await unlisten?.()
  })
}, { name: 'revocations', dependencies: ['db'] })
