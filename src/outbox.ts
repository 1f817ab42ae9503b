import { and, count, eq, inArray, lte, sql, type SQLWrapper } from 'drizzle-orm'
import type { PgUpdateSetSource } from 'drizzle-orm/pg-core'
import type { FastifyInstance } from 'fastify'
import { prepared, type Database } from './db/connect.js'
import type { mailOutbox, webhookOutbox } from './db/schema.js'

/** The outbox tables: each has id, status, attempts, created_at, next_attempt_at, sent_at and last_error. */
export type OutboxTable = typeof mailOutbox | typeof webhookOutbox

/** What became of one attempt, once its row is updated. */
export type Outcome =
  | { outcome: 'sent' }
  | { outcome: 'retried', failure: string, retryAt: Date }
  | { outcome: 'failed', failure: string }

export interface OutboxOptions<T extends OutboxTable> {
  table: T
  /** The NOTIFY channel that wakes every instance's worker; one per outbox. */
  channel: string
  /** Rows one instance claims at a time. */
  batchSize: number
  /**
   * Milliseconds a claimed row stays claimed: longer than its attempt can take (the whole batch's, one after the
   * other, unless parallel), so that no two instances make it at once.
   */
  claimFor: number
  /** The attempts of a batch are made at once, not one after the other. */
  parallel?: boolean
  /** Seconds from a row's creation during which it is retried; then it is failed. */
  retryFor: number
  /** Milliseconds between looks for rows due, on top of the wake-up each enqueue sends. */
  pollInterval: number
  /** The error log line of a look that failed as a whole (the database was unreachable). */
  lookFailed: string
  /** Makes one attempt; throws on failure. */
  send: (row: T['$inferSelect']) => Promise<void>
  /** A failure as it may be stored and logged: never what was sent. */
  describeFailure: (error: unknown) => string
  /** The columns erased once a row is sent or failed. */
  erased: (row: T['$inferSelect']) => Partial<T['$inferInsert']>
  /** Counts and logs an outcome, after the row is updated. */
  settled: (row: T['$inferSelect'], outcome: Outcome) => void
  /** Runs at the start of each look, before the claim. */
  beforeClaim?: (now: Date) => Promise<void>
  /** Runs at close, once no attempt is in flight. */
  close?: () => void
}

export interface Outbox {
  /** Makes the attempts due now, and those that fall due meanwhile; resolves once none is left. */
  deliver: () => Promise<void>
  /** Rows waiting, retries included. */
  queued: () => Promise<number>
  /** In tx: runs the insert of rows and wakes every instance's worker once tx commits, in one statement. */
  enqueue: (tx: Database, insert: SQLWrapper) => Promise<void>
}

/** The rows of an outbox waiting, retries included. */
export async function queuedIn (db: Database, table: OutboxTable): Promise<number> {
  const [row] = await prepared(db.select({ queued: count() }).from(table).where(eq(table.status, 'queued')))
  return row!.queued
}

const maxBackoff = 15 * 60_000
/** 1 s after the first failure, doubling to 15 minutes. */
export const backoff = (attempts: number) => Math.min(1000 * 2 ** (attempts - 1), maxBackoff)

/**
 * The worker of a durable outbox, on every instance: rows queued in the transaction of the change that needs
 * them are claimed in batches (FOR UPDATE SKIP LOCKED, then a lease in next_attempt_at, so no two instances
 * attempt one row at once), attempted outside any transaction, and retried with exponential backoff for up to
 * retryFor. Woken by NOTIFY after each commit that queued a row, and by a timer for retries; stopped at preClose,
 * after the attempt in flight, before the database closes.
 */
export function startOutbox<T extends OutboxTable> (fastify: FastifyInstance, options: OutboxOptions<T>): Outbox {
  const { db, notifications } = fastify
  const { table, batchSize, claimFor, retryFor, send, describeFailure, erased, settled } = options
  type Row = T['$inferSelect']
  // drizzle cannot check a set against a table that is only known to be one of two.
  const set = (values: Record<string, unknown>) => values as PgUpdateSetSource<T>

  async function attempt (row: Row): Promise<void> {
    try {
      await send(row)
    } catch (error) {
      const failure = describeFailure(error)
      const deadline = row.createdAt.getTime() + retryFor * 1000
      if (Date.now() >= deadline) {
        await db.update(table).set(set({ status: 'failed', ...erased(row), lastError: failure })).where(eq(table.id, row.id))
        settled(row, { outcome: 'failed', failure })
        return
      }
      const retryAt = new Date(Math.min(Date.now() + backoff(row.attempts), deadline))
      await db.update(table).set(set({ nextAttemptAt: retryAt, lastError: failure })).where(eq(table.id, row.id))
      settled(row, { outcome: 'retried', failure, retryAt })
      return
    }
    await db.update(table).set(set({ status: 'sent', ...erased(row), sentAt: new Date(), lastError: null })).where(eq(table.id, row.id))
    settled(row, { outcome: 'sent' })
  }

  /** One look for rows due: claims a batch and attempts each. Answers how many it claimed. */
  async function pass (): Promise<number> {
    const now = new Date()
    await options.beforeClaim?.(now)
    const due = db.select({ id: table.id }).from(table as OutboxTable)
      .where(and(eq(table.status, 'queued'), lte(table.nextAttemptAt, now)))
      .orderBy(table.id).limit(batchSize).for('update', { skipLocked: true })
    const claimed = await db.update(table)
      .set(set({ attempts: sql`${table.attempts} + 1`, nextAttemptAt: new Date(now.getTime() + claimFor) }))
      .where(inArray(table.id, due)).returning() as Row[]
    if (options.parallel === true) {
      // Settled, all of them, before the look ends: preClose waits for the look, and then the database closes.
      const failure = (await Promise.allSettled(claimed.map(attempt))).find((result) => result.status === 'rejected')
      if (failure !== undefined) throw failure.reason
    } else {
      for (const row of claimed) await attempt(row)
    }
    return claimed.length
  }

  // One delivery at a time per instance; a wake-up during one runs another after it.
  let running: Promise<void> | undefined
  let again = false
  let closed = false
  function deliver (): Promise<void> {
    if (closed) return Promise.resolve()
    if (running !== undefined) {
      again = true
      return running
    }
    running = (async () => {
      // A full batch may leave more due; a wake-up meanwhile may have queued more. Both end at close.
      let more = true
      while (more) {
        again = false
        more = await pass() === batchSize || again
        if (closed) more = false
      }
    })().finally(() => { running = undefined })
    return running
  }
  const deliverLogged = () => {
    deliver().catch((error: unknown) => fastify.log.error({ err: error }, options.lookFailed))
  }

  let unlisten: (() => Promise<void>) | undefined
  let timer: NodeJS.Timeout | undefined
  fastify.addHook('onReady', async () => {
    // Woken after each commit that queued a row, on every instance; the timer brings retries when they fall due.
    unlisten = await notifications.listen(options.channel, deliverLogged, async () => { deliverLogged() })
    timer = setInterval(deliverLogged, options.pollInterval)
    timer.unref()
  })
  // Before the database closes under an attempt in flight.
  fastify.addHook('preClose', async () => {
    closed = true
    clearInterval(timer)
    await unlisten?.()
    await running?.catch(() => {})
    options.close?.()
  })

  return {
    deliver,
    queued: () => queuedIn(db, table),
    async enqueue (tx, insert) {
      // A data-modifying CTE runs whether or not the statement reads it: one round trip where two were.
      await tx.execute(sql`with queued as (${insert.getSQL()}) select pg_notify(${options.channel}, '')`)
    }
  }
}
