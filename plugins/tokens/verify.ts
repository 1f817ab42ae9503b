// Verifying this service's tokens, on three paths side by side: the verified cache, the synchronous path
// (fast-jwt, the current key first and earlier keys on a bad signature), and the off-loop path (the signature
// on libuv's thread pool). Every path ends in the same fast-jwt claims check and the same wellFormed().
import { verify as verifySignature, type KeyObject } from 'node:crypto'
import { createDecoder, createVerifier } from 'fast-jwt'
import { LruMap } from 'toad-cache'
import { messages, tokenError } from '../../src/errors.js'
import { publicKeyOf } from '../../src/keys.js'

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
  /** Whether the user had proved to own their address when the token was issued; absent from tokens issued before the claim existed. */
  email_verified?: boolean
}

export interface VerifierOptions {
  /** The current signing key, or its public half. */
  signingKey: KeyObject
  /** Public keys of earlier signing keys: their tokens verify until they expire. */
  previousPublicKeys: KeyObject[]
  issuer: string
  audience: string
  /** Tokens kept as verified, by their exact text. */
  cacheSize: number
}

export interface TokenVerifier {
  /** The claims of a token verified earlier and not expired since; undefined otherwise. */
  cached: (token: string) => TokenClaims | undefined
  /** Signature, claims and expiry, from the cache or on the event loop; throws a 401. */
  verify: (token: string) => TokenClaims
  /** The same, with the signature checked on the thread pool; rejects with a 401. */
  verifyOffLoop: (token: string) => Promise<TokenClaims>
  /**
   * The claims of a token as it reads, when they are of the shapes this service signs, for its issuer and
   * audience, and not expired; undefined otherwise. Its signature is NOT checked: only for a token whose SHA-256
   * the caller then finds among those it issued, which proves more than a signature does.
   */
  read: (token: string) => TokenClaims | undefined
}

export const invalidToken = () => tokenError('token_invalid', messages.tokenInvalid)

/** The answer to a token fast-jwt refused. */
const refused = (error: unknown) => (error as { code?: string }).code === 'FAST_JWT_EXPIRED'
  ? tokenError('token_expired', messages.tokenExpired)
  : invalidToken()

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

/**
 * Whether the signature segment is the one canonical base64url spelling of 64 bytes: its last character has
 * four spare bits, which would otherwise give every token 16 spellings, each verifying.
 */
function canonicalSignature (token: string): boolean {
  const signature = token.slice(token.lastIndexOf('.') + 1)
  return signature.length === 86 && Buffer.from(signature, 'base64url').toString('base64url') === signature
}

export const pem = (key: KeyObject) => publicKeyOf(key).export({ format: 'pem', type: 'spki' }) as string

export function createTokenVerifier (options: VerifierOptions): TokenVerifier {
  const claimsOptions = {
    allowedIss: options.issuer,
    // Access tokens are for the API's audience, refresh tokens for this service itself; wellFormed() pairs them.
    allowedAud: [options.audience, options.issuer],
    requiredClaims: ['exp', 'iat', 'iss', 'aud', 'sub', 'sid', 'jti', 'token_type']
  }
  const publicKeys = [publicKeyOf(options.signingKey), ...options.previousPublicKeys]
  // The current key first; earlier keys are tried only when it rejects a signature.
  const [currentVerifier, ...previousVerifiers] = publicKeys.map((key) =>
    createVerifier({ ...claimsOptions, algorithms: ['EdDSA'], key: pem(key) }))

  // Tokens that verified, by their exact text, until they expire: a client presenting the same
  // token again costs a map lookup instead of an Ed25519 verification (about 100 µs). Keyed by the
  // string itself, so a hit hashes nothing; 1,000 tokens take about 1 MB.
  const verified = new LruMap<TokenClaims>(options.cacheSize)

  function cached (token: string): TokenClaims | undefined {
    const claims = verified.get(token)
    return claims !== undefined && claims.exp * 1000 > Date.now() ? claims : undefined
  }

  // A refresh token signed before refresh tokens had an audience of their own carries the API's; accepted
  // until it expires (REFRESH_TOKEN_TTL, at most SESSION_MAX_AGE).
  const audienceOf = { access: [options.audience], refresh: [options.issuer, options.audience] }
  const forAudience = (claims: TokenClaims) => {
    const audiences: unknown[] = Array.isArray(claims.aud) ? claims.aud : [claims.aud]
    return audiences.some((audience) => audienceOf[claims.token_type].includes(audience as string))
  }
  function accept (token: string, claims: TokenClaims): TokenClaims {
    if (!wellFormed(claims) || !forAudience(claims)) throw invalidToken()
    verified.set(token, claims)
    return claims
  }

  function verifyOnLoop (token: string): TokenClaims {
    try {
      return currentVerifier!(token) as TokenClaims
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

  // Off the event loop: fast-jwt decodes the token (refusing segments that are not canonical base64url), the
  // signature is verified on the thread pool with each key in turn, and fast-jwt then checks the claims as it
  // does for every token, on an unsigned copy with the same header and payload.
  const decodeComplete = createDecoder({ complete: true })
  const decodePayload = createDecoder()
  const checkClaims = createVerifier({ ...claimsOptions, algorithms: ['none'] })
  const signedBy = (key: KeyObject, input: Buffer, signature: Buffer) => new Promise<boolean>((resolve) => {
    verifySignature(null, input, key, signature, (error, valid) => { resolve(error === null && valid) })
  })

  return {
    cached,

    read (token) {
      let claims: TokenClaims
      try {
        claims = decodePayload(token)
      } catch {
        return undefined
      }
      // fast-jwt's decoder answers objects only.
      return wellFormed(claims) && claims.iss === options.issuer && forAudience(claims) && claims.exp * 1000 > Date.now() ? claims : undefined
    },

    verify (token) {
      const seen = cached(token)
      if (seen !== undefined) return seen
      if (!canonicalSignature(token)) throw invalidToken()
      let claims: TokenClaims
      try {
        claims = verifyOnLoop(token)
      } catch (error) {
        throw refused(error)
      }
      return accept(token, claims)
    },

    async verifyOffLoop (token) {
      let decoded: { header: Record<string, unknown>, signature: string, input: string }
      try {
        decoded = decodeComplete(token)
      } catch {
        throw invalidToken()
      }
      const { header, signature, input } = decoded
      if (header.alg !== 'EdDSA' || !canonicalSignature(token)) throw invalidToken()
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
      return accept(token, claims)
    }
  }
}
