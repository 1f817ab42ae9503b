import type { FastifyRequest } from 'fastify'
import { and, desc, eq, gte, inArray, lt, notLike, sql, type SQL } from 'drizzle-orm'
import fp from 'fastify-plugin'
import type { Database } from '../src/db/connect.js'
import { authEvents, eventActors } from '../src/db/schema.js'

export type EventActor = typeof eventActors[number]

export type AuditEventType =
  | 'user.registered' | 'login.succeeded' | 'login.failed' | 'token.reused' | 'session.revoked' | 'logout' | 'logout.all'
  | 'password.changed' | 'password.reset_requested' | 'password.reset' | 'email.verified' | 'email.change_requested'
  | 'email.changed' | 'user.disabled' | 'user.enabled' | 'user.deleted' | `admin.${string}`

/** Who caused an event, and from where. */
export interface Origin {
  /** By default `user` with a request, `system` without. */
  actor?: EventActor
  /** The client's address and user agent are taken from it. */
  request?: FastifyRequest
}

export interface AuditEvent extends Origin {
  type: AuditEventType
  userId?: number | null
  sessionId?: string | null
  /** Never a password, a token, a code, a hash, nor anything naming a person: ids, counts, reasons. */
  detail?: Record<string, unknown>
}

export interface AuditQuery {
  userId?: number
  type?: string
  since?: Date
  /** Events older than this id: the next page of a newest-first listing. */
  before?: number
  /** Without the operators' own calls (`admin.*`): a user's view of their account. */
  withoutAdminCalls?: boolean
  limit: number
}

/**
 * The audit trail. record() only queues, in memory: a writer inserts the queue in batches, at most a second
 * later, so that no request waits on it. The queue is bounded: past `maxQueued`, events are dropped and
 * counted (auth_audit_events_total{outcome="dropped"}), never silently. A crash loses what was queued.
 */
export interface Audit {
  record: (event: AuditEvent) => void
  /** Writes what is queued now; resolves once it is written (or, on a database error, queued again). */
  flush: () => Promise<void>
  /** Events newest first. */
  list: (query: AuditQuery) => Promise<Array<typeof authEvents.$inferSelect>>
  /** In tx: the users are being deleted; their events lose the client address and user agent. */
  forget: (tx: Database, userIds: number[]) => Promise<void>
  /** Events waiting to be written. */
  queued: () => number
}

export interface AuditOptions {
  /** Milliseconds between writes of the queue. */
  flushInterval?: number
  /** Events held in memory at most; more are dropped and counted. */
  maxQueued?: number
}

declare module 'fastify' {
  interface FastifyInstance {
    audit: Audit
  }
}

/** Events inserted per statement. */
const batchSize = 1000
/** What is kept of a user agent: enough to recognise a device, not a place to store a novel. */
const userAgentLength = 256

interface QueuedEvent {
  created_at: string
  type: string
  user_id: number | null
  session_id: string | null
  actor: EventActor
  ip: string | null
  user_agent: string | null
  detail: Record<string, unknown>
}

export default fp<AuditOptions>(async (fastify, { flushInterval = 1000, maxQueued = 20_000 }) => {
  const { db } = fastify
  const { auditEvents } = fastify.authMetrics
  let queue: QueuedEvent[] = []

  /**
   * One statement for the batch, the events as one JSON parameter, their ids in the order they happened. An event of a user deleted meanwhile loses
   * the address and user agent as it is written; one written while the deletion commits is swept by the purge.
   */
  async function write (batch: QueuedEvent[]): Promise<void> {
    await db.execute(sql`insert into auth_events (created_at, type, user_id, session_id, actor, ip, user_agent, detail)
      select e.created_at, e.type, e.user_id, e.session_id, e.actor,
        case when known.id is not null or e.user_id is null then e.ip end,
        case when known.id is not null or e.user_id is null then e.user_agent end,
        e.detail
      from jsonb_to_recordset(${JSON.stringify(batch.map((event, order) => ({ ...event, order })))}::jsonb)
        as e(created_at timestamptz, type text, user_id integer, session_id uuid, actor text, ip text, user_agent text, detail jsonb, "order" integer)
      left join users known on known.id = e.user_id
      order by e."order"`)
  }

  // One write at a time; a flush asked for during one runs after it.
  let writing: Promise<void> | undefined
  async function writeQueue (): Promise<void> {
    while (queue.length > 0) {
      const batch = queue.slice(0, batchSize)
      queue = queue.slice(batch.length)
      try {
        await write(batch)
        auditEvents.inc({ outcome: 'written' }, batch.length)
      } catch (error) {
        // Kept for the next write, within the bound.
        const kept = batch.slice(0, Math.max(0, maxQueued - queue.length))
        queue = [...kept, ...queue]
        if (kept.length < batch.length) auditEvents.inc({ outcome: 'dropped' }, batch.length - kept.length)
        fastify.log.error({ err: error, events: batch.length }, 'audit events not written: retrying at the next write')
        return
      }
    }
  }
  async function flush (): Promise<void> {
    if (writing !== undefined) {
      await writing
      return flush()
    }
    if (queue.length === 0) return
    writing = writeQueue().finally(() => { writing = undefined })
    await writing
  }

  let droppedSince = 0
  fastify.decorate('audit', {
    record (event) {
      if (queue.length >= maxQueued) {
        auditEvents.inc({ outcome: 'dropped' })
        // Once per burst, not once per event: a flood must not flood the log too.
        if (droppedSince++ === 0) fastify.log.warn({ maxQueued }, 'audit queue full: events dropped')
        return
      }
      droppedSince = 0
      const { request } = event
      queue.push({
        created_at: new Date().toISOString(),
        type: event.type,
        user_id: event.userId ?? null,
        session_id: event.sessionId ?? null,
        actor: event.actor ?? (request === undefined ? 'system' : 'user'),
        ip: request?.ip ?? null,
        user_agent: request?.headers['user-agent']?.slice(0, userAgentLength) ?? null,
        detail: event.detail ?? {}
      })
      // flush() never rejects: a failed write keeps its events for the next.
      if (queue.length >= batchSize && writing === undefined) flush()
    },

    flush,

    async list ({ userId, type, since, before, withoutAdminCalls, limit }) {
      const conditions: Array<SQL | undefined> = [
        userId === undefined ? undefined : eq(authEvents.userId, userId),
        type === undefined ? undefined : eq(authEvents.type, type),
        since === undefined ? undefined : gte(authEvents.createdAt, since),
        before === undefined ? undefined : lt(authEvents.id, before),
        withoutAdminCalls === true ? notLike(authEvents.type, 'admin.%') : undefined
      ]
      return db.select().from(authEvents).where(and(...conditions)).orderBy(desc(authEvents.id)).limit(limit)
    },

    async forget (tx, userIds) {
      await tx.update(authEvents).set({ ip: null, userAgent: null }).where(inArray(authEvents.userId, userIds))
    },

    queued: () => queue.length
  } satisfies Audit)

  const timer = setInterval(flush, flushInterval)
  timer.unref()
  // After the last request has ended, before the database closes (onClose hooks run in reverse order of registration).
  fastify.addHook('onClose', async () => {
    clearInterval(timer)
    await flush()
  })
}, { name: 'audit', dependencies: ['db', 'metrics'] })
