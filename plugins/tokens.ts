import { createHash, randomUUID, type KeyObject } from 'node:crypto'
import fastifyJwt from '@fastify/jwt'
import { createSigner } from 'fast-jwt'
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import fp from 'fastify-plugin'
import { messages, notAuthenticated, tokenError } from '../src/errors.js'
import { publicJwk, type PublicJwk } from '../src/keys.js'
import { createTokenVerifier, invalidToken, pem, type AccessClaims, type TokenClaims } from './tokens/verify.js'

export type { AccessClaims, TokenClaims } from './tokens/verify.js'

export interface TokenOptions {
  signingKey: KeyObject
  /** Public keys of earlier signing keys: their tokens verify until they expire. */
  previousPublicKeys: KeyObject[]
  /** Seconds. */
  accessTokenTtl: number
  /** Seconds. */
  refreshTokenTtl: number
  issuer: string
  audience: string
  /** Verified tokens remembered, so that one presented again is not verified again: TOKEN_CACHE_SIZE. */
  tokenCacheSize?: number
}

export interface TokenPair {
  access: string
  refresh: string
  token_type: 'Bearer'
  access_expires_at: string
  refresh_expires_at: string
}

/** A token as signed, with the row that records it. */
export interface IssuedToken {
  token: string
  row: {
    jti: string
    userId: number
    sessionId: string
    type: 'access' | 'refresh'
    tokenHash: string
    createdAt: Date
    expiresAt: Date
  }
}

export interface UserRef {
  id: number
  username: string
  emailVerified: boolean
}

export interface TokenService {
  jwks: { keys: PublicJwk[] }
  /** A new access token of a session. */
  signAccess: (user: UserRef, sessionId: string) => IssuedToken
  /**
   * A refresh token of a session. With jti and iat given it is the very token signed before
   * with those claims (EdDSA signatures are deterministic); its exp is capped at notAfter, if given.
   */
  signRefresh: (user: UserRef, sessionId: string, notAfter: Date | undefined, earlier?: { jti: string, iat: number, exp: number }) => IssuedToken
  /** Signature, claims and expiry of a token, of the given type if one is given; throws a 401 otherwise. */
  verify: (token: string, type?: TokenClaims['token_type']) => TokenClaims
  /** verify, plus the session's revocation; no database round trip. */
  verifyAccess: (accessToken: string) => AccessClaims
  /**
   * The claims of a refresh token of this service's shapes, issuer and audience, not expired; undefined otherwise. The
   * signature is not checked: only for a caller that then finds the token's SHA-256 among the tokens issued.
   */
  readRefresh: (refreshToken: string) => TokenClaims | undefined
}

