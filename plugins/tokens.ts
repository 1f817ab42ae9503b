import { createHash, randomUUID, verify as verifySignature, type KeyObject } from 'node:crypto'
import fastifyJwt from '@fastify/jwt'
import { createDecoder, createVerifier } from 'fast-jwt'
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import fp from 'fastify-plugin'
import { LruMap } from 'toad-cache'
import { apiError, tokenError } from '../src/errors.js'
import { publicJwk, publicKeyOf, type PublicJwk } from '../src/keys.js'

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
}

export interface Tokens {
  jwks: { keys: PublicJwk[] }
  /** A new access token of a session. */
  signAccess: (user: UserRef, sessionId: string) => IssuedToken
  /**
   * A refresh token of a session. With jti and iat given it is the very token signed before
   * with those claims (EdDSA signatures are deterministic); its exp is capped at notAfter.
   */
  signRefresh: (user: UserRef, sessionId: string, notAfter: Date, earlier?: { jti: string, iat: number, exp: number }) => IssuedToken
  /** Signature, claims and expiry of a token, of the given type if one is given; throws a 401 otherwise. */
  verify: (token: string, type?: TokenClaims['token_type']) => TokenClaims
  /** verify, plus the session's revocation; no database round trip. */
  verifyAccess: (accessToken: string) => AccessClaims
}

declare module '@fastify/jwt' {
  interface FastifyJWT {
    payload: TokenClaims
    user: AccessClaims
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    tokens: Tokens
    /** An onRequest hook: sets request.user from a valid `Authorization: Bearer <access>`. */
    authenticate: (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => void
  }
}

export const sha256 = (token: string) => createHash('sha256').update(token).digest('hex')
const verifiedCacheSize = 1000
const toSeconds = (date: Date) => Math.floor(date.getTime() / 1000)
const invalidToken = () => tokenError('token_invalid', 'Token is invalid or malformed')
/** The answer to a token fast-jwt refused. */
const refused = (error: unknown) => (error as { code?: string }).code === 'FAST_JWT_EXPIRED'
  ? tokenError('token_expired', 'Token is expired')
  : invalidToken()
const pem = (key: KeyObject) => publicKeyOf(key).export({ format: 'pem', type: 'spki' }) as string

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
// users.id is a PostgreSQL integer.
const maxUserId = 2 ** 31 - 1
const isSeconds = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) > 0

/**
 * Claims of the shapes this service signs. A valid signature proves who signed a token, not that its
 * claims can be used: a token signed by a leaked or misused key must not reach a query with a
 * non-UUID session id, nor live forever with an `exp` of 1e20.
 */
function wellFormed (claims: TokenClaims): boolean {
  return isSeconds(claims.exp) && isSeconds(claims.iat) && claims.iat <= Date.now() / 1000 + 60 &&
    Number.isSafeInteger(claims.user_id) && claims.user_id > 0 && claims.user_id <= maxUserId && claims.sub === String(claims.user_id) &&
    typeof claims.sid === 'string' && uuid.test(claims.sid) && typeof claims.jti === 'string' && uuid.test(claims.jti) &&
    (claims.token_type === 'refresh' || (claims.token_type === 'access' && typeof (claims as AccessClaims).username === 'string'))
}

export function toPair (access: IssuedToken, refresh: IssuedToken): TokenPair {
  return {
    access: access.token,
    refresh: refresh.token,
    token_type: 'Bearer',
    access_expires_at: access.row.expiresAt.toISOString(),
    refresh_expires_at: refresh.row.expiresAt.toISOString()
  }
}

