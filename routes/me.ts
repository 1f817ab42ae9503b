import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { messages, tokenError } from '../src/errors.js'
import { ErrorBody, User } from '../src/schemas.js'

const me: FastifyPluginAsyncTypebox = async (fastify) => {
  const { usersRepository } = fastify

  fastify.get('/auth/me/', {
    onRequest: fastify.authenticate,
    schema: { tags: ['auth'], summary: 'The current user', security: [{ bearerAuth: [] }], response: { 200: User, 401: ErrorBody, 500: ErrorBody } }
  }, async (request) => {
    const user = await usersRepository.profile(request.user.user_id)
    if (user === undefined) throw tokenError('token_invalid', messages.userNotFound)
    return user
  })
}

export default me
