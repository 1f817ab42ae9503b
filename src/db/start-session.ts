import type { Query } from './connect.js'
import type { NewToken } from './rotate-refresh.js'

export interface SessionStart {
  userId: number
  /** The hash the password was checked against: a password changed meanwhile opens no session. */
  passwordHash: string
  sessionId: string
  /** When the login happened: the user's last login (its tokens' times are whole seconds). */
  now: Date
  refresh: NewToken
  access: NewToken
  userAgent: string | null
  ip: string | null
}

/**
 * A login's writes in one statement, so one round trip and no transaction: the user's last login is recorded
 * where the user still has the checked password and is not disabled, and only then the session and its two tokens
 * are inserted. The update locks the user's row, which a password change, a disabling or a deletion also updates:
 * one of them racing the login either waits for it (and then revokes or deletes the new session with the others)
 * or commits first, and the login, re-reading the row, finds no match and inserts nothing.
 */
export const startSessionSql = `with held as (
  update users set last_login_at = $14
  where id = $1 and password_hash = $2 and disabled_at is null
  returning id
), new_session as (
  insert into sessions (id, user_id, created_at, last_used_at, expires_at, user_agent, ip)
  select $4, id, $3, $3, $5, $6, $7 from held
  returning id, user_id
)
insert into tokens (jti, user_id, session_id, type, token_hash, created_at, expires_at)
select new.jti, new_session.user_id, new_session.id, new.type, new.token_hash, new.created_at, new.expires_at
from new_session, (values
  ($8::uuid, 'refresh', $9, $3::timestamptz, $5::timestamptz),
  ($10::uuid, 'access', $11, $12::timestamptz, $13::timestamptz)
) as new (jti, type, token_hash, created_at, expires_at)
returning jti`

/** Opens the session; true when it was opened. */
export async function startSession (query: Query, start: SessionStart): Promise<boolean> {
  const { refresh, access } = start
  const time = (date: Date) => date.toISOString()
  const rows = await query(startSessionSql, [
    start.userId, start.passwordHash, time(refresh.createdAt), start.sessionId, time(refresh.expiresAt), start.userAgent, start.ip,
    refresh.jti, refresh.tokenHash, access.jti, access.tokenHash, time(access.createdAt), time(access.expiresAt), time(start.now)
  ])
  return rows.length === 2
}
