import { sql } from 'drizzle-orm'
import { check, index, integer, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core'

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
  createdAt: timestamptz('created_at').notNull().defaultNow()
})

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
  index('tokens_revoked_expires_at_idx').on(table.expiresAt).where(sql`${table.revokedAt} is not null`),
  check('tokens_type_check', sql`${table.type} in ('access', 'refresh')`)
])

export type User = typeof users.$inferSelect
