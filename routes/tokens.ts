import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import type { TokenClaims } from '../plugins/tokens.js'
import { ErrorBody, RefreshBody, TokenPair, bodyErrors, throttledErrors } from '../src/schemas.js'

// What each refusal of a refresh is counted as.
const refreshOutcomes: Record<string, string> = { token_reused: 'reused', token_expired: 'expired', token_revoked: 'revoked', token_invalid: 'invalid' }

const tokenRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { audit, sessionManager } = fastify
  const { refreshes } = fastify.authMetrics

  // SimpleJWT's TokenRefreshView's default path too.
  for (const path of ['/auth/refresh/', '/api/token/refresh/']) {
    fastify.post(path, {
      onRequest: fastify.throttle.refresh,
      schema: { tags: ['tokens'], summary: 'Rotate a refresh token: a new pair; the old refresh token is spent', body: RefreshBody, response: { 200: TokenPair, 401: ErrorBody, ...bodyErrors, ...throttledErrors } }
    }, async (request) => {
      try {
        const { pair, replayed, claims } = await sessionManager.refresh(request.body.refresh, { userAgent: request.headers['user-agent'], ip: request.ip })
        refreshes.inc({ outcome: replayed ? 'replayed' : 'rotated' })
        request.log.info({ userId: claims.user_id, sessionId: claims.sid, replayed }, 'token refreshed')
        return pair
      } catch (error) {
        const outcome = refreshOutcomes[String((error as { code?: unknown }).code)]
        if (outcome !== undefined) refreshes.inc({ outcome })
        if (outcome === 'reused') {
          // Verified before the reuse was found: its claims are the stolen session's.
          const claims = fastify.jwt.decode<TokenClaims>(request.body.refresh)!
          audit.record({ type: 'token.reused', userId: claims.user_id, sessionId: claims.sid, request })
        }
        throw error
      }
    })
  }

  async function logout (request: FastifyRequest, refresh: string) {
    await sessionManager.logout(refresh)
    // Verified by logout().
    const claims = fastify.jwt.decode<TokenClaims>(refresh)!
    audit.record({ type: 'logout', userId: claims.user_id, sessionId: claims.sid, request })
  }

  fastify.post('/auth/logout/', {
    schema: { tags: ['tokens'], summary: 'Log out: revoke the session of a refresh token', body: RefreshBody, response: { 204: Type.Null(), 401: ErrorBody, ...bodyErrors } }
  }, async (request, reply) => {
    await logout(request, request.body.refresh)
    return reply.code(204).send(null)
  })

  // SimpleJWT's TokenBlacklistView: the same logout, answered as it answers, 200 with an empty object.
  fastify.post('/api/token/blacklist/', {
    schema: { tags: ['tokens'], summary: 'Log out, as SimpleJWT\'s blacklist view: revoke the session of a refresh token', body: RefreshBody, response: { 200: Type.Object({}), 401: ErrorBody, ...bodyErrors } }
  }, async (request) => {
    await logout(request, request.body.refresh)
    return {}
  })
}

export default tokenRoutes
