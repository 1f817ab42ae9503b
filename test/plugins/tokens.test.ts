import { createPublicKey, generateKeyPairSync } from 'node:crypto'
import { eq } from 'drizzle-orm'
import Fastify from 'fastify'
import { jwtVerify } from 'jose'
import t from 'tap'
import db from '../../plugins/db.js'
import metrics from '../../plugins/metrics.js'
import password from '../../plugins/password.js'
import revocations from '../../plugins/revocations.js'
import sessions from '../../plugins/sessions.js'
import tokens, { type TokenPair } from '../../plugins/tokens.js'
import usersRepository from '../../plugins/users.js'
import webhooks from '../../plugins/webhooks.js'
import { sessions as sessionsTable, tokens as tokensTable, users } from '../../src/db/schema.js'
import { publicJwk } from '../../src/keys.js'
import { capturedWithin, closeDatabase, freshDatabase, postgresUrl } from '../helper.js'

t.test('the token plugins on their own: revocations, tokens, sessions', async (t) => {
  const { privateKey } = generateKeyPairSync('ed25519')
  const previous = generateKeyPairSync('ed25519')
  // PGlite compiles its WASM and migrates at start: slow on a busy machine, as in the service's own options.
  const app = Fastify({ pluginTimeout: 120_000 })
  const databaseUrl = postgresUrl === undefined ? undefined : await freshDatabase(t, postgresUrl)
  await app.register(db, { databaseUrl, dataDir: t.testdir(), databasePoolSize: 2 })
  await app.register(usersRepository)
  await app.register(revocations, { accessTokenTtl: 60 })
  await app.register(tokens, { signingKey: privateKey, previousPublicKeys: [previous.publicKey], accessTokenTtl: 60, refreshTokenTtl: 3600, issuer: 'https://issuer.test', audience: 'mobile' })
  // What sessions tell of their revocations, here to nobody: no WEBHOOK_URLS.
  await app.register(password, { concurrency: 1, queue: 1 })
  await app.register(metrics, {})
  await app.register(webhooks, { webhooks: { urls: [], retryFor: 60, timeout: 1 } })
  await app.register(sessions, { sessionMaxAge: 7200, refreshReuseGrace: 10 })
  app.get('/private', { onRequest: app.authenticate }, async (request) => ({ user: request.user.sub }))
  await app.ready()
  t.teardown(() => app.close())

  const [user] = await app.db.insert(users)
    .values({ username: 'solo', usernameKey: 'solo', email: 'solo@example.com', emailKey: 'solo@example.com', passwordHash: 'x' })
    .returning()
  const ref = { id: user!.id, username: 'solo', emailVerified: false }
  const { pair } = await app.sessionManager.start(ref, { userAgent: 'ua', ip: '10.0.0.1' }, 'x') as { pair: TokenPair }

  t.test('signs with the given key, issuer, audience and lifetimes', async (t) => {
    const { payload, protectedHeader } = await jwtVerify(pair.access, createPublicKey(privateKey), { issuer: 'https://issuer.test', audience: 'mobile', algorithms: ['EdDSA'] })
    t.equal(protectedHeader.kid, app.tokenService.jwks.keys[0]!.kid)
    t.equal(payload.exp! - payload.iat!, 60)
    t.match(app.tokenService.verifyAccess(pair.access), { sub: String(user!.id), username: 'solo', token_type: 'access' })
    const refresh = await jwtVerify(pair.refresh, createPublicKey(privateKey), { issuer: 'https://issuer.test', audience: 'https://issuer.test', typ: 'refresh+jwt' })
    t.equal(refresh.payload.exp! - refresh.payload.iat!, 3600)
    t.same(app.tokenService.jwks.keys.map((key) => key.kid), [publicJwk(privateKey).kid, publicJwk(previous.privateKey).kid])
  })

  t.test('signRefresh with earlier claims gives back the very same token', async (t) => {
    const claims = app.tokenService.verify(pair.refresh, 'refresh')
    const again = app.tokenService.signRefresh(ref, claims.sid, new Date(Date.now() + 86400_000), { jti: claims.jti, iat: claims.iat, exp: claims.exp })
    t.equal(again.token, pair.refresh)
    t.equal(app.tokenService.verify(pair.access).token_type, 'access', 'verify without a type takes either')
  })

  t.test('authenticate sets request.user or answers 401', async (t) => {
    const ok = await app.inject({ method: 'GET', url: '/private', headers: { authorization: `Bearer ${pair.access}` } })
    t.same(ok.json(), { user: String(user!.id) })
    t.equal((await app.inject({ method: 'GET', url: '/private' })).statusCode, 401)
    t.equal((await app.inject({ method: 'GET', url: '/private', headers: { authorization: `Bearer ${pair.refresh}` } })).statusCode, 401)
  })

  t.test('sessions: list, rotate, revoke one, revoke all but one', async (t) => {
    const { pair: other } = await app.sessionManager.start(ref, {}, 'x') as { pair: TokenPair }
    const listed = await app.sessionManager.list(user!.id)
    t.equal(listed.length, 2)
    t.match(listed.find((row) => row.id === app.tokenService.verify(pair.access).sid), { userAgent: 'ua', ip: '10.0.0.1' })

    const { pair: rotated } = await app.sessionManager.refresh(pair.refresh, { userAgent: 'ua', ip: '10.0.0.1' })
    t.equal((await app.sessionManager.refresh(pair.refresh, { userAgent: 'ua', ip: '10.0.0.1' })).pair.refresh, rotated.refresh, 'a retry within the grace window')
    t.equal(await app.sessionManager.revoke(user!.id, app.tokenService.verify(other.access).sid), true)
    t.equal(await app.sessionManager.revoke(user!.id, app.tokenService.verify(other.access).sid), false, 'already revoked')
    t.throws(() => app.tokenService.verifyAccess(other.access), { statusCode: 401, code: 'token_revoked' })
    const { pair: third } = await app.sessionManager.start(ref, {}, 'x') as { pair: TokenPair }
    t.equal(await app.sessionManager.revokeAll(user!.id, app.tokenService.verify(rotated.access).sid), 1)
    t.throws(() => app.tokenService.verifyAccess(third.access), { code: 'token_revoked' })
    t.equal(app.tokenService.verifyAccess(rotated.access).sid, app.tokenService.verify(pair.access).sid, 'the kept session lives')
    t.equal(app.revocations.size(), 2)
    await app.sessionManager.logout(rotated.refresh)
    t.throws(() => app.tokenService.verifyAccess(pair.access), { code: 'token_revoked' })
    t.same(await app.sessionManager.list(user!.id), [])

    // A client whose address is unknown is recorded with none, and is still the client of its replays.
    const { pair: anonymous } = await app.sessionManager.start(ref, {}, 'x') as { pair: TokenPair }
    const { pair: next } = await app.sessionManager.refresh(anonymous.refresh, {})
    const again = await app.sessionManager.refresh(anonymous.refresh, {})
    t.same([again.pair.refresh, again.replayed], [next.refresh, true])
  })
})

