// Ceiling 3: the SQL of one refresh (src/db/rotate-refresh.ts, the very statement the service sends), straight
// through postgres.js: no HTTP, no drizzle, no JWT. Each chain presents the token its previous round inserted.
import { createHash, randomUUID } from 'node:crypto'
import postgres from 'postgres'
import { rotateRefresh } from '../src/db/rotate-refresh.js'
import { loop, type LoopOptions } from './loop.js'

const { databaseUrl, poolSize, ...options } = JSON.parse(process.argv[2]!) as LoopOptions & { databaseUrl: string, poolSize: number }
const sql = postgres(databaseUrl, { max: poolSize })
const query = async <T>(text: string, params: unknown[]) => await sql.unsafe(text, params as string[], { prepare: true }) as unknown as T[]
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
  const newToken = (seconds: number) => { const jti = randomUUID(); return { jti, tokenHash: hash(jti), createdAt: now, expiresAt: later(seconds) } }
  const refresh = newToken(86400)
  const rotated = await rotateRefresh(query, {
    sessionId: chain.sessionId,
    jti: chain.jti,
    tokenHash: hash(chain.jti),
    startedAfter: new Date(0),
    now,
    refresh,
    access: newToken(900),
    userAgent: 'autocannon',
    ip: '127.0.0.1'
  })
  /* c8 ignore next: each chain is driven by one worker, so its token is always the live one */
  if (!rotated) throw new Error('chain broken')
  chain.jti = refresh.jti
}

const result = await loop((worker) => refresh(chains[worker]!), options)
await sql.end()
process.send!(result, () => process.disconnect())
