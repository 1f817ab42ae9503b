import { createPublicKey, generateKeyPairSync } from 'node:crypto'
import Fastify from 'fastify'
import { jwtVerify } from 'jose'
import t from 'tap'
import db from '../../plugins/db.js'
import tokens from '../../plugins/tokens.js'
import { users } from '../../src/db/schema.js'
import { freshDatabase, postgresUrl } from '../helper.js'

t.test('tokens plugin on its own', async (t) => {
  const { privateKey } = generateKeyPairSync('ed25519')
  const app = Fastify()
  const databaseUrl = postgresUrl === undefined ? undefined : await freshDatabase(t, postgresUrl)
  await app.register(db, { databaseUrl, dataDir: t.testdir(), databasePoolSize: 2 })
  await app.register(tokens, { signingKey: privateKey, accessTokenTtl: 60, refreshTokenTtl: 3600, issuer: 'https://issuer.test', audience: 'mobile' })
  app.get('/private', { onRequest: app.authenticate }, async (request) => ({ user: request.user.sub }))
  await app.ready()
  t.teardown(() => app.close())

  const [user] = await app.db.insert(users)
    .values({ username: 'solo', usernameKey: 'solo', email: 'solo@example.com', emailKey: 'solo@example.com', passwordHash: 'x' })
    .returning()
  const pair = await app.tokens.startSession({ id: user!.id, username: 'solo' }, { userAgent: 'ua', ip: '10.0.0.1' })

  t.test('signs with the given key, issuer, audience and lifetimes', async (t) => {
    const { payload, protectedHeader } = await jwtVerify(pair.access, createPublicKey(privateKey), { issuer: 'https://issuer.test', audience: 'mobile', algorithms: ['EdDSA'] })
    t.equal(protectedHeader.kid, app.tokens.jwks.keys[0]!.kid)
    t.equal(payload.exp! - payload.iat!, 60)
    t.match(app.tokens.verifyAccess(pair.access), { sub: String(user!.id), username: 'solo', token_type: 'access' })
    const refresh = await jwtVerify(pair.refresh, createPublicKey(privateKey), { issuer: 'https://issuer.test', audience: 'mobile' })
    t.equal(refresh.payload.exp! - refresh.payload.iat!, 3600)
  })

  t.test('authenticate sets request.user or answers 401', async (t) => {
    const ok = await app.inject({ method: 'GET', url: '/private', headers: { authorization: `Bearer ${pair.access}` } })
    t.same(ok.json(), { user: String(user!.id) })
    t.equal((await app.inject({ method: 'GET', url: '/private' })).statusCode, 401)
    t.equal((await app.inject({ method: 'GET', url: '/private', headers: { authorization: `Bearer ${pair.refresh}` } })).statusCode, 401)
  })

  t.test('rotation and logout', async (t) => {
    const rotated = await app.tokens.refresh(pair.refresh)
    await t.rejects(app.tokens.refresh(pair.refresh), { statusCode: 401, code: 'token_revoked' })
    await app.tokens.logout(rotated.refresh)
    t.equal(app.tokens.revokedSessionCount(), 1)
    t.throws(() => app.tokens.verifyAccess(rotated.access), { statusCode: 401, code: 'token_revoked' })
    t.throws(() => app.tokens.verifyAccess(pair.access), { statusCode: 401, code: 'token_revoked' })
  })
})
