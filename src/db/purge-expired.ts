import { and, eq, gt, inArray, isNotNull, lt, notExists, or } from 'drizzle-orm'
import type { Database } from './connect.js'
import { authEvents, legacyRevokedJtis, mailOutbox, mailTokens, revokedSessions, sessions, tokens, users, webhookOutbox } from './schema.js'

export interface Purged {
  tokens: number
  sessions: number
  /** Mailed tokens expired for over an hour: the per-hour mail limits count them until then. */
  mailTokens: number
  /** Mails sent or failed over a week ago: kept that long for an operator to look into. */
  mails: number
  /** Audit events older than AUDIT_RETENTION. */
  events: number
}

const hour = 3600_000
/** How long a sent or failed mail's row (its kind, recipient and outcome; never its body) is kept. */
export const mailKeptFor = 7 * 24 * hour
/** AUDIT_RETENTION's default, in seconds. */
export const defaultAuditRetention = 90 * 24 * 3600

/**
 * Deletes expired tokens, then expired sessions that have no token left, in batches. Each batch
 * locks its rows with SKIP LOCKED, so instances purging at the same time share the work.
 */
export async function purgeExpired (db: Database, { batchSize = 1000, auditRetention = defaultAuditRetention } = {}): Promise<Purged> {
  const purged: Purged = { tokens: 0, sessions: 0, mailTokens: 0, mails: 0, events: 0 }
  for (;;) {
    const now = new Date()
    const expired = db.select({ jti: tokens.jti }).from(tokens)
      .where(lt(tokens.expiresAt, now)).limit(batchSize).for('update', { skipLocked: true })
    const deleted = await db.delete(tokens).where(inArray(tokens.jti, expired)).returning({ jti: tokens.jti })
    purged.tokens += deleted.length
    if (deleted.length < batchSize) break
  }
  for (;;) {
    const now = new Date()
    // A session outlives its refresh token while an access token issued near its end is still valid.
    const finished = db.select({ id: sessions.id }).from(sessions)
      .where(and(lt(sessions.expiresAt, now), notExists(db.select({ jti: tokens.jti }).from(tokens).where(eq(tokens.sessionId, sessions.id)))))
      .limit(batchSize).for('update', { skipLocked: true })
    const deleted = await db.delete(sessions).where(inArray(sessions.id, finished)).returning({ id: sessions.id })
    purged.sessions += deleted.length
    if (deleted.length < batchSize) break
  }
  // A deleted user's sessions, once their last access token has expired: nothing is left to refuse. The same for
  // the old service's blacklisted refresh tokens.
  await db.delete(revokedSessions).where(lt(revokedSessions.expiresAt, new Date()))
  await db.delete(legacyRevokedJtis).where(lt(legacyRevokedJtis.expiresAt, new Date()))
  const deadTokens = await db.delete(mailTokens).where(lt(mailTokens.expiresAt, new Date(Date.now() - hour))).returning({ id: mailTokens.id })
  purged.mailTokens = deadTokens.length
  const oldMails = await db.delete(mailOutbox)
    .where(and(inArray(mailOutbox.status, ['sent', 'failed']), lt(mailOutbox.createdAt, new Date(Date.now() - mailKeptFor)))).returning({ id: mailOutbox.id })
  purged.mails = oldMails.length
  // Webhook deliveries, likewise: their bodies are erased already; the rows tell an operator what was sent.
  await db.delete(webhookOutbox)
    .where(and(inArray(webhookOutbox.status, ['sent', 'failed']), lt(webhookOutbox.createdAt, new Date(Date.now() - mailKeptFor))))
  for (;;) {
    const old = db.select({ id: authEvents.id }).from(authEvents)
      .where(lt(authEvents.createdAt, new Date(Date.now() - auditRetention * 1000))).limit(batchSize).for('update', { skipLocked: true })
    const deleted = await db.delete(authEvents).where(inArray(authEvents.id, old)).returning({ id: authEvents.id })
    purged.events += deleted.length
    if (deleted.length < batchSize) break
  }
  // An event written by another instance while its user's deletion committed kept its address: erased here.
  await db.update(authEvents).set({ ip: null, userAgent: null }).where(and(
    gt(authEvents.createdAt, new Date(Date.now() - 24 * hour)),
    isNotNull(authEvents.userId),
    or(isNotNull(authEvents.ip), isNotNull(authEvents.userAgent)),
    notExists(db.select({ id: users.id }).from(users).where(eq(users.id, authEvents.userId)))
  ))
  return purged
}
