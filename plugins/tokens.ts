import { createHash, createPublicKey, randomUUID, type KeyObject } from 'node:crypto'
import fastifyJwt from '@fastify/jwt'
import { and, asc, eq, gt, isNotNull, isNull, max } from 'drizzle-orm'
import type { FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { Database } from '../src/db/connect.js'
import { sessions, tokens, users } from '../src/db/schema.js'
import { apiError, tokenError } from '../src/errors.js'
import { publicJwk, type PublicJwk } from '../src/keys.js'

export interface TokenOptions {
  signingKey: KeyObject
  /** Seconds. */
  accessTokenTtl: number
  /** Seconds. */
  refreshTokenTtl: number
  issuer: string
  audience: string
}

export interface TokenClaims {
  sub: string
  /** The same user id as sub, as a number, for SimpleJWT clients. */
  user_id: number
  sid: string
  jti: string
  token_type: 'access' | 'refresh'
  iat: number
  exp: number
  iss: string
  aud: string
}

export interface AccessClaims extends TokenClaims {
  token_type: 'access'
  username: string
}

export interface TokenPair {
  access: string
  refresh: string
  token_type: 'Bearer'
  access_expires_at: string
  refresh_expires_at: string
}

export interface ClientInfo {
  userAgent?: string
  ip?: string
}

export interface TokenService {
  jwks: { keys: PublicJwk[] }
  /** Opens a session for a user who just proved who they are. */
  startSession: (user: { id: number, username: string }, client: ClientInfo) => Promise<TokenPair>
  /** Rotates a refresh token: the presented one stops working. */
  refresh: (refreshToken: string) => Promise<TokenPair>
  /** Revokes the session of a refresh token, with every token issued in it. */
  logout: (refreshToken: string) => Promise<void>
  /** Signature, claims, expiry and revocation; no database round trip. */
  verifyAccess: (accessToken: string) => AccessClaims
  /** How many revoked sessions still have unexpired access tokens. */
  revokedSessionCount: () => number
}

declare module '@fastify/jwt' {
  interface FastifyJWT {
    payload: TokenClaims
    user: AccessClaims
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    tokens: TokenService
    /** An onRequest hook: sets request.user from a valid `Authorization: Bearer <access>`. */
    authenticate: (request: FastifyRequest) => Promise<void>
  }
}

const sha256 = (token: string) => createHash('sha256').update(token).digest('hex')
const fromSeconds = (seconds: number) => new Date(seconds * 1000)
const invalidToken = () => tokenError('token_invalid', 'Token is invalid or malformed')

export default fp<TokenOptions>(async (fastify, options) => {
  const { db } = fastify
  const jwk = publicJwk(options.signingKey)

  await fastify.register(fastifyJwt, {
    secret: {
      private: options.signingKey.export({ format: 'pem', type: 'pkcs8' }) as string,
      public: createPublicKey(options.signingKey).export({ format: 'pem', type: 'spki' }) as string
    },
    sign: { algorithm: 'EdDSA', kid: jwk.kid },
    verify: {
      algorithms: ['EdDSA'],
      allowedIss: options.issuer,
      allowedAud: options.audience,
      requiredClaims: ['exp', 'iat', 'iss', 'aud', 'sub', 'sid', 'jti', 'token_type'],
      cache: true
    }
  })

  // Sessions revoked while some of their access tokens are unexpired: session id -> when the last
  // of them expires (ms). Entries are kept in expiry order, so pruning stops at the first live one.
  const revokedSessions = new Map<string, number>()

  function rememberRevokedSession (sessionId: string, until: number) {
    const now = Date.now()
    for (const [id, expires] of revokedSessions) {
      if (expires > now) break
      revokedSessions.delete(id)
    }
    revokedSessions.delete(sessionId)
    revokedSessions.set(sessionId, until)
  }

  fastify.addHook('onReady', async () => {
    const rows = await db
      .select({ sessionId: tokens.sessionId, until: max(tokens.expiresAt) })
      .from(tokens)
      .where(and(eq(tokens.type, 'access'), isNotNull(tokens.revokedAt), gt(tokens.expiresAt, new Date())))
      .groupBy(tokens.sessionId)
      .orderBy(asc(max(tokens.expiresAt)))
    for (const { sessionId, until } of rows) revokedSessions.set(sessionId, (until as Date).getTime())
  })

  function verify (token: string, type: TokenClaims['token_type']): TokenClaims {
    let claims: TokenClaims
    try {
      claims = fastify.jwt.verify<TokenClaims>(token)
    } catch (error) {
      if ((error as { code?: string }).code === 'FAST_JWT_EXPIRED') throw tokenError('token_expired', 'Token is expired')
      throw invalidToken()
    }
    if (claims.token_type !== type) throw tokenError('token_invalid', 'Token has wrong type')
    return claims
  }

  function verifyAccess (accessToken: string): AccessClaims {
    const claims = verify(accessToken, 'access') as AccessClaims
    if (revokedSessions.has(claims.sid)) throw tokenError('token_revoked', 'Token has been revoked')
    return claims
  }

  /** Signs a new access and refresh token for a session, and the rows that record them. */
  function mint (user: { id: number, username: string }, sessionId: string) {
    const iat = Math.floor(Date.now() / 1000)
    const common = { sub: String(user.id), user_id: user.id, sid: sessionId, iat, iss: options.issuer, aud: options.audience }
    const accessClaims = { ...common, jti: randomUUID(), token_type: 'access' as const, exp: iat + options.accessTokenTtl, username: user.username }
    const refreshClaims = { ...common, jti: randomUUID(), token_type: 'refresh' as const, exp: iat + options.refreshTokenTtl }
    const access = fastify.jwt.sign(accessClaims)
    const refresh = fastify.jwt.sign(refreshClaims)
    const row = (claims: TokenClaims, token: string) => ({
      jti: claims.jti,
      userId: user.id,
      sessionId,
      type: claims.token_type,
      tokenHash: sha256(token),
      createdAt: fromSeconds(claims.iat),
      expiresAt: fromSeconds(claims.exp)
    })
    return {
      pair: {
        access,
        refresh,
        token_type: 'Bearer' as const,
        access_expires_at: fromSeconds(accessClaims.exp).toISOString(),
        refresh_expires_at: fromSeconds(refreshClaims.exp).toISOString()
      },
      rows: [row(accessClaims, access), row(refreshClaims, refresh)],
      issuedAt: fromSeconds(iat),
      refreshJti: refreshClaims.jti,
      refreshExpiresAt: fromSeconds(refreshClaims.exp)
    }
  }

  /** Locks the row of a presented refresh token; throws unless it and its session are live. */
  async function lockRefreshToken (tx: Database, refreshToken: string, claims: TokenClaims) {
    const [row] = await tx
      .select({ tokenHash: tokens.tokenHash, revokedAt: tokens.revokedAt, sessionRevokedAt: sessions.revokedAt, username: users.username })
      .from(tokens)
      .innerJoin(sessions, eq(sessions.id, tokens.sessionId))
      .innerJoin(users, eq(users.id, tokens.userId))
      .where(eq(tokens.jti, claims.jti))
      .for('update', { of: tokens })
    if (row === undefined || row.tokenHash !== sha256(refreshToken)) throw invalidToken()
    if (row.revokedAt !== null || row.sessionRevokedAt !== null) throw tokenError('token_revoked', 'Token has been revoked')
    return row
  }

  const service: TokenService = {
    jwks: { keys: [jwk] },

    async startSession (user, client) {
      const sessionId = randomUUID()
      const { pair, rows, issuedAt, refreshExpiresAt } = mint(user, sessionId)
      await db.transaction(async (tx) => {
        await tx.insert(sessions).values({
          id: sessionId,
          userId: user.id,
          createdAt: issuedAt,
          lastUsedAt: issuedAt,
          expiresAt: refreshExpiresAt,
          userAgent: client.userAgent?.slice(0, 512),
          ip: client.ip
        })
        await tx.insert(tokens).values(rows)
      })
      return pair
    },

    async refresh (refreshToken) {
      const claims = verify(refreshToken, 'refresh')
      return db.transaction(async (tx) => {
        const row = await lockRefreshToken(tx, refreshToken, claims)
        const { pair, rows, issuedAt, refreshJti, refreshExpiresAt } = mint({ id: claims.user_id, username: row.username }, claims.sid)
        await tx.update(tokens).set({ revokedAt: issuedAt, replacedBy: refreshJti }).where(eq(tokens.jti, claims.jti))
        await tx.update(sessions).set({ lastUsedAt: issuedAt, expiresAt: refreshExpiresAt }).where(eq(sessions.id, claims.sid))
        await tx.insert(tokens).values(rows)
        return pair
      })
    },

    async logout (refreshToken) {
      const claims = verify(refreshToken, 'refresh')
      const now = new Date()
      await db.transaction(async (tx) => {
        await lockRefreshToken(tx, refreshToken, claims)
        await tx.update(sessions).set({ revokedAt: now }).where(eq(sessions.id, claims.sid))
        await tx.update(tokens).set({ revokedAt: now }).where(and(eq(tokens.sessionId, claims.sid), isNull(tokens.revokedAt)))
      })
      // Every access token of the session was issued before now, so none outlives this.
      rememberRevokedSession(claims.sid, now.getTime() + options.accessTokenTtl * 1000)
    },

    verifyAccess,
    revokedSessionCount: () => revokedSessions.size
  }

  fastify.decorate('tokens', service)
  fastify.decorate('authenticate', async (request: FastifyRequest) => {
    const header = request.headers.authorization
    if (header === undefined) {
      throw apiError(401, 'not_authenticated', 'Authentication credentials were not provided.', {
        headers: { 'www-authenticate': 'Bearer realm="api"' }
      })
    }
    const [scheme, token, ...rest] = header.split(' ')
    if (scheme?.toLowerCase() !== 'bearer' || !token || rest.length > 0) throw invalidToken()
    request.user = verifyAccess(token)
  })
}, { name: 'tokens', dependencies: ['db'] })
