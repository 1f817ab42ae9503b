import { createHash } from 'node:crypto'
import { createDecoder, createVerifier, TokenError } from 'fast-jwt'
import type { LegacyJwtConfig } from './config.js'
import { messages, tokenError } from './errors.js'

/** A SimpleJWT refresh token, as the session it becomes here knows it. */
export interface LegacyRefresh {
  userId: number
  /** The jti of its row in tokens: a digest of the legacy jti, so that the token itself is never stored. */
  jti: string
  /** The id of the session it opens: the same for every presentation of one legacy token. */
  sid: string
  /** Hex SHA-256 of its jti, as the import copies SimpleJWT's blacklist. */
  jtiHash: string
  issuedAt: Date
  expiresAt: Date
}

/** A UUID made of a digest: one legacy jti always names the same row and session, and never one of ours. */
function uuidOf (text: string): string {
  const hex = createHash('sha256').update(text).digest('hex')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`
}

/**
 * Reads a refresh token of the old service during the cutover window. Answers undefined for anything that is not
 * one (a token of ours, or any token once the window has ended), which the caller then refuses as usual; throws
 * token_expired or token_invalid for a legacy token that does not hold.
 */
export function legacyRefreshReader ({ secret, algorithm, until, userIdClaim }: LegacyJwtConfig): (token: string) => LegacyRefresh | undefined {
  const verify = createVerifier({ key: secret, algorithms: [algorithm], cache: false })
  const decode = createDecoder({ complete: true })
  const invalid = () => tokenError('token_invalid', messages.tokenInvalid)
  return (token) => {
    if (Date.now() >= until.getTime()) return undefined
    let algorithmUsed: unknown
    try {
      algorithmUsed = (decode(token) as { header: { alg?: unknown } }).header.alg
    } catch {
      return undefined
    }
    if (algorithmUsed !== algorithm) return undefined
    let claims: Record<string, unknown>
    try {
      claims = verify(token) as Record<string, unknown>
    } catch (error) {
      if ((error as { code?: string }).code === TokenError.codes.expired) throw tokenError('token_expired', messages.tokenExpired)
      throw invalid()
    }
    const { jti, iat, exp, token_type: type } = claims
    const userId = Number(claims[userIdClaim])
    if (type !== 'refresh' || typeof jti !== 'string' || jti === '' || typeof exp !== 'number' || typeof iat !== 'number') throw invalid()
    // An id a user can have here: a PostgreSQL integer.
    if (!Number.isInteger(userId) || userId < 1 || userId > 2 ** 31 - 1) throw invalid()
    return {
      userId,
      jti: uuidOf(`legacy token ${jti}`),
      sid: uuidOf(`legacy session ${jti}`),
      jtiHash: createHash('sha256').update(jti).digest('hex'),
      issuedAt: new Date(iat * 1000),
      expiresAt: new Date(exp * 1000)
    }
  }
}
