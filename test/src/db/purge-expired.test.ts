import { randomUUID } from 'node:crypto'
import { eq } from 'drizzle-orm'
import t from 'tap'
import type { Database } from '../../../src/db/connect.js'
import { purgeExpired } from '../../../src/db/purge-expired.js'
import { authEvents, legacyRevokedJtis, mailOutbox, mailTokens, revokedSessions, sessions, tokens, users, webhookOutbox } from '../../../src/db/schema.js'
import { build, capturedWithin, closeDatabase, testEnvironment } from '../../helper.js'

const past = (seconds: number) => new Date(Date.now() - seconds * 1000)
const future = (seconds: number) => new Date(Date.now() + seconds * 1000)

/** A user with: a live session; a finished one; a finished one whose last access token still lives. */
async function seed (db: Database) {
  const [user] = await db.insert(users).values({ username: 'p', usernameKey: `p${randomUUID()}`, email: 'p@example.com', emailKey: `${randomUUID()}@example.com`, passwordHash: 'x' }).returning()
  const session = async (expiresAt: Date) => {
    const id = randomUUID()
    await db.insert(sessions).values({ id, userId: user!.id, createdAt: past(7200), lastUsedAt: past(3600), expiresAt })
    return id
  }
  const token = (sessionId: string, type: 'access' | 'refresh', expiresAt: Date) =>
    db.insert(tokens).values({ jti: randomUUID(), userId: user!.id, sessionId, type, tokenHash: 'h', createdAt: past(7200), expiresAt })
  const live = await session(future(3600))
  await token(live, 'refresh', past(60)) // rotated long ago, expired
  await token(live, 'access', past(60))
  await token(live, 'refresh', future(3600))
  const finished = await session(past(60))
  await token(finished, 'refresh', past(60))
  await token(finished, 'access', past(120))
  const lingering = await session(past(60))
  await token(lingering, 'access', future(600))
  return { live, finished, lingering }
}

t.test('purgeExpired deletes expired rows in batches and keeps live ones', async (t) => {
  const app = await build(t, await testEnvironment(t, { PURGE_INTERVAL: '0' }))
  const { live, finished, lingering } = await seed(app.db)
  t.same(await purgeExpired(app.db, { batchSize: 2 }), { tokens: 4, sessions: 1, mailTokens: 0, mails: 0, events: 0 })
  t.same((await app.db.select({ id: sessions.id }).from(sessions)).map((row) => row.id).sort(), [live, lingering].sort())
  t.equal(await app.db.$count(tokens, eq(tokens.sessionId, live)), 1, 'the live refresh token is kept')
  t.equal(await app.db.$count(tokens, eq(tokens.sessionId, lingering)), 1, 'an unexpired access token keeps its session')
  t.same(await purgeExpired(app.db), { tokens: 0, sessions: 0, mailTokens: 0, mails: 0, events: 0 }, 'nothing left to do')
  t.equal(await app.db.$count(sessions, eq(sessions.id, finished)), 0)
})

t.test('mailed tokens go an hour after they expire; sent and failed mails after a week; queued ones stay', async (t) => {
  const app = await build(t, await testEnvironment(t, { PURGE_INTERVAL: '0' }))
  const [user] = await app.db.insert(users).values({ username: 'm', usernameKey: `m${randomUUID()}`, email: 'm@example.com', emailKey: `${randomUUID()}@example.com`, passwordHash: 'x' }).returning()
  const mailToken = async (expiresAt: Date) => {
    const id = randomUUID()
    await app.db.insert(mailTokens).values({ id, userId: user!.id, kind: 'password_reset', email: 'm@example.com', emailKey: 'm@example.com', tokenHash: randomUUID(), codeHmac: 'c', createdAt: past(7200), expiresAt, codeExpiresAt: expiresAt })
    return id
  }
  await mailToken(past(3700))
  const counted = await mailToken(past(60))
  const mail = async (status: 'queued' | 'sent' | 'failed', createdAt: Date) => {
    const [row] = await app.db.insert(mailOutbox).values({ kind: 'password_changed', recipient: 'm@example.com', status, createdAt }).returning({ id: mailOutbox.id })
    return row!.id
  }
  const old = past(8 * 86400)
  await mail('sent', old)
  await mail('failed', old)
  const queued = await mail('queued', old)
  const recent = await mail('sent', past(60))
  t.same(await purgeExpired(app.db), { tokens: 0, sessions: 0, mailTokens: 1, mails: 2, events: 0 })
  t.same((await app.db.select({ id: mailTokens.id }).from(mailTokens)).map((row) => row.id), [counted], 'an expired token still counts for its hour')
  t.same((await app.db.select({ id: mailOutbox.id }).from(mailOutbox).orderBy(mailOutbox.id)).map((row) => row.id), [queued, recent], 'a queued mail is the worker\'s')
})

