import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { messages, tokenError } from '../src/errors.js'
import { DeleteAccountBody, ErrorBody, User, bodyErrors, hashingErrors, throttledErrors } from '../src/schemas.js'

const me: FastifyPluginAsyncTypebox = async (fastify) => {
  const { accounts, usersRepository } = fastify

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
    await accounts.delete(user)
    return reply.code(204).send(null)
  })
}

export default me