t.test('revocations reload the whole set periodically, a safety net for lost notifications', async (t) => {
  // PGlite compiles its WASM and migrates at start: slow on a busy machine, as in the service's own options.
  const app = Fastify({ pluginTimeout: 120_000 })
  const databaseUrl = postgresUrl === undefined ? undefined : await freshDatabase(t, postgresUrl)
  await app.register(db, { databaseUrl, dataDir: t.testdir(), databasePoolSize: 2 })
  await app.register(usersRepository)
  await app.register(revocations, { accessTokenTtl: 60, resyncInterval: 200 })
  await app.register(tokens, { signingKey: generateKeyPairSync('ed25519').privateKey, previousPublicKeys: [], accessTokenTtl: 60, refreshTokenTtl: 3600, issuer: 'i', audience: 'a' })
  // What sessions tell of their revocations, here to nobody: no WEBHOOK_URLS.
  await app.register(password, { concurrency: 1, queue: 1 })
  await app.register(metrics, {})
  await app.register(webhooks, { webhooks: { urls: [], retryFor: 60, timeout: 1 } })
  await app.register(sessions, { sessionMaxAge: 7200, refreshReuseGrace: 10 })
  await app.ready()
  t.teardown(() => app.close())

  const [user] = await app.db.insert(users)
    .values({ username: 'quiet', usernameKey: 'quiet', email: 'q@example.com', emailKey: 'q@example.com', passwordHash: 'x' })
    .returning()
  const { pair } = await app.sessionManager.start({ id: user!.id, username: 'quiet', emailVerified: false }, {}, 'x') as { pair: TokenPair }
  const sid = app.tokenService.verify(pair.access).sid
  // Revoked behind the service's back: no NOTIFY, nothing remembered.
  await app.db.update(sessionsTable).set({ revokedAt: new Date() }).where(eq(sessionsTable.id, sid))
  await app.db.update(tokensTable).set({ revokedAt: new Date() }).where(eq(tokensTable.sessionId, sid))
  const deadline = Date.now() + 3000
  while (!app.revocations.has(sid) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
  t.ok(app.revocations.has(sid), 'picked up by the periodic reload')

  const errors = t.capture(app.log, 'error')
  await closeDatabase(app)
  const calls = await capturedWithin(errors, 3000)
  t.match(calls[0]?.args, [{ err: Error }, 'reloading revoked sessions failed'], 'a failed reload is logged, not thrown')
})
