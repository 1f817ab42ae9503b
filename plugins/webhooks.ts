import { createHmac, randomUUID } from 'node:crypto'
import { inArray } from 'drizzle-orm'
import fp from 'fastify-plugin'
import type { WebhookConfig } from '../src/config.js'
import type { Database } from '../src/db/connect.js'
import { webhookOutbox } from '../src/db/schema.js'
import { queuedIn, startOutbox } from '../src/outbox.js'

export type WebhookEventType = 'user.registered' | 'user.deleted' | 'user.disabled' | 'user.enabled' | 'email.changed' | 'password.changed' | 'session.revoked'

export interface WebhooksOptions {
  webhooks: WebhookConfig
  /** Milliseconds between looks for deliveries due, on top of the wake-up each queued event sends. */
  pollInterval?: number
}

/**
 * Signed webhooks (Standard Webhooks) from a durable outbox: each event is a row per target URL, queued in the
 * transaction of the change it tells of, and POSTed by a worker on every instance (FOR UPDATE SKIP LOCKED and a
 * lease, so no two instances deliver one row at once), retried with exponential backoff for up to
 * WEBHOOK_RETRY_FOR. A row keeps one message id (the `webhook-id` header) and one body for all its attempts; the
 * body is erased once the row is sent or failed.
 */
export interface WebhookEvent {
  type: WebhookEventType
  data: Record<string, unknown>
  /** The user the event is about. */
  userId?: number
}

export interface Webhooks {
  /** In tx: queues the event for every target URL, each row with a message id of its own; every instance is woken to deliver it once tx commits. Does nothing without WEBHOOK_URLS. */
  enqueue: (tx: Database, type: WebhookEventType, data: Record<string, unknown>, userId?: number) => Promise<void>
  /** In tx: queues several events at once, as enqueue() does each. */
  enqueueAll: (tx: Database, events: WebhookEvent[]) => Promise<void>
  /**
   * In tx: the users are being deleted: every event about them, delivered or not, is deleted, so that none still
   * queued carries their username or address anywhere. Their user.deleted is queued after this.
   */
  forget: (tx: Database, userIds: number[]) => Promise<void>
  /** Delivers the events due now, and those that fall due meanwhile; resolves once none is left (for tests and shutdown). */
  deliver: () => Promise<void>
  /** Deliveries waiting, retries included. */
  queued: () => Promise<number>
}

declare module 'fastify' {
  interface FastifyInstance {
    webhooks: Webhooks
  }
}

const userAgent = 'fastify-auth-service-webhooks/1'

/** Standard Webhooks' `v1,` signature: base64 of HMAC-SHA256 over `id.timestamp.body`, keyed with the secret's base64 after `whsec_`. */
export function sign (secret: string, messageId: string, timestamp: number, body: string): string {
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64')
  return `v1,${createHmac('sha256', key).update(`${messageId}.${timestamp}.${body}`).digest('base64')}`
}

/** A receiver's answer other than 2xx; a redirect is one, as it is not followed. */
class UnwantedAnswer extends Error {
  constructor (readonly status: number) {
    super(`answered ${status}`)
  }
}

/** A failed attempt as it may be stored and logged: the status, or the network error's code and message, never the body. */
function describeFailure (error: unknown): string {
  if (error instanceof UnwantedAnswer) return error.message
  // fetch's TypeError('fetch failed') keeps the socket's error as its cause; a timeout is a DOMException of its own.
  const { cause } = error as { cause?: unknown }
  const { code, name, message } = (cause instanceof Error ? cause : error) as Error & { code?: unknown }
  return `${typeof code === 'string' ? code : name} ${message}`.slice(0, 500)
}

export default fp<WebhooksOptions>(async (fastify, { webhooks: { urls, secret, retryFor, timeout }, pollInterval = 1000 }) => {
  const { db } = fastify
  const queued = () => queuedIn(db, webhookOutbox)
  const forget: Webhooks['forget'] = async (tx, userIds) => {
    await tx.delete(webhookOutbox).where(inArray(webhookOutbox.userId, userIds))
  }
  // Without a URL nothing is queued, and no worker looks for deliveries: rows queued before WEBHOOK_URLS was
  // unset wait until it is set again.
  if (urls.length === 0) {
    fastify.decorate('webhooks', { enqueue: async () => {}, enqueueAll: async () => {}, forget, deliver: async () => {}, queued } satisfies Webhooks)
    return
  }
  const { webhooks: counted } = fastify.authMetrics

  async function send (row: typeof webhookOutbox.$inferSelect): Promise<void> {
    // The time of this attempt, not of the event: receivers refuse a timestamp more than a few minutes old.
    const timestamp = Math.floor(Date.now() / 1000)
    const body = row.payload!
    const response = await fetch(row.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'user-agent': userAgent,
        'webhook-id': row.messageId,
        'webhook-timestamp': String(timestamp),
        'webhook-signature': sign(secret!, row.messageId, timestamp, body)
      },
      body,
      redirect: 'manual',
      signal: AbortSignal.timeout(timeout * 1000)
    })
    // Whatever the receiver answered is not read, only let go of.
    await response.body?.cancel()
    if (!response.ok) throw new UnwantedAnswer(response.status)
  }

  const outbox = startOutbox(fastify, {
    table: webhookOutbox,
    channel: 'auth_webhooks',
    batchSize: 20,
    // The attempts of a batch run at once, each cut at the timeout: the lease outlasts any of them.
    parallel: true,
    claimFor: (2 * timeout + 5) * 1000,
    retryFor,
    pollInterval,
    lookFailed: 'webhook delivery failed: retrying at the next look',
    send,
    describeFailure,
    erased: () => ({ payload: null }),
    settled (row, result) {
      counted.inc({ type: row.type, outcome: result.outcome })
      const logged = { messageId: row.messageId, type: row.type, url: row.url, attempts: row.attempts }
      if (result.outcome === 'sent') {
        fastify.log.info(logged, 'webhook sent')
      } else if (result.outcome === 'retried') {
        fastify.log.warn({ ...logged, failure: result.failure, retryAt: result.retryAt }, 'webhook not delivered: retrying')
      } else {
        fastify.log.error({ ...logged, failure: result.failure }, 'webhook failed: given up after WEBHOOK_RETRY_FOR')
      }
    }
  })

  const service: Webhooks = {
    enqueue: (tx, type, data, userId) => service.enqueueAll(tx, [{ type, data, userId }]),
    async enqueueAll (tx, events) {
      if (events.length === 0) return
      const timestamp = new Date().toISOString()
      await outbox.enqueue(tx, tx.insert(webhookOutbox).values(events.flatMap(({ type, data, userId }) => {
        // Serialised once: every attempt sends, and signs, the same bytes.
        const payload = JSON.stringify({ type, timestamp, data })
        return urls.map((url) => ({ messageId: `msg_${randomUUID().replaceAll('-', '')}`, url, type, payload, userId }))
      })))
    },
    forget,
    deliver: outbox.deliver,
    queued
  }
  fastify.decorate('webhooks', service)
}, { name: 'webhooks', dependencies: ['db', 'metrics'] })