export default fp<TokenOptions>(async (fastify, options) => {
  const { revocations } = fastify
  const current = publicJwk(options.signingKey)
  const verifyOptions = {
    algorithms: ['EdDSA' as const],
    allowedIss: options.issuer,
    allowedAud: options.audience,
    requiredClaims: ['exp', 'iat', 'iss', 'aud', 'sub', 'sid', 'jti', 'token_type']
  }

  await fastify.register(fastifyJwt, {
    secret: {
      private: options.signingKey.export({ format: 'pem', type: 'pkcs8' }) as string,
      public: pem(options.signingKey)
    },
    sign: { algorithm: 'EdDSA', kid: current.kid },
    verify: verifyOptions
  })
  // Tokens of earlier keys are tried only when the current key rejects a signature.
  const previousVerifiers = options.previousPublicKeys.map((key) => createVerifier({ ...verifyOptions, key: pem(key) }))

  function verifyAny (token: string): TokenClaims {
    try {
      return fastify.jwt.verify<TokenClaims>(token)
    } catch (error) {
      if ((error as { code?: string }).code !== 'FAST_JWT_INVALID_SIGNATURE') throw error
      for (const verifier of previousVerifiers) {
        try {
          return verifier(token) as TokenClaims
        } catch {}
      }
      throw error
    }
  }

  // Tokens that verified, by their exact text, until they expire: a client presenting the same
  // token again costs a map lookup instead of an Ed25519 verification (about 100 µs). Keyed by the
  // string itself, so a hit hashes nothing; 1,000 tokens take about 1 MB.
  const verified = new LruMap<TokenClaims>(verifiedCacheSize)

  function verify (token: string, type?: TokenClaims['token_type']): TokenClaims {
    let claims = verified.get(token)
    if (claims === undefined || claims.exp * 1000 <= Date.now()) {
      try {
        claims = verifyAny(token)
      } catch (error) {
        throw refused(error)
      }
      if (!wellFormed(claims)) throw invalidToken()
      verified.set(token, claims)
    }
    if (type !== undefined && claims.token_type !== type) throw tokenError('token_invalid', 'Token has wrong type')
    return claims
  }

  function checkAccess (claims: TokenClaims): AccessClaims {
    if (claims.token_type !== 'access') throw tokenError('token_invalid', 'Token has wrong type')
    if (revocations.has(claims.sid)) throw tokenError('token_revoked', 'Token has been revoked')
    return claims as AccessClaims
  }

  function verifyAccess (accessToken: string): AccessClaims {
    return checkAccess(verify(accessToken))
  }

  // Off the event loop: fast-jwt decodes the token (refusing segments that are not canonical base64url), the
  // signature is verified on the thread pool with each key in turn, and fast-jwt then checks the claims as it
  // does for every token, on an unsigned copy with the same header and payload.
  const decodeComplete = createDecoder({ complete: true })
  const checkClaims = createVerifier({ ...verifyOptions, algorithms: ['none'] })
  const publicKeys = [publicKeyOf(options.signingKey), ...options.previousPublicKeys]
  const signedBy = (key: KeyObject, input: Buffer, signature: Buffer) => new Promise<boolean>((resolve) => {
    verifySignature(null, input, key, signature, (error, valid) => { resolve(error === null && valid) })
  })

  async function verifyOffLoop (token: string): Promise<TokenClaims> {
    let decoded: { header: Record<string, unknown>, signature: string, input: string }
    try {
      decoded = decodeComplete(token)
    } catch {
      throw invalidToken()
    }
    const { header, signature, input } = decoded
    if (header.alg !== 'EdDSA' || signature === '') throw invalidToken()
    const signed = Buffer.from(input)
    const signatureBytes = Buffer.from(signature, 'base64url')
    let valid = false
    for (const key of publicKeys) if (!valid) valid = await signedBy(key, signed, signatureBytes)
    if (!valid) throw invalidToken()
    const unsigned = `${Buffer.from(JSON.stringify({ ...header, alg: 'none' })).toString('base64url')}.${input.slice(input.indexOf('.') + 1)}.`
    let claims: TokenClaims
    try {
      claims = checkClaims(unsigned) as TokenClaims
    } catch (error) {
      throw refused(error)
    }
    if (!wellFormed(claims)) throw invalidToken()
    verified.set(token, claims)
    return claims
  }

  function sign (claims: TokenClaims & { username?: string }): IssuedToken {
    const token = fastify.jwt.sign(claims)
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
    ({ sub: String(user.id), user_id: user.id, sid: sessionId, iss: options.issuer, aud: options.audience })

  const service: Tokens = {
    jwks: { keys: [current, ...options.previousPublicKeys.map(publicJwk)] },

    signAccess (user, sessionId) {
      const iat = toSeconds(new Date())
      return sign({ ...common(user, sessionId), jti: randomUUID(), token_type: 'access', iat, exp: iat + options.accessTokenTtl, username: user.username })
    },

    signRefresh (user, sessionId, notAfter, earlier) {
      const iat = toSeconds(new Date())
      const claims = earlier ?? { jti: randomUUID(), iat, exp: Math.min(iat + options.refreshTokenTtl, toSeconds(notAfter)) }
      return sign({ ...common(user, sessionId), jti: claims.jti, token_type: 'refresh', iat: claims.iat, exp: claims.exp })
    },

    verify,
    verifyAccess
  }

  fastify.decorate('tokens', service)
  // A callback hook rather than an async one: it runs on every authenticated request, and answers a token
  // seen recently without a promise.
  fastify.decorate('authenticate', (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => {
    const header = request.headers.authorization
    if (header === undefined) {
      return done(apiError(401, 'not_authenticated', 'Authentication credentials were not provided.', {
        headers: { 'www-authenticate': 'Bearer realm="api"' }
      }))
    }
    // `Bearer <token>`, the scheme in any case, one space; the token as long as a refresh body may be, a
    // longer one refused before it is parsed.
    const space = header.indexOf(' ')
    const token = header.slice(space + 1)
    if (space !== 6 || header.slice(0, 6).toLowerCase() !== 'bearer' || token === '' || token.length > 8192 || token.includes(' ')) return done(invalidToken())
    const cached = verified.get(token)
    if (cached !== undefined && cached.exp * 1000 > Date.now()) {
      try {
        request.user = checkAccess(cached)
      } catch (error) {
        return done(error as Error)
      }
      return done()
    }
    // A token not seen recently: its signature is checked on the thread pool, so that many clients'
    // tokens are verified on every core (about 110 µs each) while the event loop serves others.
    verifyOffLoop(token).then(checkAccess).then((claims) => {
      request.user = claims
      done()
    }, (error: Error) => { done(error) })
  })
}, { name: 'tokens', dependencies: ['revocations'] })
