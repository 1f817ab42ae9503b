// Fills a migrated PostgreSQL database with users, sessions and tokens as months of use would leave them, in
// set-based SQL (INSERT … SELECT over generate_series), with every index in place as in production. For
// `npm run bench -- --rows <N>` (bench/growth.ts).
import { hash } from '@node-rs/argon2'
import type postgres from 'postgres'
import { argon2Parameters } from '../plugins/password.js'

/**
 * Every session had a login and four refreshes, a day apart: five rounds of an access and a refresh token, the
 * four older refresh tokens rotated (revoked, replaced_by the next). Sessions come in sixes:
 * - one finished: its last refresh expired over five days ago, so all ten of its rows are expired;
 * - one logged out a day ago: all ten revoked, the access tokens expired, the refresh tokens not yet;
 * - four live, last used within the last ten minutes: the newest access token live, the four older ones expired.
 * So 31 rows in 60 are expired and 30 revoked; access and refresh tokens are half each.
 */
export const tokensPerSession = 10
export const sessionsPerUser = 4
/** Sessions inserted per statement: a progress line each. */
const chunk = 50_000

export interface Filled {
  users: number
  sessions: number
  tokens: number
  /** The moment the rows' times are relative to. */
  now: Date
  /** Seconds spent inserting, then in VACUUM ANALYZE. */
  insertSeconds: number
  vacuumSeconds: number
}

// A v4-shaped UUID from the MD5 of a text: the same text, the same UUID, so that rows can name each other.
const uuidOf = (text: string) => `overlay(overlay(md5(${text}) placing '4' from 13) placing '8' from 17)::uuid`
const sessionId = uuidOf('\'fill-session-\' || s')
const jti = (round: string, type: string) => uuidOf(`'fill-token-' || s || '-' || ${round} || ${type}`)

// Per session s: kind 0 finished, 1 logged out, else live; `started` is its login, round j is `started + j days`.
const sessionsOf = `
  select s, s % 6 as kind, users.id as user_id,
    $3::timestamptz - case s % 6
      when 0 then interval '39 days' + (s % 86400) * interval '1 second'
      when 1 then interval '5 days' + (s % 600) * interval '1 second'
      else interval '4 days' + (s % 600) * interval '1 second' end as started
  from generate_series($1::int, $2::int) s
  join users on users.username_key = 'fill' || (s % $4::int)`

const insertSessions = `
  insert into sessions (id, user_id, created_at, last_used_at, expires_at, revoked_at, user_agent, ip)
  select ${sessionId}, user_id, started, started + interval '4 days', started + interval '34 days',
    case when kind = 1 then started + interval '4 days 1 hour' end,
    'Mozilla/5.0 (bench fill)', '198.51.100.' || (s % 250)
  from (${sessionsOf}) s`

const insertTokens = `
  insert into tokens (jti, user_id, session_id, type, token_hash, created_at, expires_at, revoked_at, replaced_by)
  select ${jti('j', 'type')}, user_id, ${sessionId}, type,
    encode(sha256(convert_to('fill-token-' || s || '-' || j || type, 'UTF8')), 'hex'),
    started + j * interval '1 day',
    started + j * interval '1 day' + case type when 'access' then interval '15 minutes' else interval '30 days' end,
    case
      when type = 'refresh' and j < 4 then started + (j + 1) * interval '1 day'
      when kind = 1 then started + interval '4 days 1 hour'
    end,
    case when type = 'refresh' and j < 4 then ${jti('(j + 1)', 'type')} end
  from (${sessionsOf}) s
  cross join generate_series(0, 4) j
  cross join (values ('access'), ('refresh')) t(type)`

/** Inserts about `tokens` token rows (whole sessions of ten), their sessions and their users, then VACUUM ANALYZE. */
export async function fill (sql: postgres.Sql, tokens: number, log: (line: string) => void): Promise<Filled> {
  const sessions = Math.max(1, Math.floor(tokens / tokensPerSession))
  const users = Math.ceil(sessions / sessionsPerUser)
  const now = new Date()
  const started = performance.now()
  // One real hash, of the bench's password, for every user: they could log in.
  const passwordHash = await hash('correct horse battery staple', argon2Parameters)
  await sql.unsafe(`
    insert into users (username, username_key, username_skeleton, username_skeleton_lower, username_skeleton_shown,
      email, email_key, password_hash, email_verified, created_at)
    select 'fill' || u, 'fill' || u, 'fill' || u, 'fill' || u, 'fill' || u,
      'fill' || u || '@example.com', 'fill' || u || '@example.com', $1, true, $2::timestamptz - interval '100 days'
    from generate_series(0, $3::int - 1) u`, [passwordHash, now, users])
  log(`fill: ${users.toLocaleString('en')} users`)
  for (let first = 0; first < sessions; first += chunk) {
    const parameters = [first, Math.min(first + chunk, sessions) - 1, now, users]
    await sql.begin(async (sql) => {
      // The rows are consistent by construction: checking both foreign keys of every token row took 2.5 times as long.
      // Every index is maintained as in production. Needs a superuser, as the bench's scratch database has.
      await sql.unsafe('set local session_replication_role = replica')
      await sql.unsafe(insertSessions, parameters)
      await sql.unsafe(insertTokens, parameters)
    })
    log(`fill: ${Math.min(first + chunk, sessions).toLocaleString('en')} of ${sessions.toLocaleString('en')} sessions, ${((performance.now() - started) / 1000).toFixed(0)} s`)
  }
  const inserted = performance.now()
  // As autovacuum would have left a table this old: statistics for the planner, and the visibility map.
  await sql.unsafe('vacuum (analyze) users, sessions, tokens')
  const done = performance.now()
  return { users, sessions, tokens: sessions * tokensPerSession, now, insertSeconds: (inserted - started) / 1000, vacuumSeconds: (done - inserted) / 1000 }
}

export interface Census {
  type: 'access' | 'refresh'
  expired: boolean
  revoked: boolean
  count: number
}

/** The token rows by type, expired at `now` or not, and revoked or not. */
export async function census (sql: postgres.Sql, now: Date): Promise<Census[]> {
  return await sql<Census[]>`
    select type, expires_at < ${now} as expired, revoked_at is not null as revoked, count(*)::int as count
    from tokens group by 1, 2, 3 order by 1, 2, 3`
}

export interface RelationSize {
  name: string
  /** The table an index belongs to; undefined for a table. */
  table?: string
  bytes: number
}

/** The sizes of the users, sessions and tokens tables (heap and TOAST) and of each of their indexes. */
export async function relationSizes (sql: postgres.Sql): Promise<RelationSize[]> {
  const rows = await sql<Array<{ name: string, owner: string | null, bytes: string }>>`
    select c.relname::text as name, null::text as owner, pg_table_size(c.oid) as bytes, c.relname::text as sort
    from pg_class c where c.oid in ('users'::regclass, 'sessions'::regclass, 'tokens'::regclass)
    union all
    select i.indexrelid::regclass::text, t.relname::text, pg_relation_size(i.indexrelid), t.relname || ' ' || i.indexrelid::regclass::text
    from pg_index i join pg_class t on t.oid = i.indrelid
    where i.indrelid in ('users'::regclass, 'sessions'::regclass, 'tokens'::regclass)
    order by sort`
  return rows.map((row) => ({ name: row.name, ...(row.owner === null ? {} : { table: row.owner }), bytes: Number(row.bytes) }))
}
