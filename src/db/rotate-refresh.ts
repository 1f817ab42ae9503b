import type { Query } from './connect.js'

/** A token to insert: the columns its row takes besides the user and the session. */
export interface NewToken {
  jti: string
  tokenHash: string
  createdAt: Date
  expiresAt: Date
}

export interface Rotation {
  sessionId: string
  /** The presented refresh token: its jti, and the SHA-256 of its text. */
  jti: string
  tokenHash: string
  /** The session must have started at or after this (so that the new refresh token does not outlive it). */
  startedAfter: Date
  /** When the presented token is marked rotated: the grace window counts from here. */
  now: Date
  refresh: NewToken
  access: NewToken
  userAgent: string | null
  ip: string | null
}

/**
 * The whole rotation of a live refresh token in one statement, so one round trip and no transaction: it locks the
 * session (as every path that changes a session's tokens does first), marks the presented token rotated, moves the
 * session's expiry and last use, and inserts the new pair, or, when any condition fails, changes nothing and answers
 * no row. A racing rotation of the same token waits for the session's lock, then finds the token rotated already
 * (PostgreSQL re-reads an updated row before it updates it) and changes nothing; its caller takes the slower path
 * that knows about the grace window and reuse.
 */
export const rotateRefreshSql = `with live_session as (
  select id from sessions
  where id = $1 and revoked_at is null and created_at >= $2
  for update
), rotated as (
  update tokens set revoked_at = $3, replaced_by = $4
  where jti = $5 and session_id = $1 and type = 'refresh' and token_hash = $6 and revoked_at is null
    and exists (select from live_session)
  returning user_id
), used as (
  update sessions set last_used_at = $7, expires_at = $8, user_agent = $9, ip = $10
  where id = $1 and exists (select from rotated)
)
insert into tokens (jti, user_id, session_id, type, token_hash, created_at, expires_at)
select new.jti, rotated.user_id, $1, new.type, new.token_hash, new.created_at, new.expires_at
from rotated, (values
  ($4::uuid, 'refresh', $11, $7::timestamptz, $8::timestamptz),
  ($12::uuid, 'access', $13, $14::timestamptz, $15::timestamptz)
) as new (jti, type, token_hash, created_at, expires_at)
returning jti`

/** Runs the rotation; true when it happened. */
export async function rotateRefresh (query: Query, rotation: Rotation): Promise<boolean> {
  const { sessionId, refresh, access } = rotation
  const time = (date: Date) => date.toISOString()
  const rows = await query(rotateRefreshSql, [
    sessionId, time(rotation.startedAfter), time(rotation.now), refresh.jti, rotation.jti, rotation.tokenHash,
    time(refresh.createdAt), time(refresh.expiresAt), rotation.userAgent, rotation.ip, refresh.tokenHash,
    access.jti, access.tokenHash, time(access.createdAt), time(access.expiresAt)
  ])
  return rows.length === 2
}
