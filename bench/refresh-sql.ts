// Ceiling 3: the SQL statements of one refresh (plugins/sessions.ts, as PostgreSQL logs them), in one
// transaction, straight through postgres.js: no HTTP, no drizzle, no JWT.
import { createHash, randomUUID } from 'node:crypto'
import postgres from 'postgres'
import { loop, type LoopOptions } from './loop.js'

const { databaseUrl, poolSize, ...options } = JSON.parse(process.argv[2]!) as LoopOptions & { databaseUrl: string, poolSize: number }
const sql = postgres(databaseUrl, { max: poolSize })
const hash = (value: string) => createHash('sha256').update(value).digest('hex')
const later = (seconds: number) => new Date(Date.now() + seconds * 1000)

const [user] = await sql<[{ id: number }]>`
  insert into users (username, username_key, email, email_key, password_hash)
  values (${'ceiling'}, ${`ceiling-${randomUUID()}`}, ${'ceiling@example.com'}, ${`${randomUUID()}@example.com`}, ${'x'})
  returning id`
// One session per chain, each holding the refresh token its next round presents.
const chains = await Promise.all(Array.from({ length: options.inFlight }, async () => {
  const sessionId = randomUUID()
  const jti = randomUUID()
  await sql`insert into sessions (id, user_id, created_at, last_used_at, expires_at) values (${sessionId}, ${user.id}, now(), now(), ${later(86400)})`
  await sql`insert into tokens (jti, user_id, session_id, type, token_hash, created_at, expires_at)
    values (${jti}, ${user.id}, ${sessionId}, 'refresh', ${hash(jti)}, now(), ${later(86400)})`
  return { sessionId, jti }
}))

async function refresh (chain: { sessionId: string, jti: string }) {
  const now = new Date()
  const access = randomUUID()
  const next = randomUUID()
  await sql.begin(async (sql) => {
    const [session] = await sql`select "created_at", "revoked_at" from "sessions" where "sessions"."id" = ${chain.sessionId} for update`
    const [token] = await sql`select "tokens"."token_hash", "tokens"."revoked_at", "tokens"."replaced_by", "users"."username" from "tokens"
      inner join "users" on "users"."id" = "tokens"."user_id"
      where ("tokens"."jti" = ${chain.jti} and "tokens"."session_id" = ${chain.sessionId}) for update of "tokens"`
    /* c8 ignore next: each chain is driven by one worker, so its token is always the live one */
    if (session === undefined || token === undefined || token.revoked_at !== null) throw new Error('chain broken')
    await sql`update "tokens" set "revoked_at" = ${now}, "replaced_by" = ${next} where "tokens"."jti" = ${chain.jti}`
    await sql`update "sessions" set "last_used_at" = ${now}, "expires_at" = ${later(86400)} where "sessions"."id" = ${chain.sessionId}`
    await sql`insert into "tokens" ("jti", "user_id", "session_id", "type", "token_hash", "created_at", "expires_at", "revoked_at", "replaced_by")
      values (${access}, ${user.id}, ${chain.sessionId}, 'access', ${hash(access)}, ${now}, ${later(900)}, default, default),
             (${next}, ${user.id}, ${chain.sessionId}, 'refresh', ${hash(next)}, ${now}, ${later(86400)}, default, default)`
  })
  chain.jti = next
}

const result = await loop((worker) => refresh(chains[worker]!), options)
await sql.end()
process.send!(result, () => process.disconnect())
