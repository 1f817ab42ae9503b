import { sql } from 'drizzle-orm'
import { bigint, boolean, check, index, integer, jsonb, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core'

const timestamptz = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' })

export const users = pgTable('users', {
  id: integer('id').primaryKey().generatedAlwaysAsIdentity(),
  /** As registered, NFKC-normalised. */
  username: text('username').notNull(),
  /** NFKC + case fold of username: what uniqueness and login compare. */
  usernameKey: text('username_key').notNull().unique('users_username_key_unique'),
  /** confusableKey() of username: no two names may look alike. Null only for a row older than the column whose key another row had taken. */
  usernameSkeleton: text('username_skeleton').unique('users_username_skeleton_unique'),
  /** lowerConfusableKey() of username, null on the same terms. */
  usernameSkeletonLower: text('username_skeleton_lower').unique('users_username_skeleton_lower_unique'),
  /** shownConfusableKey() of username, null on the same terms. */
  usernameSkeletonShown: text('username_skeleton_shown').unique('users_username_skeleton_shown_unique'),
  email: text('email').notNull(),
  /** Lower-cased email: what uniqueness and login compare. */
  emailKey: text('email_key').notNull().unique('users_email_key_unique'),
  passwordHash: text('password_hash').notNull(),
  /** Set once the user has proved to own email: by a verification, a password reset or an email change mailed there. */
  emailVerified: boolean('email_verified').notNull().default(false),
  /** Set while an operator has disabled the account: no login, no session, no reset. */
  disabledAt: timestamptz('disabled_at'),
  /** A cohort label set by the admin API (a load test's users): cohorts can be deleted, and given sessions, whole. */
  tag: text('tag'),
  lastLoginAt: timestamptz('last_login_at'),
  createdAt: timestamptz('created_at').notNull().defaultNow()
}, (table) => [
  index('users_tag_idx').on(table.tag).where(sql`${table.tag} is not null`)
])

/** One row per login; refresh rotation keeps the session and replaces its tokens. */
export const sessions = pgTable('sessions', {
  id: uuid('id').primaryKey(),
  userId: integer('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  createdAt: timestamptz('created_at').notNull(),
  lastUsedAt: timestamptz('last_used_at').notNull(),
  /** When the session's newest refresh token expires. */
  expiresAt: timestamptz('expires_at').notNull(),
  revokedAt: timestamptz('revoked_at'),
  userAgent: text('user_agent'),
  ip: text('ip')
}, (table) => [
  index('sessions_user_id_idx').on(table.userId)
])

/** One row per issued token; created_at and expires_at are the token's iat and exp. */
export const tokens = pgTable('tokens', {
  jti: uuid('jti').primaryKey(),
  userId: integer('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  sessionId: uuid('session_id').notNull().references(() => sessions.id, { onDelete: 'cascade' }),
  type: text('type', { enum: ['access', 'refresh'] }).notNull(),
  /** Hex SHA-256 of the token string; the token itself is never stored. */
  tokenHash: text('token_hash').notNull(),
  createdAt: timestamptz('created_at').notNull(),
  expiresAt: timestamptz('expires_at').notNull(),
  revokedAt: timestamptz('revoked_at'),
  /** For a rotated refresh token: the jti of the refresh token that replaced it. */
  replacedBy: uuid('replaced_by')
}, (table) => [
  index('tokens_session_id_idx').on(table.sessionId),
  // A user's tokens, when the user is deleted: the tombstones and the cascade.
  index('tokens_user_id_idx').on(table.userId),
  // The revoked sessions' access tokens still live, read at start and every resync (plugins/revocations.ts). Not every
  // revoked token: each rotation revokes a refresh token, and those would make it as large as the table.
  index('tokens_revoked_access_expires_at_idx').on(table.expiresAt).where(sql`${table.revokedAt} is not null and ${table.type} = 'access'`),
  check('tokens_type_check', sql`${table.type} in ('access', 'refresh')`)
])

/**
 * Sessions of deleted users whose access tokens may still be presented: their rows went with the user, so the
 * revoked set, rebuilt from the tokens table at start, would forget them. Only an id and an expiry: nothing
 * that names anyone. Purged once expired.
 */
export const revokedSessions = pgTable('revoked_sessions', {
  sessionId: uuid('session_id').primaryKey(),
  /** When the session's last access token expires. */
  expiresAt: timestamptz('expires_at').notNull()
})

export const mailTokenKinds = ['password_reset', 'email_verify', 'email_change'] as const

/**
 * One row per token mailed to a user: a link token and a 6-digit code, either of which proves the mail
 * was read. Neither is stored: a dump of the table must not let anyone use them.
 */
export const mailTokens = pgTable('mail_tokens', {
  id: uuid('id').primaryKey(),
  userId: integer('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  kind: text('kind', { enum: mailTokenKinds }).notNull(),
  /** The address it was mailed to, as normaliseEmail() has it: for an email change, the new address. */
  email: text('email').notNull(),
  /** emailKey() of email, which a code is looked up by. */
  emailKey: text('email_key').notNull(),
  /** Hex SHA-256 of the link token. */
  tokenHash: text('token_hash').notNull().unique('mail_tokens_token_hash_unique'),
  /** Hex HMAC-SHA256 of the id and the code, under a key derived from the signing key, which is not in the database. */
  codeHmac: text('code_hmac').notNull(),
  /** Wrong codes tried; at 5 the code is dead (the link token is not). */
  codeAttempts: integer('code_attempts').notNull().default(0),
  createdAt: timestamptz('created_at').notNull(),
  expiresAt: timestamptz('expires_at').notNull(),
  codeExpiresAt: timestamptz('code_expires_at').notNull(),
  /** Used, or made dead by a newer token of its kind, by a password reset or by an email change. */
  consumedAt: timestamptz('consumed_at')
}, (table) => [
  index('mail_tokens_user_id_kind_idx').on(table.userId, table.kind),
  check('mail_tokens_kind_check', sql`${table.kind} in ('password_reset', 'email_verify', 'email_change')`)
])

/**
 * Mails to send, queued in the transaction of the state that needs them; a worker on every instance sends
 * them. The body holds the template's variables, a link token and a code among them, until the mail is
 * sent, has failed, or its token has expired: then it is erased.
 */
export const mailOutbox = pgTable('mail_outbox', {
  id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
  kind: text('kind').notNull(),
  recipient: text('recipient').notNull(),
  body: jsonb('body').$type<Record<string, string>>(),
  status: text('status', { enum: ['queued', 'sent', 'failed'] }).notNull().default('queued'),
  attempts: integer('attempts').notNull().default(0),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
  /** When the next attempt may start; while an attempt is under way, when its claim lapses. */
  nextAttemptAt: timestamptz('next_attempt_at').notNull().defaultNow(),
  /** When what the mail carries expires: a mail still queued then is failed unsent. */
  eraseAt: timestamptz('erase_at'),
  sentAt: timestamptz('sent_at'),
  lastError: text('last_error')
}, (table) => [
  index('mail_outbox_queued_idx').on(table.nextAttemptAt).where(sql`${table.status} = 'queued'`),
  // The mails of a deleted user.
  index('mail_outbox_recipient_idx').on(table.recipient),
  check('mail_outbox_status_check', sql`${table.status} in ('queued', 'sent', 'failed')`)
])

export type User = typeof users.$inferSelect

export const eventActors = ['user', 'admin', 'system'] as const

/**
 * The audit trail: what happened to accounts and sessions, by whom, from where. Written off the requests'
 * paths in batches. Never a password, a token, a code or a hash; `detail` never names anyone, and the
 * address and user agent of a deleted user's events are erased. Purged after AUDIT_RETENTION.
 */
export const authEvents = pgTable('auth_events', {
  id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
  createdAt: timestamptz('created_at').notNull(),
  type: text('type').notNull(),
  /** No foreign key: events outlive their users. */
  userId: integer('user_id'),
  sessionId: uuid('session_id'),
  actor: text('actor', { enum: eventActors }).notNull(),
  ip: text('ip'),
  userAgent: text('user_agent'),
  detail: jsonb('detail').$type<Record<string, unknown>>().notNull().default({})
}, (table) => [
  index('auth_events_user_id_idx').on(table.userId, table.id),
  index('auth_events_type_idx').on(table.type, table.id),
  index('auth_events_created_at_idx').on(table.createdAt),
  check('auth_events_actor_check', sql`${table.actor} in ('user', 'admin', 'system')`)
])

/**
 * Webhook deliveries to make: one row per event and target URL, queued in the transaction of the change that
 * caused the event; a worker on every instance posts them, signed, retrying with backoff. The same
 * message id on every attempt, for receivers to deduplicate on. The payload is erased once delivered or failed.
 */
export const webhookOutbox = pgTable('webhook_outbox', {
  id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
  /** The `webhook-id` header: the same on every attempt. */
  messageId: text('message_id').notNull(),
  url: text('url').notNull(),
  type: text('type').notNull(),
  /** The JSON body as sent, so that every attempt signs the same bytes. */
  payload: text('payload'),
  userId: integer('user_id'),
  status: text('status', { enum: ['queued', 'sent', 'failed'] }).notNull().default('queued'),
  attempts: integer('attempts').notNull().default(0),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
  /** When the next attempt may start; while an attempt is under way, when its claim lapses. */
  nextAttemptAt: timestamptz('next_attempt_at').notNull().defaultNow(),
  sentAt: timestamptz('sent_at'),
  lastError: text('last_error')
}, (table) => [
  index('webhook_outbox_queued_idx').on(table.nextAttemptAt).where(sql`${table.status} = 'queued'`),
  index('webhook_outbox_user_id_idx').on(table.userId),
  check('webhook_outbox_status_check', sql`${table.status} in ('queued', 'sent', 'failed')`)
])

/**
 * The users that `npm run import:django` brought over, by their Django id, which is also their id here. No foreign
 * key: the row outlives a user deleted here since, so that a later run of the import does not bring them back.
 * A separate table rather than a column of users for that reason.
 */
export const importedUsers = pgTable('imported_users', {
  id: integer('id').primaryKey(),
  importedAt: timestamptz('imported_at').notNull(),
  /**
   * When all of the user's sessions were last revoked here (a logout everywhere, a password change or reset, a
   * disabling): refresh tokens of the old service issued before then open no session in the cutover window.
   */
  legacyTokensRevokedAt: timestamptz('legacy_tokens_revoked_at')
})

/**
 * The jtis of the refresh tokens SimpleJWT had blacklisted in the old service, copied by the import: such a token
 * is never to be exchanged here. Hex SHA-256 of the jti, never the jti itself. A row is useless once expires_at has
 * passed (the token is dead anyway); db:purge does not delete them yet.
 */
export const legacyRevokedJtis = pgTable('legacy_revoked_jtis', {
  jtiHash: text('jti_hash').primaryKey(),
  expiresAt: timestamptz('expires_at').notNull()
})