declare module '@fastify/jwt' {
  interface FastifyJWT {
    payload: TokenClaims
    user: AccessClaims
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    tokenService: TokenService
    /** An onRequest hook: sets request.user from a valid `Authorization: Bearer <access>`. */
    authenticate: (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => void
  }
}

export const sha256 = (token: string) => createHash('sha256').update(token).digest('hex')
/**
 * Explicitly typed tokens (RFC 8725 §3.11): access tokens are `at+jwt` (RFC 9068) for the API's audience;
 * refresh tokens are `refresh+jwt`, and their audience is this service itself (its issuer), so that no
 * relying party that checks `aud` (or `typ`) can take one for an access token.
 */
export const tokenTypes = { access: 'at+jwt', refresh: 'refresh+jwt' } as const
/** TOKEN_CACHE_SIZE's default: a working set of 10,000 clients, about 10 MB. */
export const defaultTokenCacheSize = 10_000
const toSeconds = (date: Date) => Math.floor(date.getTime() / 1000)

export function toPair (access: IssuedToken, refresh: IssuedToken): TokenPair {
  return {
    access: access.token,
    refresh: refresh.token,
    token_type: 'Bearer',
    access_expires_at: access.row.expiresAt.toISOString(),
    refresh_expires_at: refresh.row.expiresAt.toISOString()
  }
}

/** Signs tokens (through @fastify/jwt), verifies them (plugins/tokens/verify.ts) and decorates fastify.authenticate. */
export default fp<TokenOptions>(async (fastify, options) => {
  const { revocations } = fastify
  const current = publicJwk(options.signingKey)
  const privatePem = options.signingKey.export({ format: 'pem', type: 'pkcs8' }) as string
  await fastify.register(fastifyJwt, {
    secret: { private: privatePem, public: pem(options.signingKey) },
    sign: { algorithm: 'EdDSA', kid: current.kid, header: { alg: 'EdDSA', typ: tokenTypes.access } },
    // Unused by the service, which verifies through plugins/tokens/verify.ts; as strict, should anyone call it.
    verify: { algorithms: ['EdDSA'], allowedIss: options.issuer, allowedAud: options.audience }
  })
  const signRefreshToken = createSigner({ key: privatePem, algorithm: 'EdDSA', kid: current.kid, header: { alg: 'EdDSA', typ: tokenTypes.refresh } })
  const verifier = createTokenVerifier({ ...options, cacheSize: options.tokenCacheSize ?? defaultTokenCacheSize })

  function verify (token: string, type?: TokenClaims['token_type']): TokenClaims {
    const claims = verifier.verify(token)
    if (type !== undefined && claims.token_type !== type) throw tokenError('token_invalid', messages.tokenWrongType)
    return claims
  }

  function checkAccess (claims: TokenClaims): AccessClaims {
    if (claims.token_type !== 'access') throw tokenError('token_invalid', messages.tokenWrongType)
    if (revocations.has(claims.sid)) throw tokenError('token_revoked', messages.tokenRevoked)
    return claims as AccessClaims
  }

  function sign (claims: TokenClaims & { username?: string, email_verified?: boolean }): IssuedToken {
    const token = claims.token_type === 'access' ? fastify.jwt.sign(claims) : signRefreshToken(claims)
    return {
      token,
      row: {
        jti: claims.jti,
        userId: claims.user_id,
        sessionId: claims.sid,
        type: claims.token_type,
        tokenHash: sha256(token),
        createdAt: new Date(claims.iat * 1000),
        expiresAt: new Date(claims.exp * 1000)
      }
    }
  }

  const common = (user: UserRef, sessionId: string) =>
    ({ sub: String(user.id), user_id: user.id, sid: sessionId, iss: options.issuer })

  const service: TokenService = {
    jwks: { keys: [current, ...options.previousPublicKeys.map(publicJwk)] },

    signAccess (user, sessionId) {
      const iat = toSeconds(new Date())
      return sign({ ...common(user, sessionId), aud: options.audience, jti: randomUUID(), token_type: 'access', iat, exp: iat + options.accessTokenTtl, username: user.username, email_verified: user.emailVerified })
    },

    signRefresh (user, sessionId, notAfter, earlier) {
      const iat = toSeconds(new Date())
      const claims = earlier ?? { jti: randomUUID(), iat, exp: notAfter === undefined ? iat + options.refreshTokenTtl : Math.min(iat + options.refreshTokenTtl, toSeconds(notAfter)) }
      return sign({ ...common(user, sessionId), aud: options.issuer, jti: claims.jti, token_type: 'refresh', iat: claims.iat, exp: claims.exp })
    },

    verify,
    verifyAccess: (accessToken) => checkAccess(verifier.verify(accessToken)),

    readRefresh (refreshToken) {
      const claims = verifier.read(refreshToken)
      return claims?.token_type === 'refresh' ? claims : undefined
    }
  }

  fastify.decorate('tokenService', service)
  // A callback hook rather than an async one: it runs on every authenticated request, and answers a token
  // seen recently without a promise.
  fastify.decorate('authenticate', (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => {
    const header = request.headers.authorization
    if (header === undefined) return done(notAuthenticated(messages.notAuthenticated, 'api'))
    // `Bearer <token>`, the scheme in any case, one space; the token as long as a refresh body may be, a
    // longer one refused before it is parsed.
    const space = header.indexOf(' ')
    const token = header.slice(space + 1)
    if (space !== 6 || header.slice(0, 6).toLowerCase() !== 'bearer' || token === '' || token.length > 8192 || token.includes(' ')) return done(invalidToken())
    const cached = verifier.cached(token)
    if (cached !== undefined) {
      try {
        request.user = checkAccess(cached)
      } catch (error) {
        return done(error as Error)
      }
      return done()
    }
    // A token not seen recently: its signature is checked on the thread pool, so that many clients'
    // tokens are verified on every core (about 110 µs each) while the event loop serves others.
    verifier.verifyOffLoop(token).then(checkAccess).then((claims) => {
      request.user = claims
      done()
    }, (error: Error) => { done(error) })
  })
}, { name: 'tokens', dependencies: ['revocations'] })