t.test('tombstones of deleted users\' sessions, and the old service\'s blacklist, go once expired', async (t) => {
  const app = await build(t, await testEnvironment(t, { PURGE_INTERVAL: '0' }))
  const live = randomUUID()
  await app.db.insert(revokedSessions).values([{ sessionId: randomUUID(), expiresAt: past(1) }, { sessionId: live, expiresAt: future(600) }])
  await app.db.insert(legacyRevokedJtis).values([{ jtiHash: 'expired', expiresAt: past(1) }, { jtiHash: 'live', expiresAt: future(600) }])
  await purgeExpired(app.db)
  t.same((await app.db.select({ id: revokedSessions.sessionId }).from(revokedSessions)).map((row) => row.id), [live])
  t.same((await app.db.select({ hash: legacyRevokedJtis.jtiHash }).from(legacyRevokedJtis)).map((row) => row.hash), ['live'], 'and the old service\'s blacklist the same way')
})

t.test('audit events go after AUDIT_RETENTION; a deleted user\'s lose their address even when written late', async (t) => {
  const app = await build(t, await testEnvironment(t, { PURGE_INTERVAL: '0', AUDIT_RETENTION: '2d' }))
  const [user] = await app.db.insert(users).values({ username: 'e', usernameKey: `e${randomUUID()}`, email: 'e@example.com', emailKey: `${randomUUID()}@example.com`, passwordHash: 'x' }).returning()
  const event = (createdAt: Date, userId: number | null) => ({ createdAt, type: 'login.succeeded', userId, actor: 'user' as const, ip: '192.0.2.1', userAgent: 'agent' })
  await app.db.insert(authEvents).values([
    event(past(91 * 86400), user!.id), event(past(91 * 86400), null), event(past(3 * 86400), user!.id), event(past(60), user!.id),
    // Written by an instance that had not seen the deletion of user 2147483647 commit.
    event(past(60), 2147483647), event(past(60), null)
  ])
  t.equal((await purgeExpired(app.db, { batchSize: 1 })).events, 2, 'older than 90 days: the default retention')
  t.equal((await app.purgeExpired()).events, 1, 'AUDIT_RETENTION=2d')
  const left = await app.db.select().from(authEvents).orderBy(authEvents.id)
  t.same(left.map((row) => [row.userId, row.ip, row.userAgent]), [[user!.id, '192.0.2.1', 'agent'], [2147483647, null, null], [null, '192.0.2.1', 'agent']])
})

t.test('webhook deliveries sent or failed over a week ago go; queued and recent ones stay', async (t) => {
  const app = await build(t, await testEnvironment(t, { PURGE_INTERVAL: '0' }))
  const delivery = (status: 'queued' | 'sent' | 'failed', createdAt: Date) => ({ messageId: `msg_${randomUUID()}`, url: 'http://127.0.0.1:9/hooks', type: 'user.deleted', status, createdAt })
  await app.db.insert(webhookOutbox).values([delivery('sent', past(8 * 86400)), delivery('failed', past(8 * 86400)), delivery('queued', past(8 * 86400)), delivery('sent', past(60))])
  await purgeExpired(app.db)
  t.same((await app.db.select({ status: webhookOutbox.status }).from(webhookOutbox).orderBy(webhookOutbox.id)).map((row) => row.status), ['queued', 'sent'])
})

t.test('instances purging at once share the work', async (t) => {
  const app = await build(t, await testEnvironment(t, { PURGE_INTERVAL: '0' }))
  for (let i = 0; i < 5; i++) await seed(app.db)
  const results = await Promise.all([purgeExpired(app.db, { batchSize: 3 }), purgeExpired(app.db, { batchSize: 3 }), purgeExpired(app.db, { batchSize: 3 })])
  t.equal(results.reduce((sum, result) => sum + result.tokens, 0), 20)
  t.equal(results.reduce((sum, result) => sum + result.sessions, 0), 5)
})

t.test('PURGE_INTERVAL runs the purge periodically, and a failure is logged, not thrown', async (t) => {
  const app = await build(t, await testEnvironment(t, { PURGE_INTERVAL: '1s' }))
  const { finished } = await seed(app.db)
  const deadline = Date.now() + 5000
  while (await app.db.$count(sessions, eq(sessions.id, finished)) > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  t.equal(await app.db.$count(sessions, eq(sessions.id, finished)), 0, 'purged by the job')

  const logged = t.capture(app.log, 'error')
  await closeDatabase(app)
  // The mailer's worker fails too, with lines of its own.
  const purgeFailures = () => logged().filter((call) => call.args[1] === 'purging expired rows failed')
  const calls = await capturedWithin(purgeFailures, 5000)
  t.match(calls[0]?.args, [{ err: Error }, 'purging expired rows failed'])
})
