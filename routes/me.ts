import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { messages, tokenError } from '../src/errors.js'
import { DeleteAccountBody, ErrorBody, EventList, OwnEventQuery, User, bodyErrors, hashingErrors, throttledErrors, toAuditEvent } from '../src/schemas.js'

const me: FastifyPluginAsyncTypebox = async (fastify) => {
  const { accounts, audit, usersRepository } = fastify

  fastify.get('/auth/me/', {
    onRequest: fastify.authenticate,
    schema: { tags: ['auth'], summary: 'The current user', security: [{ bearerAuth: [] }], response: { 200: User, 401: ErrorBody, 500: ErrorBody } }
  }, async (request) => {
    const user = await usersRepository.profile(request.user.user_id)
    if (user === undefined) throw tokenError('token_invalid', messages.userNotFound)
    return user
  })

  fastify.delete('/auth/me/', {
    onRequest: [fastify.throttle.login, fastify.authenticate],
    schema: { tags: ['auth'], summary: 'Delete the current user and everything of it; every session ends on every instance', security: [{ bearerAuth: [] }], body: DeleteAccountBody, response: { 204: Type.Null(), 401: ErrorBody, ...bodyErrors, ...hashingErrors, ...throttledErrors } }
  }, async (request, reply) => {
    const user = await fastify.reauthenticate(request, request.body.password, 'password', 'account deletion')
    // Deleted meanwhile by a racing request: the same outcome.
    await accounts.delete(user, { request })
    return reply.code(204).send(null)
  })

  fastify.get('/auth/me/events/', {
    onRequest: fastify.authenticate,
    schema: { tags: ['auth'], summary: 'The user\'s recent security activity, newest first: logins with their address and user agent, password and email changes, revoked sessions', security: [{ bearerAuth: [] }], querystring: OwnEventQuery, response: { 200: EventList, 401: ErrorBody, ...bodyErrors } }
  }, async (request) => {
    const limit = Number(request.query.limit ?? 50)
    const { cursor } = request.query
    await audit.flush()
    // The operators' own calls are theirs; what they did to the account (a disabling, a new address) is shown.
    const rows = await audit.list({ userId: request.user.user_id, before: cursor === undefined ? undefined : Number(cursor), withoutAdminCalls: true, limit: limit + 1 })
    const page = rows.slice(0, limit)
    return { events: page.map(toAuditEvent), next_cursor: rows.length > limit ? String(page.at(-1)!.id) : null }
  })
}

export default me
