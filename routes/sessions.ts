import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { apiError, messages } from '../src/errors.js'
import { ErrorBody, Session, bodyErrors } from '../src/schemas.js'

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

const sessionRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { audit, sessionManager } = fastify
  fastify.addHook('onRequest', fastify.authenticate)

  fastify.post('/auth/logout/all/', {
    schema: { tags: ['sessions'], summary: 'Log out everywhere: revoke every session of the user', security: [{ bearerAuth: [] }], response: { 204: Type.Null(), 401: ErrorBody, ...bodyErrors } }
  }, async (request, reply) => {
    const count = await sessionManager.revokeAll(request.user.user_id)
    audit.record({ type: 'logout.all', userId: request.user.user_id, sessionId: request.user.sid, request, detail: { revoked_sessions: count } })
    request.log.info({ userId: request.user.user_id, sessions: count }, 'logged out everywhere')
    return reply.code(204).send(null)
  })

  fastify.get('/auth/sessions/', {
    schema: { tags: ['sessions'], summary: 'The user\'s active sessions', security: [{ bearerAuth: [] }], response: { 200: Type.Array(Session), 401: ErrorBody, 500: ErrorBody } }
  }, async (request) => {
    const rows = await sessionManager.list(request.user.user_id)
    return rows.map((row) => ({
      id: row.id,
      created_at: row.createdAt.toISOString(),
      last_used_at: row.lastUsedAt.toISOString(),
      expires_at: row.expiresAt.toISOString(),
      user_agent: row.userAgent,
      ip: row.ip,
      current: row.id === request.user.sid
    }))
  })

  fastify.delete('/auth/sessions/:id', {
    schema: { tags: ['sessions'], summary: 'Revoke one session', security: [{ bearerAuth: [] }], params: Type.Object({ id: Type.String({ maxLength: 64 }) }), response: { 204: Type.Null(), 401: ErrorBody, 404: ErrorBody, ...bodyErrors } }
  }, async (request, reply) => {
    const { id } = request.params
    // Another user's session answers exactly as one that does not exist.
    if (!uuidPattern.test(id) || !await sessionManager.revoke(request.user.user_id, id.toLowerCase())) {
      throw apiError(404, 'not_found', messages.noSuchSession)
    }
    audit.record({ type: 'session.revoked', userId: request.user.user_id, sessionId: id.toLowerCase(), request })
    request.log.info({ userId: request.user.user_id, sessionId: id }, 'session revoked')
    return reply.code(204).send(null)
  })
}

export default sessionRoutes
